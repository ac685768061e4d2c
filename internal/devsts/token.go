package devsts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/signer"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionClaims are the claims the STS reads from a client assertion.
type assertionClaims struct {
	jwt.Claims
	// Aud is the raw aud claim (it hides the embedded Audience): whether
	// it is a string or an array matters, see checkAudience.
	Aud json.RawMessage `json:"aud"`
	// Details is one detail (an object, as HelseID.Library sends a single
	// one) or an array of them.
	Details json.RawMessage `json:"assertion_details"`
}

// audienceOK applies draft-ietf-oauth-rfc7523bis, where HelseID is
// heading: the issuer is the assertion's sole audience, so an array that
// holds anything else is refused (a client that sends one would also be
// accepted by every other server it lists). A single string may still be
// the token endpoint, as RFC 7523 allowed.
func (s *Server) audienceOK(raw json.RawMessage) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == s.cfg.Issuer || one == s.cfg.Issuer+TokenPath
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil || len(many) == 0 {
		return false
	}
	for _, a := range many {
		if a != s.cfg.Issuer {
			return false
		}
	}
	return true
}

// details splits assertion_details into its entries.
func (c assertionClaims) details() ([]json.RawMessage, error) {
	d := bytes.TrimSpace(c.Details)
	switch {
	case len(d) == 0 || bytes.Equal(d, []byte("null")):
		return nil, nil
	case d[0] == '{':
		return []json.RawMessage{d}, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(d, &list); err != nil {
		return nil, errors.New("assertion_details must be an object or an array of objects")
	}
	return list, nil
}

// orgDetail is HelseID's organisation-number detail.
type orgDetail struct {
	Type             string `json:"type"`
	PractitionerRole struct {
		Organization struct {
			Identifier struct {
				System string `json:"system"`
				Type   string `json:"type"`
				Value  string `json:"value"`
			} `json:"identifier"`
		} `json:"organization"`
	} `json:"practitioner_role"`
}

// HelseID's access-token claims for organisation numbers.
const (
	ClaimOrgParent = "helseid://claims/client/claims/orgnr_parent"
	ClaimOrgChild  = "helseid://claims/client/claims/orgnr_child"
)

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q is not supported; use client_credentials", gt))
		return
	}
	// DPoP first: a request without a fresh nonce is sent back at once,
	// before its assertion is looked at.
	var jkt string
	if proof := r.Header.Get("DPoP"); proof != "" {
		var status int
		var code, desc string
		jkt, status, code, desc = s.checkProof(proof, http.MethodPost, s.cfg.Issuer+TokenPath, "")
		if code != "" {
			if code == "use_dpop_nonce" {
				w.Header().Set("DPoP-Nonce", s.Nonce())
			}
			oauthError(w, status, code, desc)
			return
		}
	} else if s.cfg.RequireDPoP {
		oauthError(w, http.StatusBadRequest, "invalid_dpop_proof", "this server requires DPoP: send a DPoP proof header")
		return
	}

	clientID, claims, code, desc := s.checkAssertion(r)
	if code != "" {
		s.cfg.Logger.Info("token request refused", "client_id", clientID, "error", code, "reason", desc)
		oauthError(w, http.StatusBadRequest, code, desc)
		return
	}
	s.mu.Lock()
	allowed := slices.Clone(s.clients[clientID].scopes)
	s.mu.Unlock()
	scopes := strings.Fields(r.PostForm.Get("scope"))
	if len(scopes) == 0 {
		scopes = allowed
	}
	for _, sc := range scopes {
		if !slices.Contains(allowed, sc) {
			oauthError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("client %s may not ask for scope %q", clientID, sc))
			return
		}
	}
	details, _ := claims.details() // checked with the assertion
	at, err := s.issue(clientID, scopes, r.PostForm["resource"], jkt, details)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "could not sign the access token")
		return
	}
	tokenType := "Bearer"
	if jkt != "" {
		tokenType = "DPoP"
	}
	s.cfg.Logger.Info("token issued", "client_id", clientID, "token_type", tokenType, "scope", strings.Join(scopes, " "))
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at,
		"token_type":   tokenType,
		"expires_in":   int(s.cfg.TokenLifetime / time.Second),
		"scope":        strings.Join(scopes, " "),
	})
}

