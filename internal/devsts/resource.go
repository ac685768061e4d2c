package devsts

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/jwkctl/jwkctl/assertion"
)

// Caller is what a resource learns from a valid access token.
type Caller struct {
	ClientID string
	Scopes   []string
	// JKT is the DPoP key thumbprint the token is bound to, "" for Bearer.
	JKT    string
	Claims map[string]any
}

// AuthError is a refusal at a resource server: the status and the
// WWW-Authenticate challenge to send.
type AuthError struct {
	Status int
	Scheme string // "Bearer" or "DPoP"
	Code   string // invalid_token, insufficient_scope, use_dpop_nonce, invalid_dpop_proof
	Desc   string
	Nonce  string
}

func (e *AuthError) Error() string { return e.Code + ": " + e.Desc }

// Write sends the refusal.
func (e *AuthError) Write(w http.ResponseWriter) {
	if e.Nonce != "" {
		w.Header().Set("DPoP-Nonce", e.Nonce)
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`%s error=%q, error_description=%q`, e.Scheme, e.Code, e.Desc))
	oauthError(w, e.Status, e.Code, e.Desc)
}

// Authorize checks the access token (and, for a DPoP-bound token, the DPoP
// proof with ath and a fresh nonce) on a request to a resource this STS
// protects. scope is the scope the resource needs.
func (s *Server) Authorize(r *http.Request, scope string) (*Caller, *AuthError) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	deny := func(status int, code, desc string) (*Caller, *AuthError) {
		sch := "Bearer"
		if strings.EqualFold(scheme, "DPoP") {
			sch = "DPoP"
		}
		return nil, &AuthError{Status: status, Scheme: sch, Code: code, Desc: desc}
	}
	if tok == "" || (!strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "DPoP")) {
		return deny(http.StatusUnauthorized, "invalid_token", "send Authorization: Bearer or DPoP with an access token")
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return deny(http.StatusUnauthorized, "invalid_token", "the access token is not a JWT from this STS")
	}
	var std jwt.Claims
	all := map[string]any{}
	if err := parsed.Claims(s.key.Public(), &std, &all); err != nil {
		return deny(http.StatusUnauthorized, "invalid_token", "the access token's signature does not verify")
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: s.cfg.Issuer, Time: s.cfg.Now()}, s.cfg.Skew); err != nil {
		return deny(http.StatusUnauthorized, "invalid_token", "the access token is expired or not from this issuer")
	}
	c := &Caller{Claims: all}
	c.ClientID, _ = all["client_id"].(string)
	if sc, ok := all["scope"].(string); ok {
		c.Scopes = strings.Fields(sc)
	}
	if cn, ok := all["cnf"].(map[string]any); ok {
		c.JKT, _ = cn["jkt"].(string)
	}
	if c.JKT != "" {
		if !strings.EqualFold(scheme, "DPoP") {
			return deny(http.StatusUnauthorized, "invalid_token", "this token is DPoP-bound: send Authorization: DPoP and a DPoP proof")
		}
		proof := r.Header.Get("DPoP")
		if proof == "" {
			return deny(http.StatusUnauthorized, "invalid_dpop_proof", "missing DPoP proof")
		}
		jkt, _, code, desc := s.checkProof(proof, r.Method, s.cfg.Issuer+r.URL.EscapedPath(), assertion.ATH(tok))
		if code == "use_dpop_nonce" {
			return nil, &AuthError{Status: http.StatusUnauthorized, Scheme: "DPoP", Code: code, Desc: desc, Nonce: s.Nonce()}
		}
		if code != "" {
			return deny(http.StatusUnauthorized, code, desc)
		}
		if jkt != c.JKT {
			return deny(http.StatusUnauthorized, "invalid_dpop_proof", "the DPoP proof is signed by another key than the token is bound to")
		}
	} else if strings.EqualFold(scheme, "DPoP") {
		return deny(http.StatusUnauthorized, "invalid_token", "this token is not DPoP-bound; send it as Bearer")
	}
	if scope != "" && !slices.Contains(c.Scopes, scope) {
		return deny(http.StatusForbidden, "insufficient_scope", "the token lacks scope "+scope)
	}
	return c, nil
}

// demo is a protected resource in the style of NHN's CommunicationParty API.
func (s *Server) demo(w http.ResponseWriter, r *http.Request) {
	c, aerr := s.Authorize(r, DemoScope)
	if aerr != nil {
		aerr.Write(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"herId":       r.PathValue("herId"),
		"name":        "Demo Legekontor (dev STS)",
		"type":        "Organization",
		"calledBy":    c.ClientID,
		"dpopBound":   c.JKT != "",
		"checkedAt":   s.cfg.Now().UTC().Format(time.RFC3339),
		"description": "a demo resource of jwkctl's dev STS; not real data",
	})
}
