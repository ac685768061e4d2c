package commands

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/rotation"
)

func rotateCommand() *cli.Command {
	common := func(extra ...cli.Flag) []cli.Flag {
		return append([]cli.Flag{
			&cli.StringFlag{Name: "profile", Aliases: []string{"p"}, Usage: "the profile `NAME` whose key to rotate", Required: true, EnvVars: env("profile")},
			&cli.PathFlag{Name: "config", Usage: "profiles `FILE` (default $JWKCTL_CONFIG, else ~/.config/jwkctl/config.yaml)", EnvVars: env("config")},
			&cli.PathFlag{Name: "journal-dir", Usage: "`DIR` where rotation journals live (default $XDG_STATE_HOME/jwkctl/rotations)", EnvVars: env("journal-dir")},
		}, append(backendFlags(), extra...)...)
	}
	planFlags := []cli.Flag{
		&cli.StringFlag{Name: "new-key", Usage: "`URI` of the new key (default: next to the current one, named by date; another backend moves the client there)", EnvVars: env("new-key")},
		&cli.StringFlag{Name: "alg", Usage: "JOSE `ALG` of the new key", DefaultText: "the current key's", EnvVars: env("new-alg")},
		&cli.IntFlag{Name: "bits", Usage: "RSA size in `BITS` of the new key", DefaultText: "the current key's", EnvVars: env("new-bits")},
		&cli.DurationFlag{Name: "overlap", Usage: "how long (`DURATION`) the old key stays in its backend after the switch (0: --retire may retire it right after)", Value: rotation.DefaultOverlap, EnvVars: env("overlap")},
		&cli.StringFlag{Name: "selvbetjening-url", Usage: "client-secret API `URL` (default: from the profile, else the one matching the issuer)", EnvVars: env("selvbetjening-url")},
		&cli.BoolFlag{Name: "jwk-as-string", Usage: "send the JWK as a JSON string, as older Selvbetjening samples did", EnvVars: env("jwk-as-string")},
	}
	retireFlags := []cli.Flag{
		&cli.BoolFlag{Name: "retire", Usage: "after activation, retire the old key in its backend (once the overlap has passed; see --retire-by)", EnvVars: env("retire")},
		&cli.BoolFlag{Name: "force-retire", Usage: "retire before the overlap has passed", EnvVars: env("force-retire")},
		&cli.StringFlag{Name: "retire-by", Value: "delete", Usage: "how to retire the old key: `delete` it, or disable it (KMS and PKCS#11 keys; undo with jwkctl keys enable)", EnvVars: env("retire-by")},
		&cli.BoolFlag{Name: "yes", Usage: "confirm retiring the old key without asking", EnvVars: env("yes")},
	}
	return &cli.Command{
		Name:  "rotate",
		Usage: "rotate a profile's key through NHN Selvbetjening, with the new key born in its backend",
		Description: "A rotation runs as journaled steps: plan → generate → self-test → upload → confirm\n" +
			"(a canary token with the new key) → activate (the profile switches) → retire (the old\n" +
			"key is deleted, after an overlap, only when asked). If anything fails, fix the cause and\n" +
			"run `jwkctl rotate resume`: no step is done twice. See docs/rotation.md.",
		Subcommands: []*cli.Command{
			{Name: "plan", Usage: "record a rotation without doing it", Flags: common(planFlags...), Action: runRotatePlan},
			{Name: "run", Usage: "plan (unless planned) and rotate up to activation", Flags: common(append(planFlags, retireFlags...)...), Action: runRotateRun},
			{Name: "resume", Usage: "carry on an interrupted or planned rotation", Flags: common(retireFlags...), Action: runRotateResume},
			{Name: "status", Usage: "show where a rotation stands", Flags: common(outputFlag()), Action: runRotateStatus},
			{Name: "abort", Usage: "drop a rotation's journal (keys are left; it says what to clean up)", Flags: common(&cli.BoolFlag{Name: "yes", Usage: "do not ask", EnvVars: env("yes")}), Action: runRotateAbort},
		},
	}
}

func defaultJournalDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "jwkctl", "rotations"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(h, ".local", "state", "jwkctl", "rotations"), nil
}

func rotationRunner(c *cli.Context) (*rotation.Runner, error) {
	cfg := c.Path("config")
	if cfg == "" {
		var err error
		if cfg, err = profile.DefaultPath(); err != nil {
			return nil, err
		}
	}
	dir := c.Path("journal-dir")
	if dir == "" {
		var err error
		if dir, err = defaultJournalDir(); err != nil {
			return nil, err
		}
	}
	// The same backend flags as the keys commands: --passphrase-file or
	// JWKCTL_PASSPHRASE (winning over the profile's passphrase_file),
	// --kms-endpoint.
	opts, err := backendOptions(c)
	if err != nil {
		return nil, err
	}
	return &rotation.Runner{
		Store: rotation.Store{Dir: dir}, ConfigPath: cfg, Profile: c.String("profile"),
		Backend: opts, Log: opts.Log,
	}, nil
}