// checkAssertion verifies the client assertion the way HelseID does. It
// returns an OAuth error code and description when it refuses.
func (s *Server) checkAssertion(r *http.Request) (clientID string, claims *assertionClaims, code, desc string) {
	bad := func(d string) (string, *assertionClaims, string, string) { return clientID, nil, "invalid_client", d }
	if r.PostForm.Get("client_assertion_type") != assertionType {
		return bad("client_assertion_type must be " + assertionType)
	}
	raw := r.PostForm.Get("client_assertion")
	if raw == "" {
		return bad("no client_assertion")
	}
	jws, err := jose.ParseSignedCompact(raw, s.cfg.AssertionAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return bad("the client assertion is not a compact JWS with an allowed algorithm (" + algList(s.cfg.AssertionAlgs) + ")")
	}
	hdr := jws.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders["typ"].(string); typ != assertion.TypHelseID {
		return bad(fmt.Sprintf("the client assertion's typ is %q; it must be %q", typ, assertion.TypHelseID))
	}
	var unverified assertionClaims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil {
		return bad("the client assertion's claims are not JSON")
	}
	clientID = unverified.Issuer
	if form := r.PostForm.Get("client_id"); form != "" && form != clientID {
		return bad("client_id does not match the assertion's iss")
	}
	s.mu.Lock()
	c, ok := s.clients[clientID]
	var keys []jose.JSONWebKey
	var expires []time.Time
	if ok {
		keys, expires = slices.Clone(c.keys), slices.Clone(c.expires)
	}
	s.mu.Unlock()
	if !ok {
		return bad(fmt.Sprintf("unknown client %q", clientID))
	}
	// The kid picks the key; without a match every key is tried, as
	// clients with several registered keys may omit it.
	var payload []byte
	now := s.cfg.Now()
	for i, k := range keys {
		if hdr.KeyID != "" && k.KeyID != "" && k.KeyID != hdr.KeyID {
			continue
		}
		if p, err := jws.Verify(k.Key); err == nil {
			if now.After(expires[i]) {
				tp, _ := signer.Thumbprint(k.Key)
				return bad(fmt.Sprintf("the key (kid %s) registered for %s expired at %s; register a new one", tp, clientID, expires[i].UTC().Format(time.RFC3339)))
			}
			payload = p
			break
		}
	}
	if payload == nil {
		return bad(fmt.Sprintf("the client assertion's signature does not verify with any key registered for %s (kid %q)", clientID, hdr.KeyID))
	}
	var cl assertionClaims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return bad("the client assertion's claims are not JSON")
	}
	if _, err := cl.details(); err != nil {
		return bad("the client assertion's " + err.Error())
	}
	switch {
	case cl.Issuer != clientID || cl.Subject != clientID:
		return bad("iss and sub must both be the client id")
	case !s.audienceOK(cl.Aud):
		return bad(fmt.Sprintf("aud must be the issuer %s alone (a string, or an array holding only it)", s.cfg.Issuer))
	case cl.Expiry == nil || cl.IssuedAt == nil || cl.ID == "":
		return bad("exp, iat and jti are required")
	case now.After(cl.Expiry.Time().Add(s.cfg.Skew)):
		return bad("the client assertion has expired (check the clock)")
	case cl.NotBefore != nil && now.Add(s.cfg.Skew).Before(cl.NotBefore.Time()):
		return bad("the client assertion is not yet valid (nbf is in the future; check the clock)")
	case now.Add(s.cfg.Skew).Before(cl.IssuedAt.Time()):
		return bad("the client assertion was issued in the future (iat; check the clock)")
	case cl.Expiry.Time().Sub(cl.IssuedAt.Time()) > s.cfg.MaxAssertionLifetime:
		return bad(fmt.Sprintf("the client assertion lives longer than %v", s.cfg.MaxAssertionLifetime))
	}
	if !s.remember("assertion", clientID+"/"+cl.ID, cl.Expiry.Time().Add(s.cfg.Skew)) {
		return bad("the client assertion's jti has been used before (replay)")
	}
	return clientID, &cl, "", ""
}

type cnf struct {
	JKT string `json:"jkt"`
}

func (s *Server) issue(clientID string, scopes, resources []string, jkt string, details []json.RawMessage) (string, error) {
	now := s.cfg.Now()
	aud := resources
	if len(aud) == 0 {
		for _, sc := range scopes {
			if api, _, ok := strings.Cut(sc, "/"); ok && !slices.Contains(aud, api) {
				aud = append(aud, api)
			}
		}
	}
	claims := map[string]any{
		"iss":       s.cfg.Issuer,
		"aud":       aud,
		"client_id": clientID,
		"scope":     strings.Join(scopes, " "),
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(s.cfg.TokenLifetime).Unix(),
		"jti":       randomID(),
	}
	if jkt != "" {
		claims["cnf"] = cnf{JKT: jkt}
	}
	for _, d := range details {
		var od orgDetail
		if json.Unmarshal(d, &od) != nil || od.Type != "helseid_authorization" {
			continue
		}
		id := od.PractitionerRole.Organization.Identifier
		switch id.System {
		case "urn:oid:2.16.578.1.12.4.1.4.101":
			claims[ClaimOrgChild] = id.Value
		case "urn:oid:1.0.6523":
			parts := strings.Split(id.Value, ":")
			if len(parts) >= 3 {
				claims[ClaimOrgParent] = parts[2]
			}
			if len(parts) == 4 && parts[3] != "" { // NO:ORGNR:<parent>: has no child
				claims[ClaimOrgChild] = parts[3]
			}
		}
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", s.kid))
	if err != nil {
		return "", err
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.issued++
	s.mu.Unlock()
	return tok, nil
}

func algList(algs []jose.SignatureAlgorithm) string { return strings.Join(algNames(algs), ", ") }
