package commands

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/internal/loopback"
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
		&cli.StringSliceFlag{Name: "agents", Usage: "before retiring, ask the jwkctl agent at `ADDR` (unix:/path.sock, a socket path, or a loopback 127.0.0.1:PORT / http://127.0.0.1:PORT; repeatable) which key each of its profiles signs with, and keep the old key while any signs with it or cannot be asked (unreachable: only --force-retire goes on)", EnvVars: env("agents")},
		&cli.PathFlag{Name: "agent-secret-file", Usage: "bearer secret `FILE` of the TCP agents named by --agents (their --secret-file)", EnvVars: env("agent-secret-file")},
	}
	return &cli.Command{
		Name:  "rotate",
		Usage: "rotate a profile's key through NHN Selvbetjening, with the new key born in its backend",
		Description: "A rotation runs as journaled steps: plan → generate → self-test → upload → confirm\n" +
			"(a canary token with the new key) → activate (the profile switches) → retire (the old\n" +
			"key is deleted, after an overlap, only when asked). If anything fails, fix the cause and\n" +
			"run `jwkctl rotate resume`: no step is done twice.\n\n" +
			"For several hosts: `rotate run --no-activate` stops before the switch and prints the new key\n" +
			"as JSON; roll it out, `rotate activate`, and retire with `--agents` so that no agent still\n" +
			"signs with the old key. See docs/rotation.md.",
		Subcommands: []*cli.Command{
			{Name: "plan", Usage: "record a rotation without doing it", Flags: common(planFlags...), Action: runRotatePlan},
			{Name: "run", Usage: "plan (unless planned) and rotate up to activation", Flags: common(append(append(planFlags, retireFlags...),
				&cli.BoolFlag{Name: "no-activate", Usage: "stop after the canary token with the new key, leave the profile as it is, and print the new key's URI and kid as JSON for configuration management; finish with rotate activate once every host uses it", EnvVars: env("no-activate")})...), Action: runRotateRun},
			{Name: "activate", Usage: "switch the profile to the new key of a rotation held by run --no-activate (once the hosts use it)", Flags: common(), Action: runRotateActivate},
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
		Store: rotation.Store{Dir: dir, Log: opts.Log}, ConfigPath: cfg, Profile: c.String("profile"),
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
	if c.Bool("no-activate") {
		for _, name := range []string{"retire", "force-retire", "agents"} {
			if c.IsSet(name) {
				return cli.Exit(fmt.Sprintf("--no-activate stops before activation, so --%s (or %s) cannot go with it: retire later with jwkctl rotate resume --retire", name, flagEnv(c, name)), ExitUsage)
			}
		}
	}
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
	if c.Bool("no-activate") {
		return hold(c, r)
	}
	return resume(c, r)
}

// heldKey is what rotate run --no-activate prints for configuration
// management: the new key to roll out, and what it replaces.
type heldKey struct {
	Profile  string `json:"profile"`
	ClientID string `json:"client_id"`
	Issuer   string `json:"issuer"`
	Step     string `json:"step"`
	NewKey   string `json:"new_key"`
	NewKid   string `json:"new_kid"`
	Alg      string `json:"alg"`
	OldKey   string `json:"old_key"`
	OldKid   string `json:"old_kid,omitempty"`
	// Overlap counts from activation: OverlapEndsEarliest is when it
	// would end if the profile were activated now.
	Overlap             string     `json:"overlap"`
	OverlapEndsEarliest time.Time  `json:"overlap_ends_earliest"`
	RegisteredUntil     *time.Time `json:"registered_until,omitempty"`
}

// hold carries the rotation to the canary and prints the new key as JSON
// on stdout (and nothing else there).
func hold(c *cli.Context, r *rotation.Runner) error {
	j, err := r.Hold(c.Context)
	if err != nil {
		if j != nil && !errors.Is(err, rotation.ErrAlreadyActivated) {
			return fmt.Errorf("%w (the journal is at step %s; fix the cause and run jwkctl rotate run --no-activate --profile %s again)", err, j.Step, profile.ShellQuote(r.Profile))
		}
		return err
	}
	out := heldKey{Profile: j.Profile, ClientID: j.ClientID, Issuer: j.Issuer, Step: string(j.Step), NewKey: redactURI(j.NewKey), NewKid: j.NewKid, Alg: j.Alg,
		OldKey: redactURI(j.CurrentKey), OldKid: j.CurrentKid, Overlap: j.Overlap.String(), OverlapEndsEarliest: time.Now().Add(j.Overlap.Duration).UTC().Truncate(time.Second),
		RegisteredUntil: j.Expiration}
	if err := writeJSON(c.App.Writer, out); err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "held before activation: switch every host of profile %s to %s (kid %s), then jwkctl rotate activate --profile %s\n",
		j.Profile, redactURI(j.NewKey), j.NewKid, profile.ShellQuote(j.Profile))
	return nil
}

