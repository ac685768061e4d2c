package agent

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/loopback"
	"github.com/jwkctl/jwkctl/token"
)

// TokenResponse is what GET /v1/token answers: the cached token and how
// long it has left. It never carries key material.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// DPoPRequest asks POST /v1/dpop for a proof.
type DPoPRequest struct {
	Profile string `json:"profile"`
	Method  string `json:"htm"`
	URL     string `json:"htu"`
	// AccessToken, when set, adds ath (its hash); the token is not stored.
	AccessToken string `json:"access_token,omitempty"`
	Nonce       string `json:"nonce,omitempty"`
}

// Health is what GET /healthz answers. Without the secret (on TCP) it is
// only the status, for readiness probes; an authorized caller also learns
// the profiles and the kid each signs with.
type Health struct {
	Status   string   `json:"status"`
	Profiles []string `json:"profiles,omitempty"`
	// SigningKeys maps each profile to the kid of its key.
	SigningKeys map[string]string `json:"signing_keys,omitempty"`
}

// Handler serves the agent's HTTP API. With a non-empty secret every
// request except /healthz must carry "Authorization: Bearer <secret>";
// /healthz answers without it, for probes, but then names no profiles
// and no keys.
func (a *Agent) Handler(secret string) http.Handler {
	want := []byte("Bearer " + secret)
	authorized := func(r *http.Request) bool {
		return secret == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) == 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/token", a.serveToken)
	mux.HandleFunc("POST /v1/dpop", a.serveDPoP)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		body := Health{Status: "ok"}
		if authorized(r) {
			body.Profiles, body.SigningKeys = a.Profiles(), a.SigningKeys()
		}
		writeJSON(w, http.StatusOK, body)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.cfg.Metrics.Registry, promhttp.HandlerOpts{}))
	if secret == "" {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && !authorized(r) {
			writeError(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <the content of the agent's --secret-file>")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (a *Agent) serveToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	profile := q.Get("profile")
	if profile == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "name a profile: /v1/token?profile=NAME")
		return
	}
	var scopes []string
	for _, s := range q["scope"] {
		scopes = append(scopes, strings.Fields(s)...)
	}
	resp, expiry, err := a.Token(r.Context(), profile, scopes)
	switch {
	case errors.Is(err, ErrUnknownProfile):
		writeError(w, http.StatusNotFound, "unknown_profile", err.Error())
		return
	case errors.Is(err, ErrTooManyScopeSets):
		writeError(w, http.StatusTooManyRequests, "too_many_scope_sets", err.Error())
		return
	case errors.Is(err, token.ErrInvalidScope):
		// The caller asked for a scope the client lacks: its mistake, and
		// no use retrying.
		writeError(w, http.StatusBadRequest, "invalid_scope", err.Error())
		return
	case err != nil:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "token_unavailable", err.Error())
		return
	}
	left := int64(expiry.Sub(a.cfg.Now()) / time.Second)
	writeJSON(w, http.StatusOK, TokenResponse{AccessToken: resp.AccessToken, TokenType: resp.TokenType, ExpiresIn: left, Scope: resp.Scope})
}

