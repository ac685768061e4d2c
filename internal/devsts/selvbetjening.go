package devsts

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/signer"
)

// Selvbetjening's client-secret API, faked: GET lists the calling client's
// registered keys, POST registers a new public JWK. Both need a
// DPoP-bound token for SelvbetjeningScope from this STS.
const (
	SelvbetjeningPath  = "/v1/client-secret"
	SelvbetjeningScope = "nhn:selvbetjening/client"
)

// KeyLifetime is how long a registered key stays valid unless
// Config.KeyLifetime says otherwise (NHN gives from 3 months to 2 years).
var KeyLifetime = 365 * 24 * time.Hour

type registered struct {
	jwk     jose.JSONWebKey
	expires time.Time
	origin  string
}

// EnableSelvbetjening mounts the fake client-secret API on the server.
func (s *Server) EnableSelvbetjening() {
	s.mux.HandleFunc("GET "+SelvbetjeningPath, s.listSecrets)
	s.mux.HandleFunc("POST "+SelvbetjeningPath, s.addSecret)
}

// SelvbetjeningUploads counts successful POSTs.
func (s *Server) SelvbetjeningUploads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uploads
}

func problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": title, "status": status, "detail": detail})
}

func (s *Server) callerKeys(id string) []registered {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil
	}
	out := make([]registered, 0, len(c.keys))
	for i, k := range c.keys {
		out = append(out, registered{jwk: k, origin: "Selvbetjening", expires: c.expires[i]})
	}
	return out
}

// selvbetjeningCaller authorizes a client-secret API call: a DPoP-bound
// token for SelvbetjeningScope. On refusal it has answered and returns nil.
func (s *Server) selvbetjeningCaller(w http.ResponseWriter, r *http.Request) *Caller {
	c, aerr := s.Authorize(r, SelvbetjeningScope)
	if aerr != nil {
		aerr.Write(w)
		return nil
	}
	if c.JKT == "" {
		problem(w, http.StatusUnauthorized, "DPoP required", "the client-secret API takes DPoP-bound tokens only")
		return nil
	}
	return c
}

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request) {
	c := s.selvbetjeningCaller(w, r)
	if c == nil {
		return
	}
	type entry struct {
		Expiration    string          `json:"expiration"`
		Kid           string          `json:"kid"`
		JWKThumbprint string          `json:"jwkThumbprint"`
		Origin        string          `json:"origin"`
		PublicJWK     json.RawMessage `json:"publicJwk"`
	}
	out := []entry{}
	for _, k := range s.callerKeys(c.ClientID) {
		tp, _ := signer.Thumbprint(k.jwk.Key)
		b, _ := json.Marshal(k.jwk)
		out = append(out, entry{Expiration: k.expires.UTC().Format(time.RFC3339), Kid: k.jwk.KeyID, JWKThumbprint: tp, Origin: k.origin, PublicJWK: b})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) addSecret(w http.ResponseWriter, r *http.Request) {
	c := s.selvbetjeningCaller(w, r)
	if c == nil {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		problem(w, http.StatusBadRequest, "Bad request", "unreadable body")
		return
	}
	// Current libraries send the JWK object, older samples a JSON string.
	var asString string
	if json.Unmarshal(body, &asString) == nil {
		body = []byte(asString)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(body, &jwk); err != nil || !jwk.Valid() {
		problem(w, http.StatusBadRequest, "Invalid JWK", "the body is not a JWK")
		return
	}
	if !jwk.IsPublic() {
		problem(w, http.StatusBadRequest, "Invalid JWK", "a private key was sent; send the public JWK only")
		return
	}
	if err := keystore.CheckPublicKey(jwk.Key); err != nil {
		problem(w, http.StatusBadRequest, "Invalid JWK", err.Error())
		return
	}
	tp, _ := signer.Thumbprint(jwk.Key)
	for _, k := range s.callerKeys(c.ClientID) {
		if t, _ := signer.Thumbprint(k.jwk.Key); t == tp {
			problem(w, http.StatusBadRequest, "Duplicate key", "this key is already registered")
			return
		}
	}
	if err := s.AddClientKey(c.ClientID, jwk); err != nil {
		problem(w, http.StatusBadRequest, "Invalid JWK", errors.Unwrap(err).Error())
		return
	}
	s.mu.Lock()
	cl := s.clients[c.ClientID]
	exp := cl.expires[len(cl.expires)-1]
	s.uploads++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"expiration": exp.UTC().Format(time.RFC3339)})
}

// ClientKeyIDs lists the thumbprints of a client's registered keys.
func (s *Server) ClientKeyIDs(id string) []string {
	var out []string
	for _, k := range s.ClientKeys(id) {
		tp, _ := signer.Thumbprint(k.Key)
		out = append(out, tp)
	}
	slices.Sort(out)
	return out
}
