package commands

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/jwkctl/jwkctl/internal/inputfile"
	"github.com/jwkctl/jwkctl/keyimport"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/file"
	"github.com/jwkctl/jwkctl/signer"
)

func keysCommand() *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "generate, export, import, list, disable and delete signing keys",
		Subcommands: []*cli.Command{
			keysGenerateCommand(),
			keysPublicCommand(),
			keysImportCommand(),
			keysListCommand(),
			keysDeleteCommand(),
			keysDisableCommand(false),
			keysDisableCommand(true),
			keysInitSoftHSMCommand(),
			keysExpiryCommand(),
		},
	}
}

func algFlag(usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: "alg", Usage: usage, EnvVars: env("alg")}
}

func keysGenerateCommand() *cli.Command {
	return &cli.Command{
		Name:  "generate",
		Usage: "create a new keypair inside the backend and print its public JWK",
		Description: "The private key is created where --key points and never leaves it (for a file key, the file\n" +
			"is written 0600 and never overwritten). Upload the printed public JWK to NHN Selvbetjening.\n\n" +
			"Example:\n   jwkctl keys generate --key file:keys/client.json",
		Flags: append([]cli.Flag{
			keyFlag(true),
			algFlag("JOSE `ALG`: PS256, PS384, PS512, RS256, RS384, RS512, ES256, ES384 or ES512 (default: PS256)"),
			&cli.IntFlag{Name: "bits", Usage: "RSA key size in `BITS`: 2048, 3072 or 4096", DefaultText: "4096", EnvVars: env("bits")},
			&cli.StringFlag{Name: "protection-level", Usage: "Cloud KMS and Azure Key Vault keys: `LEVEL` software or hsm (default: software, or an existing KMS key's own; Managed HSM keys are always hsm)", EnvVars: env("protection-level")},
		}, backendFlags()...),
		Action: runKeysGenerate,
	}
}

func runKeysGenerate(c *cli.Context) error {
	u, err := parseKeyURI(c)
	if err != nil {
		return err
	}
	alg := keystore.DefaultAlg
	if s := c.String("alg"); s != "" {
		if alg, err = signer.ParseAlg(s); err != nil {
			return err
		}
	}
	spec, err := keystore.SpecFor(alg, c.Int("bits"))
	if err != nil {
		return err
	}
	opts, err := backendOptions(c)
	if err != nil {
		return err
	}
	opts.ProtectionLevel = c.String("protection-level")
	// Cheap refusals (name taken, no such algorithm) before the slow part
	// and its progress line.
	if err := keystore.CheckGenerate(c.Context, keystore.GenerateRequest{URI: u, Spec: spec, Options: opts}); err != nil {
		return err
	}
	stop := progress(c.App.ErrWriter, fmt.Sprintf("generating %s key for %s in %s", spec, alg, u))
	key, err := keystore.Generate(c.Context, keystore.GenerateRequest{URI: u, Spec: spec, Options: opts})
	stop(err == nil)
	if err != nil {
		return err
	}
	jwk, err := printPublicJWK(c, key, alg)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "key %s created (kid %s). Upload the public JWK above to Selvbetjening; the private key stays in %s.\n",
		key.URI(), jwk.KeyID, u.Scheme)
	return nil
}

// printPublicJWK writes the key's public JWK to stdout, with the kid its
// signatures carry (the thumbprint, or the kid the key records).
func printPublicJWK(c *cli.Context, key keystore.Key, alg jose.SignatureAlgorithm) (jose.JSONWebKey, error) {
	s, err := signer.New(key, alg)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	jwk := s.Public()
	return *jwk, writeJSON(c.App.Writer, jwk)
}