func (a *Agent) serveDPoP(w http.ResponseWriter, r *http.Request) {
	var req DPoPRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body must be JSON: {\"profile\",\"htm\",\"htu\"}")
		return
	}
	p, err := a.Profile(req.Profile)
	if err != nil {
		writeError(w, http.StatusNotFound, "unknown_profile", err.Error())
		return
	}
	dp := p.Client.DPoP()
	if dp == nil {
		writeError(w, http.StatusBadRequest, "dpop_not_enabled", fmt.Sprintf("profile %s does not use DPoP", p.Name))
		return
	}
	if !strings.HasPrefix(req.URL, "https://") && !strings.HasPrefix(req.URL, "http://") {
		writeError(w, http.StatusBadRequest, "invalid_request", "htu must be an http(s) URL")
		return
	}
	// The caller's mistakes are 400s; once the request is sound, a failure
	// is the agent's (the key would not sign): 500, and logged.
	if _, err := assertion.HTU(req.URL); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if !assertion.ValidMethod(req.Method) {
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("htm %q is not an HTTP method", req.Method))
		return
	}
	proof, err := dp.Proof(assertion.ProofRequest{Method: req.Method, URL: req.URL, Nonce: req.Nonce, AccessToken: req.AccessToken})
	if err != nil {
		a.cfg.Logger.Error("DPoP proof failed", "profile", p.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "proof_failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"proof": proof})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, reason string) {
	writeJSON(w, status, map[string]string{"error": code, "reason": reason})
}

// Listen opens the agent's listener: "unix:/path" (a socket created 0600,
// or 0660 owned by group) or "127.0.0.1:PORT" (loopback only).
func Listen(addr, group string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		// An abstract socket (@name, or an empty path) has no file mode:
		// any local user could connect and get tokens.
		if path == "" || strings.HasPrefix(path, "@") {
			return nil, fmt.Errorf("agent: --listen %s: give a socket file path (unix:/run/jwkctl/jwkctl.sock); an abstract socket has no permissions, so anyone on the machine could get tokens", addr)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if fi, err := os.Lstat(path); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, fmt.Errorf("agent: %s exists and is not a socket; not replacing it", path)
			}
			// A stale socket from a previous run: refuse if something
			// still answers on it.
			if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
				c.Close()
				return nil, fmt.Errorf("agent: another agent is listening on %s", path)
			}
			os.Remove(path)
		}
		// Create the socket with no access for others from the start
		// (the umask is process-wide: Listen runs at start-up, before
		// anything else creates files).
		old := umask(0o177)
		ln, err := net.Listen("unix", path)
		umask(old)
		if err != nil {
			return nil, err
		}
		if group != "" {
			g, err := user.LookupGroup(group)
			if err != nil {
				ln.Close()
				return nil, fmt.Errorf("agent: --socket-group: %w", err)
			}
			gid, _ := strconv.Atoi(g.Gid)
			if err := os.Chown(path, -1, gid); err != nil {
				ln.Close()
				return nil, err
			}
			if err := os.Chmod(path, 0o660); err != nil {
				ln.Close()
				return nil, err
			}
		}
		return ln, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("agent: --listen %q: want unix:/path or 127.0.0.1:PORT", addr)
	}
	if !loopback.HostPort(addr) {
		return nil, fmt.Errorf("agent: --listen %s: TCP only on loopback (127.0.0.1 or [::1]); use a unix socket otherwise", addr)
	}
	return net.Listen("tcp", addr)
}

// SecretPrefix starts every bearer secret the agent makes, so that its
// secret file is recognisable: the agent replaces a file at --secret-file
// only when it holds an earlier agent secret. The prefix is part of the
// secret (clients send the file's content as it is), and all of it is
// RFC 6750 b64token characters.
const SecretPrefix = token.AgentSecretPrefix

// secretLen is the length of the random part: 32 bytes, base64url.
var secretLen = base64.RawURLEncoding.EncodedLen(32)

// IsSecret reports whether b is the content of an agent secret file (see
// token.IsAgentSecret).
func IsSecret(b []byte) bool { return token.IsAgentSecret(b) }

// WriteSecret makes a random bearer secret and writes it to path, mode
// 0600, replacing an earlier agent secret there. It refuses anything else
// at path — a file that is not an agent secret (IsSecret), a symbolic link,
// a directory — and never follows symbolic links: the secret goes into a
// new file with a random name in path's directory (created exclusively,
// 0600), is synced, and is renamed to path.
func WriteSecret(path string) (string, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("agent: secret file: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return "", fmt.Errorf("agent: secret file %s is a symbolic link; not following it (remove it, or name the real file)", path)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("agent: secret file %s exists and is not a regular file; not replacing it", path)
	default:
		if ok, err := holdsSecret(path, fi); err != nil {
			return "", err
		} else if !ok {
			return "", fmt.Errorf("agent: secret file %s exists and is not an agent secret; not overwriting it (remove it, or choose another file)", path)
		}
	}

	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	secret := SecretPrefix + base64.RawURLEncoding.EncodeToString(b)
	dir := filepath.Dir(path)
	// os.CreateTemp: O_RDWR|O_CREATE|O_EXCL, mode 0600, a random name.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("agent: cannot create the secret file in %s: %w", dir, unwrapPath(err))
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return "", fmt.Errorf("agent: secret file: %w", err)
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		return "", fmt.Errorf("agent: write the secret file in %s: %w", dir, unwrapPath(err))
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("agent: write the secret file in %s: %w", dir, unwrapPath(err))
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("agent: write the secret file in %s: %w", dir, unwrapPath(err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("agent: put the secret file in place at %s: %w", path, unwrapPath(err))
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() // the rename survives a crash; best effort
		d.Close()
	}
	return secret, nil
}

// holdsSecret reads the regular file at path (fi, from Lstat) without
// following a symbolic link swapped in since, and tells whether it is an
// agent secret.
func holdsSecret(path string, fi fs.FileInfo) (bool, error) {
	if fi.Size() > int64(len(SecretPrefix)+secretLen+1) {
		return false, nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openNoFollow, 0)
	if err != nil {
		return false, fmt.Errorf("agent: secret file %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	if now, err := f.Stat(); err != nil || !now.Mode().IsRegular() || !os.SameFile(fi, now) {
		return false, nil
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(len(SecretPrefix)+secretLen+2)))
	if err != nil {
		return false, fmt.Errorf("agent: secret file %s: %w", path, unwrapPath(err))
	}
	return IsSecret(b), nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