func runRotateActivate(c *cli.Context) error {
	r, err := rotationRunner(c)
	if err != nil {
		return err
	}
	j, err := r.Activate(c.Context)
	if j != nil && (err == nil || !errors.Is(err, rotation.ErrNotConfirmed)) {
		printJournal(c, r, j)
	}
	if err != nil {
		if j != nil && !errors.Is(err, rotation.ErrNotConfirmed) {
			return fmt.Errorf("%w (the journal is at step %s; fix the cause and run jwkctl rotate activate --profile %s)", err, j.Step, profile.ShellQuote(r.Profile))
		}
		return err
	}
	if !j.Step.Done(rotation.Retired) {
		fmt.Fprintf(c.App.ErrWriter, "activated; after the overlap (%v), retire the old key with jwkctl rotate resume --profile %s --retire --agents ADDR… (every agent that served the profile)\n",
			j.Overlap.Duration, profile.ShellQuote(r.Profile))
	}
	return nil
}

// agentAddr turns an --agents value into a token.AgentSource address:
// unix:/path, a socket path, 127.0.0.1:PORT, or http://127.0.0.1:PORT.
func agentAddr(v string) (string, error) {
	switch {
	case strings.HasPrefix(v, "unix:"):
		return v, nil
	case filepath.IsAbs(v) || strings.HasPrefix(v, "./"):
		return "unix:" + v, nil
	}
	if rest, ok := strings.CutPrefix(v, "http://"); ok {
		rest = strings.TrimSuffix(rest, "/")
		if strings.ContainsAny(rest, "/?#@") {
			return "", fmt.Errorf("--agents %s: give the agent's address only (http://127.0.0.1:PORT), no path", v)
		}
		v = rest
	}
	host, _, err := net.SplitHostPort(v)
	if err != nil {
		return "", fmt.Errorf("--agents %s: want unix:/path.sock, a socket path, or a loopback 127.0.0.1:PORT", v)
	}
	if !loopback.Host(host) {
		// The agent's bearer secret goes over plain http.
		return "", fmt.Errorf("--agents %s: an agent listens on loopback only (127.0.0.1, [::1]); reach one on another host through its socket over SSH", v)
	}
	return v, nil
}

// rotationAgents are the --agents, split on commas and blanks too (one
// JWKCTL_AGENTS for several).
func rotationAgents(c *cli.Context) ([]rotation.Agent, error) {
	var out []rotation.Agent
	for _, v := range c.StringSlice("agents") {
		for _, a := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
			addr, err := agentAddr(a)
			if err != nil {
				return nil, cli.Exit(err.Error(), ExitUsage)
			}
			out = append(out, rotation.Agent{Addr: addr, SecretFile: c.Path("agent-secret-file")})
		}
	}
	return out, nil
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
	agents, err := rotationAgents(c)
	if err != nil {
		return err
	}
	if len(agents) > 0 && !c.Bool("retire") && !c.Bool("force-retire") {
		return cli.Exit("--agents are asked before a retire: give --retire (or --force-retire) with it", ExitUsage)
	}
	r.Agents = agents
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
				return keptInOverlap(c, &rotation.OverlapError{Profile: r.Profile, Until: until, Overlap: j.Overlap.Duration, Disable: r.DisableOld})
			}
		}
		// An agent on the old key, or one that cannot be asked, is told
		// before the question too (the retire asks again, right before the
		// key goes).
		if j.Step.Done(rotation.Activated) && !j.Step.Done(rotation.Retired) {
			notes, err := r.CheckAgents(c.Context, j, c.Bool("force-retire"))
			if err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintln(c.App.ErrWriter, n)
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
	if errors.Is(err, rotation.ErrOverlap) {
		return keptInOverlap(c, err)
	}
	if err != nil {
		if j != nil {
			return fmt.Errorf("%w (the journal is at step %s; fix the cause and run jwkctl rotate resume --profile %s)", err, j.Step, profile.ShellQuote(r.Profile))
		}
		return err
	}
	return nil
}

// keptInOverlap reports a retire asked for inside the overlap: not a
// failure (exit 0), so a daily job asking to retire stays quiet until the
// old key may go; one line on stderr says until when.
func keptInOverlap(c *cli.Context, err error) error {
	fmt.Fprintln(c.App.ErrWriter, err.Error())
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
	switch {
	case j.HeldForRollout && !j.Step.Done(rotation.Activated):
		fmt.Fprintf(tw, "next\tswitch every host to the new key, then jwkctl rotate activate --profile %s\n", profile.ShellQuote(j.Profile))
	case j.ActivatedAt != nil && j.RetiredAt == nil:
		fmt.Fprintf(tw, "old key kept until\t%s (then jwkctl rotate resume --retire)\n", j.ActivatedAt.Add(j.Overlap.Duration).Format(time.RFC3339))
	}
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
