package commands

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/token"
)

const quickstartClient = "jwkctl-quickstart"

func quickstartCommand() *cli.Command {
	return &cli.Command{
		Name:  "quickstart",
		Usage: "the whole story in one command: key → public JWK → assertion → DPoP token → API call, offline",
		Description: "Runs on embedded defaults with nothing to set up: a file key in a temporary directory and\n" +
			"an in-process dev STS standing in for HelseID and Selvbetjening. Each step is explained on\n" +
			"stderr; stdout gets a JSON summary. Nothing leaves this machine.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "alg", Usage: "key `ALG` (ES256 is quick; PS256 makes an RSA key as HelseID clients often use)", Value: "ES256", EnvVars: env("quickstart-alg")},
			&cli.IntFlag{Name: "bits", Usage: "RSA key size (`BITS`) for PS/RS algs", DefaultText: "2048", EnvVars: env("quickstart-bits")},
			&cli.PathFlag{Name: "keep", Usage: "keep the generated key in `DIR` instead of a temporary directory", EnvVars: env("quickstart-keep")},
			&cli.BoolFlag{Name: "show-token", Usage: "include the access token in the output (it is a secret while it lives)", EnvVars: env("show-token")},
		},
		Action: runQuickstart,
	}
}

func runQuickstart(c *cli.Context) error {
	w := c.App.ErrWriter
	step := 0
	say := func(title, format string, args ...any) {
		step++
		fmt.Fprintf(w, "\n%d. %s\n", step, title)
		for _, line := range strings.Split(fmt.Sprintf(format, args...), "\n") {
			fmt.Fprintf(w, "   %s\n", line)
		}
	}

	alg, err := signer.ParseAlg(c.String("alg"))
	if err != nil {
		return err
	}
	bits := c.Int("bits")
	if bits == 0 && alg[0] != 'E' {
		bits = 2048
	}
	spec, err := keystore.SpecFor(alg, bits)
	if err != nil {
		return err
	}
	dir := c.Path("keep")
	if dir == "" {
		if dir, err = os.MkdirTemp("", "jwkctl-quickstart-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	uri := "file:" + filepath.Join(dir, "quickstart-client.json")

	// 1. Generate.
	u, err := keystore.Parse(uri)
	if err != nil {
		return err
	}
	key, err := keystore.Generate(c.Context, keystore.GenerateRequest{URI: u, Spec: spec})
	if err != nil {
		return err
	}
	say("Generate a keypair", "jwkctl keys generate --key %s --alg %s\n"+
		"A new %s key is written 0600 to %s. With an HSM or Cloud KMS the same command\n"+
		"creates the key inside the device, and the private half never leaves it.", uri, alg, spec, u.Path)

	// 2. Export the public JWK.
	s, err := signer.New(key, alg)
	if err != nil {
		return err
	}
	pub := s.Public()
	pubJSON, _ := json.Marshal(pub)
	say("Export the public JWK", "jwkctl keys public --key %s\n%s\n"+
		"kid is the key's RFC 7638 thumbprint. In production you paste this JWK into NHN\n"+
		"Selvbetjening for your HelseID client; the private key is never uploaded or e-mailed.", uri, pubJSON)

	// 3. Register it with an in-process dev STS.
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		return err
	}
	defer stop()
	if err := sts.RegisterClient(quickstartClient, []jose.JSONWebKey{*pub}, []string{devsts.DemoScope}); err != nil {
		return err
	}
	say("Register the public key", "A dev STS stands in for HelseID at %s and registers client %q\n"+
		"with this JWK and scope %s, as uploading to Selvbetjening would.", sts.Issuer(), quickstartClient, devsts.DemoScope)

	// 4. Sign a client assertion.
	ac, err := assertion.NewClient(s, assertion.Config{ClientID: quickstartClient, Audience: sts.Issuer()})
	if err != nil {
		return err
	}
	jws, err := ac.Sign()
	if err != nil {
		return err
	}
	say("Sign a client assertion (RFC 7523, private_key_jwt)", "jwkctl assertion --key %s --client-id %s --audience %s\n"+
		"header: %s\nclaims: %s\n"+
		"It lives 10 seconds and its jti is never reused; jwkctl token signs a fresh one per request.",
		uri, quickstartClient, sts.Issuer(), jwsPart(jws, 0), jwsPart(jws, 1))

	// 5. Get a DPoP-bound token.
	tc, err := token.NewClient(token.Config{Issuer: sts.Issuer(), ClientID: quickstartClient, Signer: s, DPoP: true, Scopes: []string{devsts.DemoScope}})
	if err != nil {
		return err
	}
	src := token.NewSource(tc)
	resp, err := src.Response(c.Context)
	if err != nil {
		return err
	}
	say("Get a DPoP-bound access token", "jwkctl token --key %s --client-id %s --issuer %s --scope %s --dpop\n"+
		"Like HelseID, the STS first answers use_dpop_nonce; jwkctl retries with the nonce, a new\n"+
		"DPoP proof and a new assertion. Got token_type %s, scope %q, expires in %ds.",
		uri, quickstartClient, sts.Issuer(), devsts.DemoScope, resp.TokenType, resp.Scope, resp.ExpiresIn)

	// 6. Call a protected API.
	apiURL := sts.Issuer() + devsts.DemoAPIPath + "8093400"
	hc := token.NewHTTPClient(src, nil)
	req, err := http.NewRequestWithContext(c.Context, http.MethodGet, apiURL, nil)
	if err != nil {
		return err
	}
	apiResp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer apiResp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(apiResp.Body, 1<<20))
	if err != nil {
		return err
	}
	if apiResp.StatusCode != http.StatusOK {
		return fmt.Errorf("demo API answered %s: %s", apiResp.Status, oneLine(string(body)))
	}
	say("Call a protected API", "jwkctl call --key %s --client-id %s --issuer %s --scope %s --dpop \\\n    %s\n"+
		"The request carries Authorization: DPoP <token> and a proof with ath = hash of the token.\n"+
		"The API answered %s.", uri, quickstartClient, sts.Issuer(), devsts.DemoScope, apiURL, apiResp.Status)

	fmt.Fprintf(w, "\nDone. Next: docs/helseid.md takes the same steps against HelseID's test environment.\n")

	summary := map[string]any{
		"key":          uri,
		"kid":          s.KeyID(),
		"alg":          string(alg),
		"client_id":    quickstartClient,
		"issuer":       sts.Issuer(),
		"token_type":   resp.TokenType,
		"scope":        resp.Scope,
		"expires_in":   resp.ExpiresIn,
		"api_response": json.RawMessage(body),
	}
	if c.Path("keep") == "" {
		summary["key"] = "(removed: " + uri + ")"
	}
	if c.Bool("show-token") {
		summary["access_token"] = resp.AccessToken
	}
	return writeJSON(c.App.Writer, summary)
}

// jwsPart decodes one part of a compact JWS for display.
func jwsPart(jws string, i int) string {
	parts := strings.Split(jws, ".")
	if i >= len(parts) {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		return ""
	}
	return string(b)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