// progress shows that a slow step is running: a spinner when w is a
// terminal, one line otherwise. The returned func ends it.
func progress(w io.Writer, what string) func(ok bool) {
	f, isFile := w.(*os.File)
	if !isFile || !isTerminal(f) {
		fmt.Fprintf(w, "%s…\n", what)
		return func(bool) {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		frames := `|/-\`
		t := time.NewTicker(120 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(w, "\r%s %c", what, frames[i%len(frames)])
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func(ok bool) {
		close(done)
		<-finished
		mark := "done"
		if !ok {
			mark = "failed"
		}
		fmt.Fprintf(w, "\r%s: %s\n", what, mark)
	}
}

// isTerminal reports whether f is a terminal (not merely a character
// device: /dev/null is one too).
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func keysPublicCommand() *cli.Command {
	return &cli.Command{
		Name:  "public",
		Usage: "print the public key (JWK, JWKS or PEM) with the kid it signs with (the RFC 7638 thumbprint unless a registered kid was kept)",
		Flags: append([]cli.Flag{
			keyFlag(true),
			algFlag("JOSE `ALG` to put in the JWK (default: PS256 for RSA, the curve's ES alg for EC)"),
			kidFlag(),
			&cli.StringFlag{Name: "format", Usage: "output `FORMAT`: jwk, jwks or pem", Value: "jwk", EnvVars: env("format")},
		}, backendFlags()...),
		Action: runKeysPublic,
	}
}

func runKeysPublic(c *cli.Context) error {
	format := c.String("format")
	switch format {
	case "jwk", "jwks", "pem":
	default:
		return cli.Exit(fmt.Sprintf("--format must be jwk, jwks or pem, not %q", format), ExitUsage)
	}
	key, err := openKey(c)
	if err != nil {
		return err
	}
	alg, err := keyAlg(c, key)
	if err != nil {
		return err
	}
	s, err := signer.New(key, alg)
	if err != nil {
		return err
	}
	if s, err = s.WithKeyID(c.String("kid")); err != nil {
		return err
	}
	jwk := *s.Public()
	switch format {
	case "jwks":
		return writeJSON(c.App.Writer, signer.JWKS(jwk))
	case "pem":
		pem, err := signer.PublicPEM(key.Public())
		if err != nil {
			return err
		}
		_, err = c.App.Writer.Write(pem)
		return err
	}
	return writeJSON(c.App.Writer, jwk)
}

// keyAlg is --alg checked against the key, or the key's default alg.
func keyAlg(c *cli.Context, key keystore.Key) (jose.SignatureAlgorithm, error) {
	if s := c.String("alg"); s != "" {
		alg, err := signer.ParseAlg(s)
		if err != nil {
			return "", err
		}
		if err := signer.Fits(alg, key.Public()); err != nil {
			return "", err
		}
		return alg, nil
	}
	return signer.DefaultAlg(key)
}

func keysImportCommand() *cli.Command {
	return &cli.Command{
		Name:  "import",
		Usage: "store an existing private key (e.g. the one in a Selvbetjening download) in a backend",
		Description: "Reads the private key in --from, validates it and stores it at --key. The target is never\n" +
			"overwritten. Afterwards, delete the source file securely. The format is told from the content:\n\n" +
			"   - the HelseID configuration JSON downloaded from NHN Selvbetjening (privateJwk or rsaPrivateKey)\n" +
			"   - a private JWK, or a JWK Set (give --kid when it holds several keys)\n" +
			"   - PEM: PKCS#1 (BEGIN RSA PRIVATE KEY), PKCS#8 (BEGIN PRIVATE KEY), SEC1 (BEGIN EC PRIVATE KEY),\n" +
			"     encrypted PKCS#8 (BEGIN ENCRYPTED PRIVATE KEY; give --from-passphrase-file); the\n" +
			"     unencrypted ones in binary DER too\n" +
			"   - a passphrase-encrypted JWE (PBES2), compact or JSON: jwkctl's encrypted key files, step's keys\n" +
			"   - .NET RSA XML (<RSAKeyValue>)\n\n" +
			"Keys must be RSA (2048 bits or more) or EC P-256/384/521. A UTF-8 byte order mark is fine.\n\n" +
			"Examples:\n   jwkctl keys import --key file:keys/client.json --from ~/Downloads/HelseID-config.json\n" +
			"   jwkctl keys import --key file:keys/client.json --from key.pem --from-passphrase-file pass.txt",
		Flags: append([]cli.Flag{
			keyFlag(true),
			&cli.PathFlag{Name: "from", Usage: "`FILE` holding the private key to import (any format above)", Required: true, EnvVars: env("from")},
			&cli.PathFlag{Name: "from-passphrase-file", Usage: "read the passphrase of an encrypted --from file from `FILE`", EnvVars: env("from-passphrase-file")},
			&cli.StringFlag{Name: "kid", Usage: "import the key with this `KID` from a JWK Set of several", EnvVars: env("kid")},
			algFlag("JOSE `ALG` the key is for (default: the source's alg, else PS256 / the curve's ES alg)"),
			keepKidFlag(),
		}, backendFlags()...),
		Action: runKeysImport,
	}
}

func runKeysImport(c *cli.Context) error {
	u, err := parseKeyURI(c)
	if err != nil {
		return err
	}
	from := c.Path("from")
	if u.Scheme == keystore.SchemeFile && samePath(u.Path, from) {
		return fmt.Errorf("--from and --key name the same file %s; import into a new file", from)
	}
	data, err := inputfile.Read(from, inputfile.MaxKey, "a key file")
	if err != nil {
		return err
	}
	var fromPass []byte
	if f := c.Path("from-passphrase-file"); f != "" {
		if fromPass, err = file.ReadPassphraseFile(f); err != nil {
			return err
		}
	}
	kid := c.String("kid")
	parsed, err := keyimport.Parse(data, keyimport.Options{Passphrase: fromPass, Kid: kid})
	switch {
	case errors.Is(err, keyimport.ErrEncrypted):
		return fmt.Errorf("%s is an encrypted key file; give its passphrase with --from-passphrase-file", from)
	case errors.Is(err, keyimport.ErrKid) && kid == "":
		return fmt.Errorf("%s: %w (--kid)", from, err)
	case err != nil:
		return fmt.Errorf("%s: %w", from, err)
	}
	priv, alg, srcKid := parsed.Private, parsed.Alg, parsed.Kid
	client := ""
	if parsed.Format == keyimport.FormatDownload {
		if d, err := keyimport.ParseDownload(data); err == nil {
			client = fmt.Sprintf(" (client %s)", d.ClientID)
		}
	}
	if s := c.String("alg"); s != "" {
		if alg, err = signer.ParseAlg(s); err != nil {
			return err
		}
	}
	if alg == "" {
		if alg, err = signer.DefaultAlg(priv); err != nil {
			return err
		}
	}
	if err := signer.Fits(alg, priv.Public()); err != nil {
		return err
	}
	keep, err := keptKid(c, srcKid, from)
	if err != nil {
		return err
	}
	opts, err := backendOptions(c)
	if err != nil {
		return err
	}
	key, err := keystore.Import(c.Context, keystore.ImportRequest{URI: u, Private: priv, Alg: alg, Kid: keep, Options: opts})
	if err != nil {
		return err
	}
	// Said once the import has worked, so a failed one prints one line.
	article := "a"
	if strings.IndexByte("aeiou", parsed.Format[0]) >= 0 {
		article = "an"
	}
	fmt.Fprintf(c.App.ErrWriter, "read %s %s %s key from %s%s\n", article, parsed.Format, parsed.Spec(), from, client)
	for _, w := range parsed.Warnings {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
	}
	jwk, err := printPublicJWK(c, key, alg)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "imported into %s (kid %s). %s still holds the private key: delete it securely once you have checked the import.\n",
		key.URI(), jwk.KeyID, from)
	// A backend that cannot record the alg (a PKCS#11 token) signs with
	// the key's default unless told: say so, or what was registered and
	// what is signed would differ.
	if def, err := signer.DefaultAlg(key); err == nil && def != alg {
		fmt.Fprintf(c.App.ErrWriter, "note: %s keys do not record their alg: this key signs %s unless told %s (alg: %s in the profile, or --alg %s).\n",
			key.URI().Scheme, def, alg, alg, alg)
	}
	if keep != "" && !recordsKid(key, keep) {
		fmt.Fprintf(c.App.ErrWriter, "note: %s keys cannot record a kid: put kid: %s in the profile that uses this key (or give --kid %s to token, call and assertion), so assertions carry the registered kid.\n",
			key.URI().Scheme, keep, keep)
	}
	if keep == "" && srcKid != "" && srcKid != jwk.KeyID {
		fmt.Fprintf(c.App.ErrWriter, "note: %s gave the key kid %q; jwkctl names every key by its RFC 7638 thumbprint, so assertions now carry kid %s. "+
			"If the key is already registered in Selvbetjening under kid %q, import it again with --keep-kid; else register the public JWK above, so the registration carries this kid.\n",
			from, srcKid, jwk.KeyID, srcKid)
	}
	return nil
}

// keepKidFlag is --keep-kid, for commands that import a key.
func keepKidFlag() *cli.BoolFlag {
	return &cli.BoolFlag{Name: "keep-kid", Usage: "sign with the kid the key came with (the one it is registered under in Selvbetjening) instead of its RFC 7638 thumbprint", EnvVars: env("keep-kid")}
}

// keptKid is the source's kid when --keep-kid asks to keep it, else "".
func keptKid(c *cli.Context, srcKid, from string) (string, error) {
	if !c.Bool("keep-kid") {
		return "", nil
	}
	if srcKid == "" {
		return "", fmt.Errorf("--keep-kid: %s gives the key no kid to keep; leave --keep-kid out to use the RFC 7638 thumbprint", from)
	}
	if err := signer.CheckKeyID(srcKid); err != nil {
		return "", fmt.Errorf("--keep-kid: %s: %w", from, err)
	}
	return srcKid, nil
}

// recordsKid reports whether key signs with kid by itself (a key file
// that holds it), so no profile entry is needed.
func recordsKid(key keystore.Key, kid string) bool {
	r, ok := key.(keystore.KidRecorder)
	return ok && r.RecordedKid() == kid
}

func samePath(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	if aa == bb {
		return true
	}
	fa, err1 := os.Stat(aa)
	fb, err2 := os.Stat(bb)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

func keysListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the keys under a URI prefix (a directory, a token, a key ring)",
		Description: "Examples:\n   jwkctl keys list --key file:keys/\n" +
			"   jwkctl keys list --key 'pkcs11:token=jwkctl?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:PIN'",
		Flags:  append([]cli.Flag{keyFlag(true), outputFlag()}, backendFlags()...),
		Action: runKeysList,
	}
}

type listedKey struct {
	URI   string           `json:"uri"`
	Kid   string           `json:"kid,omitempty"`
	Kty   string           `json:"kty,omitempty"`
	Algs  []string         `json:"algs,omitempty"`
	State string           `json:"state,omitempty"`
	JWK   *jose.JSONWebKey `json:"jwk,omitempty"`
}

func runKeysList(c *cli.Context) error {
	u, err := parseKeyURI(c)
	if err != nil {
		return err
	}
	opts, err := backendOptions(c)
	if err != nil {
		return err
	}
	infos, err := keystore.List(c.Context, c.String("key"), opts)
	if err != nil {
		return err
	}
	out := make([]listedKey, 0, len(infos))
	for _, in := range infos {
		lk := listedKey{URI: in.URI.String(), State: in.State}
		algs := in.Algs
		if in.Public != nil {
			if len(algs) == 0 {
				algs = signer.AlgsFor(in.Public)
			}
			var alg jose.SignatureAlgorithm
			if len(in.Algs) == 1 {
				alg = in.Algs[0]
			}
			if jwk, err := signer.PublicJWK(in.Public, alg); err == nil {
				if in.Kid != "" { // the kid it signs with, kept from its registration
					jwk.KeyID = in.Kid
				}
				lk.Kid, lk.JWK = jwk.KeyID, &jwk
				lk.Kty = ktyOf(jwk)
			}
		}
		for _, a := range algs {
			lk.Algs = append(lk.Algs, string(a))
		}
		out = append(out, lk)
	}
	if c.String("output") == "json" {
		return writeJSON(c.App.Writer, out)
	}
	if len(out) == 0 {
		fmt.Fprintln(c.App.ErrWriter, "no keys found under", u)
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "URI\tTYPE\tALGS\tKID\tSTATE")
	for _, k := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.URI, dash(k.Kty), dash(strings.Join(k.Algs, ",")), dash(k.Kid), dash(k.State))
	}
	return tw.Flush()
}

func ktyOf(jwk jose.JSONWebKey) string {
	b, err := jwk.MarshalJSON()
	if err != nil {
		return ""
	}
	var m struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
	}
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	if m.Crv != "" {
		return m.Kty + " " + m.Crv
	}
	return m.Kty
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// confirm asks the user to type yes. Without a terminal to ask on, it
// refuses: action says what was not done.
func confirm(c *cli.Context, action, question string) error {
	in, isFile := c.App.Reader.(*os.File)
	if c.App.Reader == nil || (isFile && !isTerminal(in)) {
		return fmt.Errorf("refusing to %s without confirmation: run it in a terminal or add --yes", action)
	}
	fmt.Fprintf(c.App.ErrWriter, "%s Type yes to confirm: ", question)
	line, _ := bufio.NewReader(c.App.Reader).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return fmt.Errorf("not confirmed: did not %s", action)
	}
	return nil
}

// describeKey is the key's URI with its kid, when the key opens.
func describeKey(c *cli.Context, u *keystore.URI, opts keystore.Options) string {
	what := u.String()
	if key, err := keystore.Open(c.Context, c.String("key"), opts); err == nil {
		if kid, err := signer.KeyID(key); err == nil {
			what += " (kid " + kid + ")"
		}
	}
	return what
}

func keysDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:  "delete",
		Usage: "delete a key from its backend (asks for confirmation unless --yes)",
		Description: "Deleting a key cannot be undone. Make sure no client still uses it: check that its kid is no\n" +
			"longer registered in Selvbetjening first.",
		Flags: append([]cli.Flag{
			keyFlag(true),
			&cli.BoolFlag{Name: "yes", Usage: "do not ask for confirmation", EnvVars: env("yes")},
		}, backendFlags()...),
		Action: runKeysDelete,
	}
}

func runKeysDelete(c *cli.Context) error {
	return changeKey(c, "delete", "? This cannot be undone.", keystore.Delete)
}

// changeKey runs a destructive step on --key: it asks first (unless
// --yes, or question is empty), then reports the step as done.
func changeKey(c *cli.Context, verb, question string, do func(context.Context, string, keystore.Options) error) error {
	u, err := parseKeyURI(c)
	if err != nil {
		return err
	}
	opts, err := backendOptions(c)
	if err != nil {
		return err
	}
	// Only a key that is there is worth a question. (Other errors from
	// opening it, such as a missing passphrase, do not stop a delete.)
	if _, err := keystore.Open(c.Context, c.String("key"), opts); errors.Is(err, keystore.ErrNotFound) {
		return err
	}
	if question != "" && !c.Bool("yes") {
		q := strings.ToUpper(verb[:1]) + verb[1:] + " key " + describeKey(c, u, opts) + question
		if err := confirm(c, verb+" "+u.String(), q); err != nil {
			return err
		}
	}
	if err := do(c.Context, c.String("key"), opts); err != nil {
		return err
	}
	if verb == "delete" && u.Scheme == keystore.SchemeGCPKMS {
		fmt.Fprintf(c.App.ErrWriter, "scheduled %s for destruction; until then Cloud KMS can restore it (gcloud kms keys versions restore)\n", u)
		return nil
	}
	if verb == "delete" && u.Scheme == keystore.SchemeAWSKMS {
		fmt.Fprintf(c.App.ErrWriter, "scheduled %s for deletion in %d days; until then aws kms cancel-key-deletion restores it\n", u, awsDeletionWindowDays)
		return nil
	}
	fmt.Fprintf(c.App.ErrWriter, "%sd %s\n", verb, u)
	return nil
}

// keysDisableCommand is "keys disable" or, with enable, "keys enable".
func keysDisableCommand(enable bool) *cli.Command {
	cmd := &cli.Command{
		Name:  "disable",
		Usage: "switch a KMS or HSM key off without destroying it (asks for confirmation unless --yes)",
		Description: "A disabled key refuses to sign until jwkctl keys enable switches it back on: the safe first\n" +
			"step of retiring a key. Cloud KMS sets the version's state to DISABLED, AWS KMS disables the\n" +
			"key (DisableKey), Azure Key Vault sets the key version's enabled attribute to false; PKCS#11\n" +
			"sets CKA_SIGN to false on the private key. File keys cannot be disabled, only deleted.",
		Flags: append([]cli.Flag{
			keyFlag(true),
			&cli.BoolFlag{Name: "yes", Usage: "do not ask for confirmation", EnvVars: env("yes")},
		}, backendFlags()...),
	}
	if enable {
		cmd.Name = "enable"
		cmd.Usage = "switch a disabled KMS or HSM key back on"
		cmd.Description = "Undoes jwkctl keys disable. A destroyed (or destroy-scheduled) KMS version cannot be enabled:\n" +
			"restore it first with gcloud kms keys versions restore (AWS KMS: aws kms cancel-key-deletion)."
		cmd.Flags = append([]cli.Flag{keyFlag(true)}, backendFlags()...)
	}
	question := "? It will refuse to sign until enabled again."
	if enable {
		question = ""
	}
	cmd.Action = func(c *cli.Context) error {
		// A backend that cannot switch keys says so before any question.
		if u, err := parseKeyURI(c); err == nil {
			if b, err := keystore.Lookup(u.Scheme); err == nil {
				if _, ok := b.(keystore.Disabler); !ok {
					return fmt.Errorf("%w: %s keys cannot be disabled or enabled, only deleted", keystore.ErrUnsupported, u.Scheme)
				}
			}
		}
		return changeKey(c, cmd.Name, question, func(ctx context.Context, uri string, opts keystore.Options) error {
			return keystore.SetEnabled(ctx, uri, enable, opts)
		})
	}
	return cmd
}
