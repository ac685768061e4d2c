package devsts

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/signer"
)

// proofMaxAge is how old a DPoP proof's iat may be.
const proofMaxAge = 60 * time.Second

// checkProof verifies a DPoP proof (RFC 9449 §4.3) for one request and
// returns the thumbprint of its key. ath is the expected access-token hash
// at a resource server, "" at the token endpoint. On refusal it returns
// the status and OAuth error to send.
func (s *Server) checkProof(proof, method, url, ath string) (jkt string, status int, code, desc string) {
	bad := func(d string) (string, int, string, string) {
		return "", http.StatusBadRequest, "invalid_dpop_proof", d
	}
	jws, err := jose.ParseSignedCompact(proof, s.cfg.DPoPAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return bad("the DPoP proof is not a compact JWS with an allowed algorithm")
	}
	hdr := jws.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders["typ"].(string); typ != assertion.TypDPoP {
		return bad("the DPoP proof's typ must be dpop+jwt")
	}
	if hdr.JSONWebKey == nil || !hdr.JSONWebKey.IsPublic() || !hdr.JSONWebKey.Valid() {
		return bad("the DPoP proof's jwk header must hold a public key")
	}
	payload, err := jws.Verify(hdr.JSONWebKey.Key)
	if err != nil {
		return bad("the DPoP proof's signature does not verify with its jwk")
	}
	var c assertion.DPoPClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return bad("the DPoP proof's claims are not JSON")
	}
	// RFC 9449 §4.3: compare after RFC 3986 normalisation.
	want, err := assertion.NormalizeHTU(url)
	if err != nil {
		return bad("bad request URL")
	}
	got, err := assertion.NormalizeHTU(c.URL)
	now := s.cfg.Now()
	iat := time.Unix(c.IssuedAt, 0)
	switch {
	case c.Method != method:
		return bad(fmt.Sprintf("htm is %q, the request is %s", c.Method, method))
	case err != nil || got != want:
		return bad(fmt.Sprintf("htu is %q, the request went to %s", c.URL, want))
	case c.ID == "":
		return bad("the DPoP proof has no jti")
	case iat.After(now.Add(s.cfg.Skew)) || now.Sub(iat) > proofMaxAge+s.cfg.Skew:
		return bad("the DPoP proof's iat is not recent (check the clock)")
	case ath != "" && c.ATH != ath:
		return bad("the DPoP proof's ath does not match the access token")
	}
	if !s.cfg.NoNonce && !s.nonceOK(c.Nonce) {
		return "", http.StatusBadRequest, "use_dpop_nonce", "use the DPoP-Nonce this server sent"
	}
	if !s.remember("dpop", c.ID, iat.Add(proofMaxAge+2*s.cfg.Skew)) {
		return bad("the DPoP proof's jti has been used before (replay)")
	}
	jkt, err = signer.Thumbprint(hdr.JSONWebKey.Key)
	if err != nil {
		return bad("cannot compute the thumbprint of the DPoP key")
	}
	return jkt, 0, "", ""
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
