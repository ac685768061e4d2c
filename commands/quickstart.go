package commands

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/profile"
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
			"stderr, with the commands that replay it with a built binary against jwkctl dev sts;\n" +
			"stdout gets a JSON summary. Nothing leaves this machine. The key is removed at the end\n" +
			"unless --keep DIR is given.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "alg", Usage: "key `ALG` (ES256 is quick; PS256 makes an RSA key as HelseID clients often use)", Value: "ES256", EnvVars: env("quickstart-alg")},
			&cli.IntFlag{Name: "bits", Usage: "RSA key size (`BITS`) for PS/RS algs", DefaultText: "2048", EnvVars: env("quickstart-bits")},
			&cli.PathFlag{Name: "keep", Usage: "keep the generated key in `DIR` (and say where) instead of a temporary directory that is removed at the end", EnvVars: env("quickstart-keep")},
			&cli.BoolFlag{Name: "show-token", Usage: "include the access token in the output (it is a secret while it lives)", EnvVars: env("show-token")},
		},
		Action: runQuickstart,
	}
}

// replayIssuer is where `jwkctl dev sts` listens by default: the replay
// commands the narration prints use it, since the in-process STS has a
// random port that is gone when quickstart ends.
const replayIssuer = "http://127.0.0.1:8080"

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
	// replay prints the commands that do the step again with a built
	// binary, against `jwkctl dev sts` at replayIssuer.
	replay := func(cmds ...string) {
		fmt.Fprintf(w, "   To replay it:\n")
		for _, cmd := range cmds {
			fmt.Fprintf(w, "     $ %s\n", cmd)
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
	kept := c.Path("keep")
	dir := kept
	if dir == "" {
		if dir, err = os.MkdirTemp("", "jwkctl-quickstart-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	keyPath := filepath.Join(dir, "quickstart-client.json")
	uri := "file:" + keyPath
	// The replay commands name a key file of their own in the working
	// directory, or the kept one.
	replayPath := "quickstart-client.json"
	if kept != "" {
		replayPath = keyPath
	}
	replayURI := profile.ShellQuote("file:" + replayPath)
	replayJWK := strings.TrimSuffix(replayPath, ".json") + ".jwk"

	// 1. Generate.
	u, err := keystore.Parse(uri)
	if err != nil {
		return err
	}
	key, err := keystore.Generate(c.Context, keystore.GenerateRequest{URI: u, Spec: spec})
	if err != nil {
		return err
	}
	where := "a temporary directory, removed when quickstart ends (--keep DIR keeps it)"
	if kept != "" {
		where = dir + ", kept after quickstart ends (--keep)"
	}
	say("Generate a keypair", "A new %s key (%s) is written 0600 to %s in\n%s.\n"+
		"With an HSM or Cloud KMS the same command creates the key inside the device, and the\n"+
		"private half never leaves it.", describePublic(key.Public()), alg, filepath.Base(keyPath), where)
	genCmd := "jwkctl keys generate --key " + replayURI + " --alg " + string(alg)
	if b := rsaBits(key.Public()); b > 0 {
		genCmd += " --bits " + strconv.Itoa(b)
	}
	if kept != "" {
		genCmd += "    # skip this one to reuse the kept key"
	}
	replay(genCmd)

	// 2. Export the public JWK.
	s, err := signer.New(key, alg)
	if err != nil {
		return err
	}
	pub := s.Public()
	pubJSON, _ := json.Marshal(pub)
	say("Export the public JWK", "%s\n"+
		"kid is the key's RFC 7638 thumbprint. In production you paste this JWK into NHN\n"+
		"Selvbetjening for your HelseID client; the private key is never uploaded or e-mailed.", pubJSON)
	replay("jwkctl keys public --key " + replayURI + " > " + profile.ShellQuote(replayJWK))

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
		"with this JWK and scope %s, as uploading to Selvbetjening would. Like HelseID it checks\n"+
		"each client assertion: the signature against the registered key, typ %s,\n"+
		"iss = sub = the client id, aud = its issuer, exp, nbf and iat (60 s at most, 10 s of clock\n"+
		"skew), and a jti never seen before. It checks each DPoP proof: the signature against its\n"+
		"jwk, typ dpop+jwt, htm and htu matching the request, a recent iat, its nonce, a new jti;\n"+
		"at the API also ath (the token's hash) and that the proof's key is the token's cnf.jkt.",
		sts.Issuer(), quickstartClient, devsts.DemoScope, assertion.TypHelseID)
	replay("jwkctl dev sts --listen " + strings.TrimPrefix(replayIssuer, "http://") + " --client " +
		profile.ShellQuote(quickstartClient+"="+replayJWK+":"+devsts.DemoScope) + "    # in a second terminal; Ctrl-C stops it")

	// 4. Sign a client assertion.
	ac, err := assertion.NewClient(s, assertion.Config{ClientID: quickstartClient, Audience: sts.Issuer()})
	if err != nil {
		return err
	}
	jws, err := ac.Sign()
	if err != nil {
		return err
	}
	say("Sign a client assertion (RFC 7523, private_key_jwt)", "header: %s\nclaims: %s\n"+
		"It lives 10 seconds and its jti is never reused; jwkctl token signs a fresh one per request.",
		jwsPart(jws, 0), jwsPart(jws, 1))
	replay("jwkctl assertion --key " + replayURI + " --client-id " + quickstartClient + " --audience " + replayIssuer)

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
	clientArgs := " --key " + replayURI + " --client-id " + quickstartClient + " --issuer " + replayIssuer + " --scope " + devsts.DemoScope + " --dpop"
	say("Get a DPoP-bound access token", "Like HelseID, the STS first answers use_dpop_nonce; jwkctl retries with the nonce, a new\n"+
		"DPoP proof and a new assertion. Got token_type %s, scope %q, expires in %ds.",
		resp.TokenType, resp.Scope, resp.ExpiresIn)
	replay("jwkctl token" + clientArgs)

	// 6. Call a protected API.
	apiPath := devsts.DemoAPIPath + "8093400"
	apiURL := sts.Issuer() + apiPath
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
	say("Call a protected API", "The request carries Authorization: DPoP <token> and a proof with ath = hash of the token.\n"+
		"The API answered %s.", apiResp.Status)
	replay("jwkctl call" + clientArgs + " " + replayIssuer + apiPath)

	if kept != "" {
		fmt.Fprintf(w, "\nDone. The key stays in %s (kid %s).\n", keyPath, s.KeyID())
	} else {
		fmt.Fprintf(w, "\nDone. The key is removed now; run jwkctl quickstart --keep DIR to keep it.\n")
	}
	fmt.Fprintf(w, "Next: docs/helseid.md takes the same steps against HelseID's test environment.\n")

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
	if kept == "" {
		summary["key"] = "(removed: " + uri + ")"
	}
	if c.Bool("show-token") {
		summary["access_token"] = resp.AccessToken
	}
	return writeJSON(c.App.Writer, summary)
}

// describePublic names a public key as it is, not as it was asked for:
// "RSA 2048-bit", "EC P-256".
func describePublic(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d-bit", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	}
	return fmt.Sprintf("%T", pub)
}

// rsaBits is the size of an RSA public key, 0 for others.
func rsaBits(pub crypto.PublicKey) int {
	if k, ok := pub.(*rsa.PublicKey); ok {
		return k.N.BitLen()
	}
	return 0
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