// planFlagNames are the flags whose values a plan records in the journal.
var planFlagNames = []string{"new-key", "alg", "bits", "overlap", "selvbetjening-url", "jwk-as-string"}

func planRequest(c *cli.Context) rotation.PlanRequest {
	// An --overlap 0 given is kept: not given is the default, 72h.
	return rotation.PlanRequest{NewKey: c.String("new-key"), Alg: c.String("alg"), Bits: c.Int("bits"),
		Overlap: c.Duration("overlap"), OverlapSet: c.IsSet("overlap"), Endpoint: c.String("selvbetjening-url"), JWKAsString: c.Bool("jwk-as-string")}
}

func runRotatePlan(c *cli.Context) error {
	r, err := rotationRunner(c)
	if err != nil {
		return err
	}
	j, err := r.Plan(c.Context, planRequest(c))
	if err != nil {
		return err
	}
	printJournal(c, r, j)
	fmt.Fprintln(c.App.ErrWriter, "planned; run `jwkctl rotate resume --profile "+j.Profile+"` to carry it out")
	return nil
}

func runRotateRun(c *cli.Context) error {
	r, err := rotationRunner(c)
	if err != nil {
		return err
	}
	if _, err := r.Store.Load(r.Profile); errors.Is(err, rotation.ErrNoJournal) {
		if _, err := r.Plan(c.Context, planRequest(c)); err != nil {
			return err
		}
	} else if err == nil {
		j, _ := r.Store.Load(r.Profile)
		if j.Step == rotation.Retired {
			if _, err := r.Plan(c.Context, planRequest(c)); err != nil {
				return err
			}
		} else {
			// The journal's plan is what gets carried out; a plan flag
			// would be silently ignored.
			for _, name := range planFlagNames {
				if c.IsSet(name) {
					return fmt.Errorf("a rotation of %s is already planned (step %s), so --%s (or %s) would be ignored: "+
						"run jwkctl rotate resume --profile %s without plan flags to carry it on, or jwkctl rotate abort and plan again to change it",
						r.Profile, j.Step, name, flagEnv(c, name), r.Profile)
				}
			}
			fmt.Fprintf(c.App.ErrWriter, "a rotation is already at step %s; carrying it on\n", j.Step)
		}
	} else {
		return err
	}
	return resume(c, r)
}

func runRotateResume(c *cli.Context) error {
	r, err := rotationRunner(c)
	if err != nil {
		return err
	}
	return resume(c, r)
}

func resume(c *cli.Context, r *rotation.Runner) error {
	through := rotation.Activated
	if c.Bool("retire") || c.Bool("force-retire") {
		j, err := r.Store.Load(r.Profile)
		if err != nil {
			return err
		}
		old := redactURI(j.CurrentKey)
		if j.CurrentKid != "" {
			old += " (kid " + j.CurrentKid + ")"
		}
		question := fmt.Sprintf("After activation, delete the old key %s from its backend? This cannot be undone.", old)
		switch c.String("retire-by") {
		case "delete":
		case "disable":
			r.DisableOld = true
			if err := canDisable(j.CurrentKey); err != nil {
				return err
			}
			question = fmt.Sprintf("After activation, disable the old key %s in its backend? It will refuse to sign until enabled again.", old)
		default:
			return cli.Exit(fmt.Sprintf("--retire-by must be delete or disable, not %q", c.String("retire-by")), ExitUsage)
		}
		// Within the overlap nothing would be retired: say so first rather
		// than ask a question that changes nothing.
		if j.ActivatedAt != nil && !c.Bool("force-retire") {
			if until := j.ActivatedAt.Add(j.Overlap.Duration); time.Now().Before(until) {
				return &rotation.OverlapError{Profile: r.Profile, Until: until, Overlap: j.Overlap.Duration, Disable: r.DisableOld}
			}
		}
		if !c.Bool("yes") {
			if err := confirm(c, "retire the old key", question); err != nil {
				return err
			}
		}
		through = rotation.Retired
	}
	j, err := r.Run(c.Context, through, c.Bool("force-retire"))
	if j != nil {
		printJournal(c, r, j)
	}
	if err != nil {
		if j != nil && !errors.Is(err, rotation.ErrOverlap) {
			return fmt.Errorf("%w (the journal is at step %s; fix the cause and run jwkctl rotate resume --profile %s)", err, j.Step, profile.ShellQuote(r.Profile))
		}
		return err
	}
	return nil
}

