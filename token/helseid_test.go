package token_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/token"
)

func TestDPoPByDefault(t *testing.T) {
	for issuer, want := range map[string]bool{
		"https://helseid-sts.nhn.no":       true,
		"https://helseid-sts.test.nhn.no":  true,
		"https://helseid-sts.test.nhn.no/": true,
		"https://HelseID-STS.nhn.no":       true,
		"http://helseid-sts.nhn.no":        false,
		"https://helseid-sts.nhn.no:8443":  false,
		"https://helseid-sts.nhn.no/x":     false,
		"https://helseid-sts.nhn.no.evil":  false,
		"https://evil.helseid-sts.nhn.no":  false,
		"https://user@helseid-sts.nhn.no":  false,
		"https://helseid-sts.utv.nhn.no":   false,
		"http://127.0.0.1:8080":            false,
		"":                                 false,
	} {
		if got := token.DPoPByDefault(issuer); got != want {
			t.Errorf("DPoPByDefault(%q) = %v, want %v", issuer, got, want)
		}
	}
}

// countingSTS serves a dev STS and counts the requests that reach its
// token endpoint.
func countingSTS(t *testing.T, cfg devsts.Config) (*devsts.Server, *atomic.Int32) {
	t.Helper()
	sts, err := devsts.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == devsts.TokenPath {
			n.Add(1)
		}
		sts.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	sts.SetIssuer(srv.URL)
	return sts, &n
}

// A key whose alg the discovery document does not list is refused before
// any token request, naming the algs the server takes.
func TestRefusesAlgTheServerDoesNotList(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := signer.New(ec, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		cfg         devsts.Config
		dpop        bool
		field, algs string
	}{
		{"assertion", devsts.Config{AssertionAlgs: []jose.SignatureAlgorithm{jose.PS256, jose.RS256}}, false,
			"token_endpoint_auth_signing_alg_values_supported", "PS256, RS256"},
		{"DPoP proof", devsts.Config{DPoPAlgs: []jose.SignatureAlgorithm{jose.ES384}}, true,
			"dpop_signing_alg_values_supported", "ES384"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sts, n := countingSTS(t, tc.cfg)
			if err := sts.RegisterClient("c", []jose.JSONWebKey{*s.Public()}, []string{devsts.DemoScope}); err != nil {
				t.Fatal(err)
			}
			c, err := token.NewClient(token.Config{Issuer: sts.Issuer(), ClientID: "c", Signer: s, DPoP: tc.dpop})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Exchange(t.Context(), token.Request{})
			if !errors.Is(err, token.ErrUnsupportedAlg) {
				t.Fatalf("err = %v, want ErrUnsupportedAlg", err)
			}
			for _, want := range []string{tc.algs, "not ES256", tc.field} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if got := n.Load(); got != 0 {
				t.Errorf("%d requests reached the token endpoint, want 0", got)
			}
		})
	}
	// The same dev STS with its default lists (every RS/PS/ES alg) takes
	// the key: the lists were the only obstacle.
	sts, n := countingSTS(t, devsts.Config{})
	if err := sts.RegisterClient("c", []jose.JSONWebKey{*s.Public()}, []string{devsts.DemoScope}); err != nil {
		t.Fatal(err)
	}
	c, err := token.NewClient(token.Config{Issuer: sts.Issuer(), ClientID: "c", Signer: s, DPoP: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exchange(t.Context(), token.Request{}); err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got != 2 {
		t.Errorf("%d token requests, want 2 (nonce challenge, then the token)", got)
	}
}

// The dev STS also enforces the lists it publishes: with the token
// endpoint given (no discovery, so no check here) the request is sent
// and refused there.
func TestDevSTSEnforcesItsAlgLists(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := signer.New(ec, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	sts, n := countingSTS(t, devsts.Config{AssertionAlgs: []jose.SignatureAlgorithm{jose.PS256}})
	if err := sts.RegisterClient("c", []jose.JSONWebKey{*s.Public()}, []string{devsts.DemoScope}); err != nil {
		t.Fatal(err)
	}
	c, err := token.NewClient(token.Config{TokenEndpoint: sts.TokenEndpoint(), Audience: sts.Issuer(), ClientID: "c", Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Exchange(t.Context(), token.Request{})
	if !errors.Is(err, token.ErrInvalidClient) || !strings.Contains(err.Error(), "PS256") {
		t.Fatalf("err = %v, want invalid_client naming PS256", err)
	}
	if n.Load() != 1 {
		t.Errorf("%d token requests, want 1", n.Load())
	}
}
