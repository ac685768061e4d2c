package commands

import (
	"bufio"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/inputfile"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keyimport"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/token"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "set up a client from the HelseID configuration downloaded from Selvbetjening: key and profile",
		Description: "Reads the JSON file Selvbetjening offers for download (clientId, authority, scopes and the\n" +
			"private key in privateJwk), stores the key at --key (a file next to the config by default, or\n" +
			"straight into a PKCS#11 token), writes a profile, and proves the result: a self-test signature\n" +
			"checked with the downloaded key's public half, or with --check a token from the issuer.\n" +
			"Running it again changes nothing and says what is already there; a different key or different\n" +
			"profile values are refused. Afterwards delete the download: it holds the private key.\n\n" +
			"Examples:\n" +
			"   jwkctl init --from 'HelseID Configuration my-client.json' --profile helseid-test --check\n" +
			"   jwkctl init --from download.json --keep-kid \\\n" +
			"     --key 'pkcs11:token=jwkctl;object=helseid?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/jwkctl/pin'",
		Flags: append([]cli.Flag{
			&cli.PathFlag{Name: "from", Usage: "the HelseID configuration `FILE` downloaded from Selvbetjening", Required: true, EnvVars: env("from")},
			&cli.StringFlag{Name: "key", Usage: "store the key at this `URI` (default: file:keys/PROFILE.json next to the config file; pkcs11:… moves it into an HSM)", EnvVars: env("key")},
			&cli.StringFlag{Name: "profile", Aliases: []string{"p"}, Usage: "write profile `NAME` (default: from the download's clientName)", EnvVars: env("profile")},
			&cli.PathFlag{Name: "config", Usage: "profiles `FILE` (default $JWKCTL_CONFIG, else ~/.config/jwkctl/config.yaml)", EnvVars: env("config")},
			keepKidFlag(),
			&cli.BoolFlag{Name: "check", Usage: "prove the setup by getting a token from the issuer (default: a self-test signature, offline)", EnvVars: env("check")},
			&cli.BoolFlag{Name: "delete-download", Usage: "delete the download afterwards without asking", EnvVars: env("delete-download")},
			&cli.BoolFlag{Name: "keep-download", Usage: "keep the download and do not ask", EnvVars: env("keep-download")},
		}, backendFlags()...),
		Action: runInit,
	}
}

// initPlan is what init will do, worked out from the download and what
// already exists, before anything is written.
type initPlan struct {
	name    string
	want    *profile.Profile // the profile to write (Kid filled in once the key is known)
	private crypto.Signer
	alg     jose.SignatureAlgorithm
	kid     string // the kid assertions must carry: kept, else the thumbprint
	keep    string // the registered kid to keep, "" for the thumbprint
	key     keystore.Key
	// keyExists and profileDone say what an earlier run already made.
	keyExists, profileDone bool
}

func runInit(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("init takes no arguments, got %q (the download goes in --from)", c.Args().First()), ExitUsage)
	}
	if c.Bool("delete-download") && c.Bool("keep-download") {
		return cli.Exit("--delete-download and --keep-download contradict each other; give one", ExitUsage)
	}
	from := c.Path("from")
	data, err := inputfile.Read(from, inputfile.MaxKey, "a HelseID configuration downloaded from Selvbetjening")
	if err != nil {
		return err
	}
	d, err := keyimport.ParseDownload(data)
	if err != nil {
		if p, perr := keyimport.Parse(data, keyimport.Options{}); perr == nil && p.Format != keyimport.FormatDownload {
			return fmt.Errorf("%s holds a bare %s, not the HelseID configuration Selvbetjening offers for download: store the key with jwkctl keys import --from, and give the client settings as flags or in a profile", from, p.Format)
		}
		return fmt.Errorf("%s: %w", from, err)
	}
	cfgPath := c.Path("config")
	if cfgPath == "" {
		if cfgPath, err = profile.DefaultPath(); err != nil {
			return err
		}
	}
	opts, err := backendOptions(c)
	if err != nil {
		return err
	}
	plan, err := planInit(c, d, from, cfgPath, opts)
	if err != nil {
		return err
	}
	for _, w := range d.Key.Warnings {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s: %s\n", from, w)
	}
	if len(d.GrantTypes) > 0 && !slices.Contains(d.GrantTypes, "client_credentials") {
		fmt.Fprintf(c.App.ErrWriter, "warning: the client's grant types are %s; jwkctl token asks for client_credentials, which HelseID will refuse for this client\n",
			strings.Join(d.GrantTypes, ", "))
	}
	if err := applyInit(c, plan, cfgPath, opts); err != nil {
		return err
	}
	if err := proveInit(c, plan, opts); err != nil {
		return err
	}
	return offerDelete(c, from)
}