func runRotateStatus(c *cli.Context) error {
	r, err := rotationRunner(c)
	if err != nil {
		return err
	}
	j, err := r.Store.Load(r.Profile)
	if err != nil {
		return err
	}
	if c.String("output") == "json" {
		// Key URIs as everywhere else, with any pin-value redacted (only
		// a journal of an older jwkctl can hold one).
		shown := *j
		shown.CurrentKey, shown.NewKey = redactURI(j.CurrentKey), redactURI(j.NewKey)
		shown.KMSVersionsBefore = nil
		for _, v := range j.KMSVersionsBefore {
			shown.KMSVersionsBefore = append(shown.KMSVersionsBefore, redactURI(v))
		}
		return writeJSON(c.App.Writer, &shown)
	}
	printJournal(c, r, j)
	return nil
}

func runRotateAbort(c *cli.Context) error {
	r, err := rotationRunner(c)
	if err != nil {
		return err
	}
	if !c.Bool("yes") {
		if err := confirm(c, "drop the journal", "Drop the rotation journal of "+r.Profile+"?"); err != nil {
			return err
		}
	}
	note, err := r.Abort(c.Context)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.ErrWriter, "aborted: "+note)
	return nil
}

// printJournal shows a rotation. Its keys are named by role, "old" (the
// key the profile had when the rotation was planned) and "new", which
// stay true after the switch, and a line says which one the profile uses
// now, as read from the config file.
func printJournal(c *cli.Context, r *rotation.Runner, j *rotation.Journal) {
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "profile\t%s (client %s)\n", j.Profile, j.ClientID)
	fmt.Fprintf(tw, "step\t%s\n", j.Step)
	old := redactURI(j.CurrentKey)
	if j.RetiredAt != nil {
		old += " (retired " + j.RetiredAt.Format(time.RFC3339) + ")"
	}
	fmt.Fprintf(tw, "old key\t%s\n", old)
	if j.CurrentKid != "" {
		fmt.Fprintf(tw, "old kid\t%s\n", j.CurrentKid)
	}
	fmt.Fprintf(tw, "new key\t%s\n", redactURI(j.NewKey))
	if j.NewKid != "" {
		fmt.Fprintf(tw, "new kid\t%s\n", j.NewKid)
	}
	fmt.Fprintf(tw, "profile uses\t%s\n", inUse(r, j))
	if j.Expiration != nil {
		fmt.Fprintf(tw, "registered until\t%s\n", j.Expiration.Format(time.DateOnly))
	}
	for _, e := range j.History {
		fmt.Fprintf(tw, "  %s\t%s: %s\n", e.At.Format(time.RFC3339), e.Step, e.Note)
	}
	tw.Flush()
}

// inUse says which key the profile uses now: what its config file says,
// or, if that cannot be read, what the journal's step implies.
func inUse(r *rotation.Runner, j *rotation.Journal) string {
	which, key, err := r.KeyInUse(j)
	if err != nil {
		which = "old"
		if j.Step.Done(rotation.Activated) {
			which = "new"
		}
	}
	switch {
	case which == "new" && j.ActivatedAt != nil:
		return "the new key (since " + j.ActivatedAt.Format(time.RFC3339) + ")"
	case which == "new":
		return "the new key"
	case which == "old" && j.Step.Done(rotation.Activated):
		return "the old key (switched back after activation)"
	case which == "old":
		return "the old key (until step activated)"
	}
	return "neither: another key, " + redactURI(key)
}

func redactURI(s string) string {
	if u, err := keystore.Parse(s); err == nil {
		return u.String()
	}
	return keystore.MaskPINValue(s)
}

// confirm asks on the terminal; without one it refuses.

// canDisable tells early, before any question, whether the key's backend
// can switch keys off.
func canDisable(uri string) error {
	u, err := keystore.Parse(uri)
	if err != nil {
		return err
	}
	b, err := keystore.Lookup(u.Scheme)
	if err != nil {
		return err
	}
	if _, ok := b.(keystore.Disabler); !ok {
		return fmt.Errorf("%s keys cannot be disabled, only deleted: use --retire-by delete", u.Scheme)
	}
	return nil
}

// flagEnv is the environment variable of the command's flag name.
func flagEnv(c *cli.Context, name string) string {
	for _, f := range c.Command.Flags {
		if slices.Contains(f.Names(), name) {
			if ev, ok := f.(interface{ GetEnvVars() []string }); ok && len(ev.GetEnvVars()) > 0 {
				return ev.GetEnvVars()[0]
			}
		}
	}
	return env(name)[0]
}
