package assertion

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/jwkctl/jwkctl/signer"
)

// compact builds a compact JWS. The protected header is fixed per issuer and
// encoded once (headerB64); only the claims and the signature are new each
// time, which keeps the JOSE overhead small next to the signature itself.
func compact(s *signer.Signer, headerB64 string, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("assertion: encode claims: %w", err)
	}
	return compactPayload(s, headerB64, payload)
}

// compactPayload builds a compact JWS of an already encoded payload.
func compactPayload(s *signer.Signer, headerB64 string, payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	n := len(headerB64) + 1 + enc.EncodedLen(len(payload))
	buf := make([]byte, 0, n+1+enc.EncodedLen(s.SignatureSize()))
	buf = append(buf, headerB64...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig, err := s.SignPayload(buf, s.Alg())
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

func encodeHeader(h any) (string, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("assertion: encode header: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