// planInit reads what exists (the config, the key) and decides what to
// write. It changes nothing, so a refusal leaves every file as it was.
func planInit(c *cli.Context, d *keyimport.Download, from, cfgPath string, opts keystore.Options) (*initPlan, error) {
	issuer := strings.TrimRight(d.Authority, "/")
	if issuer == "" {
		return nil, fmt.Errorf("%s: %w: it has no authority (the issuer)", from, keyimport.ErrDownload)
	}
	if err := token.CheckURL(issuer); err != nil {
		return nil, fmt.Errorf("%s: the authority: %w", from, err)
	}
	p := &initPlan{private: d.Key.Private, alg: d.Key.Alg}
	if p.alg == "" {
		var err error
		if p.alg, err = signer.DefaultAlg(p.private); err != nil {
			return nil, err
		}
	}
	if err := signer.Fits(p.alg, p.private.Public()); err != nil {
		return nil, fmt.Errorf("%s: the key's alg: %w", from, err)
	}
	var err error
	if p.keep, err = keptKid(c, d.Key.Kid, from); err != nil {
		return nil, err
	}
	tp, err := signer.Thumbprint(p.private.Public())
	if err != nil {
		return nil, err
	}
	p.kid = tp
	if p.keep != "" {
		p.kid = p.keep
	}
	p.name = c.String("profile")
	if p.name == "" {
		p.name = profileName(d)
	}
	// The name also names the default key file.
	if strings.ContainsAny(p.name, "/\\") || strings.HasPrefix(p.name, ".") || strings.IndexFunc(p.name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return nil, cli.Exit(fmt.Sprintf("--profile %q: a profile name has no slashes or control characters and does not start with a dot", p.name), ExitUsage)
	}
	keyURI := c.String("key")
	if keyURI == "" {
		abs, err := filepath.Abs(cfgPath)
		if err != nil {
			return nil, err
		}
		keyURI = "file:" + filepath.Join(filepath.Dir(abs), "keys", p.name+".json")
	}
	u, err := keystore.Parse(keyURI)
	if err != nil {
		return nil, err
	}
	if u.Scheme == keystore.SchemeFile {
		// Profiles hold absolute paths (or paths relative to the config);
		// a relative --key means the working directory, as everywhere.
		abs, err := filepath.Abs(u.Path)
		if err != nil {
			return nil, err
		}
		if samePath(abs, from) {
			return nil, fmt.Errorf("--key names the download %s itself; store the key in a new file", from)
		}
		u.Path = abs
		keyURI = "file:" + abs
	}
	b, err := keystore.Lookup(u.Scheme)
	if err != nil {
		return nil, err
	}
	if _, ok := b.(keystore.Importer); !ok {
		return nil, fmt.Errorf("%w: %s keys cannot be imported, so the downloaded key cannot be moved there; "+
			"generate a new key there instead (jwkctl keys generate --key '%s') and upload its public JWK in Selvbetjening, "+
			"or keep the downloaded key in a file or a PKCS#11 token", keystore.ErrUnsupported, u.Scheme, keyURI)
	}
	p.want = &profile.Profile{
		Issuer:   issuer,
		ClientID: d.ClientID,
		Scopes:   d.Scopes,
		Key:      keyURI,
		Alg:      string(p.alg),
	}
	setDPoP(p.want, wantsDPoP(d.Scopes))
	if f := c.Path("passphrase-file"); f != "" && u.Scheme == keystore.SchemeFile {
		if p.want.PassphraseFile, err = filepath.Abs(f); err != nil {
			return nil, err
		}
	}
	if err := p.want.Validate(); err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	if err := checkExisting(c, p, cfgPath, opts); err != nil {
		return nil, err
	}
	return p, nil
}

// checkExisting looks at the key and the profile an earlier run may have
// made: the same ones are fine (nothing is written again), different ones
// are refused.
func checkExisting(c *cli.Context, p *initPlan, cfgPath string, opts keystore.Options) error {
	key, err := keystore.Open(c.Context, p.want.Key, opts)
	switch {
	case err == nil:
		type equaler interface{ Equal(crypto.PublicKey) bool }
		if !key.Public().(equaler).Equal(p.private.Public()) {
			return fmt.Errorf("%w: %s already holds another key than the download's; jwkctl never overwrites a key: pick another --key (or --profile)", keystore.ErrExists, key.URI())
		}
		p.key, p.keyExists = key, true
		// The kid the key signs with must be the one this run would give it.
		r, records := key.(keystore.KidRecorder)
		switch {
		case records && p.keep != "" && r.RecordedKid() != p.keep:
			return fmt.Errorf("%w: %s already holds this key, recorded with kid %q rather than the registered %q; pick another --key", keystore.ErrExists, key.URI(), r.RecordedKid(), p.keep)
		case records && p.keep == "" && r.RecordedKid() != "" && r.RecordedKid() != p.kid:
			return fmt.Errorf("%w: %s already holds this key, recorded with kid %q; run again with --keep-kid, or pick another --key", keystore.ErrExists, key.URI(), r.RecordedKid())
		case !records && p.keep != "":
			p.want.Kid = p.keep
		}
	case errors.Is(err, keystore.ErrNotFound):
	default:
		return err
	}
	f, err := profile.Load(cfgPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	have := f.Profiles[p.name]
	if have == nil {
		return nil
	}
	if !p.keyExists {
		return fmt.Errorf("profile %q already exists in %s and its key %s is not the download's (or is missing); nothing was changed: pick another --profile",
			p.name, cfgPath, have.Key)
	}
	if diff := profileDiff(have, p.want); len(diff) > 0 {
		return fmt.Errorf("profile %q already exists in %s with other %s than the download gives; nothing was changed: pick another --profile, or edit the profile",
			p.name, cfgPath, strings.Join(diff, ", "))
	}
	p.profileDone = true
	return nil
}

// profileDiff names the entries init writes that differ between have and
// want. Entries init does not write (resources, a passphrase file…) are
// the user's and not compared.
func profileDiff(have, want *profile.Profile) []string {
	var diff []string
	add := func(name string, same bool) {
		if !same {
			diff = append(diff, name)
		}
	}
	add("issuer", strings.TrimRight(have.Issuer, "/") == want.Issuer)
	add("client_id", have.ClientID == want.ClientID)
	add("scopes", slices.Equal(have.Scopes, want.Scopes))
	add("key", have.Key == want.Key)
	add("alg", have.Alg == want.Alg)
	add("kid", have.Kid == want.Kid)
	add("dpop", dpopOf(have) == dpopOf(want))
	return diff
}

// applyInit imports the key and writes the profile, whichever of the two
// is not there yet. The config is changed under its lock; a key imported
// for a profile that then cannot be saved is removed again.
func applyInit(c *cli.Context, p *initPlan, cfgPath string, opts keystore.Options) error {
	w := c.App.ErrWriter
	if p.keyExists && p.profileDone {
		fmt.Fprintf(w, "already set up: profile %q in %s uses %s, which holds the downloaded key (kid %s); nothing changed\n",
			p.name, cfgPath, p.key.URI(), p.kid)
		return nil
	}
	// A first config file goes into a directory that may not exist yet.
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
		return fmt.Errorf("the config file's directory: %w", err)
	}
	if err := profile.CheckWritable(cfgPath); err != nil {
		return err
	}
	unlock, err := profile.Lock(c.Context, cfgPath)
	if err != nil {
		return err
	}
	defer unlock()
	// Another process may have changed things since the plan: look again.
	if err := checkExisting(c, p, cfgPath, opts); err != nil {
		return err
	}
	imported := false
	if !p.keyExists {
		u, err := keystore.Parse(p.want.Key)
		if err != nil {
			return err
		}
		key, err := keystore.Import(c.Context, keystore.ImportRequest{URI: u, Private: p.private, Alg: p.alg, Kid: p.keep, Options: opts})
		if err != nil {
			return err
		}
		p.key, imported = key, true
		if p.keep != "" && !recordsKid(key, p.keep) {
			p.want.Kid = p.keep
		}
		fmt.Fprintf(w, "imported the downloaded key into %s\n", key.URI())
	} else {
		fmt.Fprintf(w, "%s already holds the downloaded key; not imported again\n", p.key.URI())
	}
	if p.profileDone {
		fmt.Fprintf(w, "profile %q in %s is already set up for it; not changed\n", p.name, cfgPath)
		return nil
	}
	f, err := profile.Load(cfgPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := f.Set(p.name, p.want); err != nil {
		return undoImport(c, p, imported, opts, err)
	}
	if f.Default == "" {
		f.Default = p.name
	}
	if err := f.Save(cfgPath); err != nil {
		return undoImport(c, p, imported, opts, err)
	}
	fmt.Fprintf(w, "wrote profile %q to %s\n", p.name, cfgPath)
	return nil
}

// undoImport removes a key init imported when its profile could not be
// written, so a second run starts from the same state.
func undoImport(c *cli.Context, p *initPlan, imported bool, opts keystore.Options, cause error) error {
	if !imported {
		return cause
	}
	if err := keystore.Delete(c.Context, p.key.URI().String(), opts); err != nil {
		return fmt.Errorf("%w (and the key just imported into %s could not be removed again: %v)", cause, p.key.URI(), err)
	}
	return fmt.Errorf("%w (the key just imported into %s was removed again)", cause, p.key.URI())
}

// proveInit shows the setup works: with --check a token from the issuer,
// else an assertion signed through the profile and verified with the
// downloaded key's public half (by go-jose, not our signer).
func proveInit(c *cli.Context, p *initPlan, opts keystore.Options) error {
	w := c.App.ErrWriter
	q := p.want.Clone()
	if opts.Passphrase != nil {
		q.PassphraseFile = ""
	}
	if c.Bool("check") {
		tc, err := profile.NewClient(c.Context, q, profile.ClientOptions{Backend: opts, Logger: stderrLogger(c)})
		if err != nil {
			return err
		}
		resp, err := token.NewSource(tc).Response(c.Context)
		if err != nil {
			return fmt.Errorf("the profile is written, but the token request failed: %w", err)
		}
		fmt.Fprintf(w, "check: %s issued a %s token for client %s, scope %q, kid %s\n", q.Issuer, resp.TokenType, q.ClientID, resp.Scope, tc.KeyID())
	} else {
		s, err := profile.OpenSigner(c.Context, q, q.Key, q.Alg, profile.ClientOptions{Backend: opts})
		if err != nil {
			return err
		}
		ac, err := assertion.NewClient(s, assertion.Config{ClientID: q.ClientID, Audience: q.Issuer})
		if err != nil {
			return err
		}
		jws, err := ac.Sign()
		if err != nil {
			return err
		}
		if err := verifyWith(jws, p.private.Public(), p.alg, p.kid); err != nil {
			return fmt.Errorf("self-test failed: %w", err)
		}
		fmt.Fprintf(w, "self-test: an assertion signed with %s verifies with the downloaded key and carries kid %s (jwkctl init --check gets a token)\n", p.key.URI(), p.kid)
	}
	pub, err := signer.PublicJWK(p.private.Public(), p.alg)
	if err != nil {
		return err
	}
	pub.KeyID = p.kid
	if err := writeJSON(c.App.Writer, pub); err != nil {
		return err
	}
	fmt.Fprintf(w, "profile %s is ready (kid %s): jwkctl token --profile %s\n", p.name, p.kid, profile.ShellQuote(p.name))
	return nil
}

// verifyWith checks a compact JWS against pub with go-jose alone, and its
// header's kid.
func verifyWith(jws string, pub crypto.PublicKey, alg jose.SignatureAlgorithm, kid string) error {
	obj, err := jose.ParseSignedCompact(jws, []jose.SignatureAlgorithm{alg})
	if err != nil {
		return err
	}
	if _, err := obj.Verify(pub); err != nil {
		return fmt.Errorf("the signature does not verify with the downloaded key: %w", err)
	}
	if got := obj.Signatures[0].Header.KeyID; got != kid {
		return fmt.Errorf("the assertion carries kid %q, want %q", got, kid)
	}
	return nil
}

// offerDelete deletes the download when asked to (or when the user says
// yes on a terminal), and otherwise reminds that it holds the key.
func offerDelete(c *cli.Context, from string) error {
	w := c.App.ErrWriter
	const noErase = "deleting a file is no secure erase: copies may remain on the disk, in backups, synced folders or the trash, so keep treating that key as exposed to whoever could read them"
	del := c.Bool("delete-download")
	if !del && !c.Bool("keep-download") {
		in, isFile := c.App.Reader.(*os.File)
		if c.App.Reader != nil && isFile && isTerminal(in) {
			fmt.Fprintf(w, "%s holds the private key. Delete it now? (%s) [y/N]: ", from, noErase)
			line, _ := bufio.NewReader(c.App.Reader).ReadString('\n')
			a := strings.ToLower(strings.TrimSpace(line))
			del = a == "y" || a == "yes"
		}
	}
	if !del {
		fmt.Fprintf(w, "%s still holds the private key: delete it once you are done (jwkctl init --delete-download does); %s\n", from, noErase)
		return nil
	}
	if err := os.Remove(from); err != nil {
		return fmt.Errorf("the setup is done, but the download could not be deleted: %w", err)
	}
	fmt.Fprintf(w, "deleted %s; %s\n", from, noErase)
	return nil
}

// profileName makes a profile name from the download's client name, else
// its client id.
func profileName(d *keyimport.Download) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(d.ClientName) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case r == 'æ':
			b.WriteString("ae")
		case r == 'ø':
			b.WriteString("o")
		case r == 'å':
			b.WriteString("a")
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 64 {
		name = strings.Trim(name[:64], "-")
	}
	if name == "" {
		return d.ClientID
	}
	return name
}

// wantsDPoP tells whether a client's scopes ask for DPoP-bound tokens:
// HelseID names such API scopes with a -dpop suffix
// (nhn:cp-api/access-v2-dpop); nhn:cp-api/access is a Bearer one.
func wantsDPoP(scopes []string) bool {
	for _, s := range scopes {
		if strings.HasSuffix(s, "-dpop") {
			return true
		}
	}
	return false
}

// setDPoP writes the profile's dpop entry, false too: a HelseID issuer
// would otherwise turn DPoP on by default, which a Bearer scope does not
// want.
func setDPoP(p *profile.Profile, on bool) { p.DPoP = &on }

// dpopOf is whether the profile's tokens are DPoP-bound, by its entry or
// the default.
func dpopOf(p *profile.Profile) bool { return p.WantsDPoP() }
