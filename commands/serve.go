package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/agent"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/rotation"
	"github.com/jwkctl/jwkctl/token"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run a local token agent: applications get tokens over a socket and never touch the key",
		Description: "Holds the key URIs and client settings of one or more profiles from the config file and\n" +
			"hands out cached, refreshed access tokens (and DPoP proofs) over a Unix socket or loopback:\n\n" +
			"   GET  /v1/token?profile=NAME[&scope=…]   the token response, from cache\n" +
			"   POST /v1/dpop {profile, htm, htu, access_token}   a DPoP proof signed by the profile's key\n" +
			"   GET  /healthz, GET /metrics (Prometheus)\n\n" +
			"A Unix socket is created 0600 (0660 with --socket-group). On TCP (loopback only) every request\n" +
			"needs the bearer secret the agent writes to --secret-file. SIGHUP reloads the config file\n" +
			"(tokens of unchanged profiles are kept); SIGINT/SIGTERM stop it gracefully. See docs/agent.md.",
		Flags: append(profileFlagsForServe(),
			&cli.StringFlag{Name: "listen", Usage: "`unix:/path.sock` or 127.0.0.1:PORT", Value: "unix:/run/jwkctl/jwkctl.sock", EnvVars: env("listen")},
			&cli.StringFlag{Name: "socket-group", Usage: "let this `GROUP` use the socket (mode 0660)", EnvVars: env("socket-group")},
			&cli.PathFlag{Name: "secret-file", Usage: "`FILE` where a TCP agent writes its bearer secret (default: agent.secret next to the config file); a file there is replaced only if it holds an earlier agent secret", EnvVars: env("secret-file")},
			&cli.StringFlag{Name: "log-format", Usage: "log `FORMAT`: text or json", Value: "text", EnvVars: env("log-format")},
			&cli.DurationFlag{Name: "key-expiry-interval", Usage: "ask Selvbetjening every `INTERVAL` (e.g. 6h) when each served profile's key expires, for the key expiry metric; each check costs every profile a token with scope nhn:selvbetjening/client (and a signature), so enable it only if the clients have that scope", DefaultText: "off", EnvVars: env("key-expiry-interval")},
		),
		Action: runServe,
	}
}

func profileFlagsForServe() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "profile", Aliases: []string{"p"}, Usage: "serve profile `NAME` (repeatable, or a comma-separated list; default: every profile in the file)", EnvVars: env("profile")},
		&cli.PathFlag{Name: "config", Usage: "profiles `FILE` (default $JWKCTL_CONFIG, else ~/.config/jwkctl/config.yaml)", EnvVars: env("config")},
		&cli.StringFlag{Name: "kms-endpoint", Usage: "Cloud KMS or AWS KMS API `ENDPOINT` for profiles that do not set one", EnvVars: env("kms-endpoint")},
		kmsTimeoutFlag(),
		backendFlags()[0], // --passphrase-file, for file keys of profiles without passphrase_file
	}
}

func runServe(c *cli.Context) error {
	level := slog.LevelInfo
	if verbose(c) {
		level = slog.LevelDebug
	}
	hopts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(c.App.ErrWriter, hopts)
	switch c.String("log-format") {
	case "json":
		handler = slog.NewJSONHandler(c.App.ErrWriter, hopts)
	case "text":
	default:
		return fmt.Errorf("--log-format must be text or json")
	}
	log := slog.New(handler)
	path := c.Path("config")
	if path == "" {
		var err error
		if path, err = profile.DefaultPath(); err != nil {
			return err
		}
	}
	pass, err := passphrase(c)
	if err != nil {
		return err
	}
	base := keystore.Options{Endpoint: c.String("kms-endpoint"), KMSTimeout: c.Duration("kms-timeout"), Passphrase: pass, Log: log}
	metrics := agent.NewMetrics()
	load := func(ctx context.Context) ([]*agent.Profile, error) {
		return loadAgentProfiles(ctx, path, servedProfiles(c), base, metrics, log)
	}
	profiles, err := load(c.Context)
	if err != nil {
		return err
	}
	a := agent.New(agent.Config{Logger: log, Metrics: metrics}, profiles)
	defer a.Close()

	addr := c.String("listen")
	group := c.String("socket-group")
	ln, err := agent.Listen(addr, group)
	if err != nil {
		return err
	}
	if err := agent.CheckSocketGroup(addr, group); err != nil {
		log.Warn("--socket-group cannot reach the socket", "problem", err.Error())
	}
	secret := ""
	if !strings.HasPrefix(addr, "unix:") {
		secretFile := c.Path("secret-file")
		if secretFile == "" {
			secretFile = filepath.Join(filepath.Dir(path), "agent.secret")
			if secret, err = agent.WriteSecret(secretFile); err != nil {
				ln.Close()
				return fmt.Errorf("%w; a TCP agent writes its bearer secret next to the config file unless given --secret-file FILE (or JWKCTL_SECRET_FILE) in a writable place", err)
			}
		} else if secret, err = agent.WriteSecret(secretFile); err != nil {
			ln.Close()
			return fmt.Errorf("--secret-file: %w", err)
		}
		log.Info("clients must send the bearer secret", "secret_file", secretFile)
	}
	srv := &http.Server{Handler: a.Handler(secret), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("jwkctl agent listening", "listen", addr, "profiles", strings.Join(a.Profiles(), ","))
	if every := c.Duration("key-expiry-interval"); every > 0 {
		go watchKeyExpiry(c.Context, path, servedProfiles(c), base, metrics, log, every)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		case <-c.Context.Done():
			return shutdown(srv, a, log)
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				return shutdown(srv, a, log)
			}
			next, err := load(c.Context)
			if err != nil {
				log.Error("reload failed; keeping the old profiles", "error", err)
				continue
			}
			a.Reload(next)
		}
	}
}

// shutdown lets in-flight requests finish for up to 10 s; then it stops
// the agent (callers still waiting for the STS get an error) and closes
// the remaining connections.
func shutdown(srv *http.Server, a *agent.Agent, log *slog.Logger) error {
	log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		// Asked to stop, and stopped: the waiting callers got "shutting
		// down". Not a failure of the agent (systemd would mark it failed).
		log.Warn("requests still running after 10 s; stopped them", "error", err)
		a.Close()
		srv.Close()
	}
	return nil
}

// loadAgentProfiles builds the agent's profiles from the config file.
func loadAgentProfiles(ctx context.Context, path string, only []string, base keystore.Options, m *agent.Metrics, log *slog.Logger) ([]*agent.Profile, error) {
	f, err := profile.Load(path)
	if err != nil {
		return nil, err
	}
	names := only
	if len(names) == 0 {
		names = f.Names()
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no profiles to serve in %s", path)
	}
	var out []*agent.Profile
	for _, name := range names {
		p, err := f.Get(name)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, fmt.Errorf("%w %q", profile.ErrNotFound, name)
		}
		client, err := profile.NewClient(ctx, p, profile.ClientOptions{Backend: base, Wrap: m.CountSignatures, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", name, err)
		}
		// The settings and the keys behind them: a new key at the same URI
		// (a replaced file, a re-created HSM key) is a changed profile, so
		// a reload does not keep tokens bound to the old one.
		b, _ := json.Marshal(p)
		b = append(b, client.KeyID()...)
		b = append(b, client.Thumbprint()...)
		// The cache key holds the assertion details as read from their
		// file, which json.Marshal(p) names only by path.
		b = append(b, client.CacheKey(token.Request{})...)
		if dp := client.DPoP(); dp != nil {
			b = append(b, dp.Thumbprint()...)
		}
		sum := sha256.Sum256(b)
		backend := ""
		if u, err := keystore.Parse(p.Key); err == nil {
			backend = u.Scheme
		}
		out = append(out, &agent.Profile{Name: name, Client: client, Scopes: p.Scopes, Backend: backend, KeyID: client.Thumbprint(), Fingerprint: hex.EncodeToString(sum[:])})
	}
	return out, nil
}

// watchKeyExpiry feeds the key expiry metric from Selvbetjening's list of
// registered keys, for every served profile, now and then every interval.
// It only runs with --key-expiry-interval: each check gets every profile a
// token with the Selvbetjening scope, which most clients are not granted.
func watchKeyExpiry(ctx context.Context, path string, only []string, base keystore.Options, m *agent.Metrics, log *slog.Logger, every time.Duration) {
	check := func() {
		f, err := profile.Load(path)
		if err != nil {
			return
		}
		names := only
		if len(names) == 0 {
			names = f.Names()
		}
		for _, name := range names {
			p, err := f.Get(name)
			if err != nil || p == nil {
				continue
			}
			exp, err := currentKeyExpiry(ctx, p, base, m)
			if err != nil {
				log.Info("key expiry unknown", "profile", name, "reason", err)
				continue
			}
			m.SetKeyExpiry(name, exp)
			log.Info("key expiry known", "profile", name, "expires", exp.Format(time.DateOnly))
		}
	}
	check()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}

// currentKeyExpiry asks Selvbetjening when the profile's current key expires.
func currentKeyExpiry(ctx context.Context, p *profile.Profile, base keystore.Options, m *agent.Metrics) (time.Time, error) {
	opts := profile.ClientOptions{Backend: base, Wrap: m.CountSignatures} // its signatures count too
	s, err := profile.OpenSigner(ctx, p, p.Key, p.Alg, opts)
	if err != nil {
		return time.Time{}, err
	}
	sb, err := rotation.ProfileClient(ctx, p, opts, nil)
	if err != nil {
		return time.Time{}, err
	}
	keys, err := sb.List(ctx)
	if err != nil {
		return time.Time{}, err
	}
	for _, k := range keys {
		if (k.JWKThumbprint == s.Thumbprint() || k.Kid == s.KeyID()) && k.Expiration != nil {
			return *k.Expiration, nil
		}
	}
	return time.Time{}, fmt.Errorf("the key %s is not registered (or has no expiry)", s.KeyID())
}

// servedProfiles are the --profile names: repeated flags, or a list
// separated by commas or spaces (JWKCTL_PROFILE="a,b").
func servedProfiles(c *cli.Context) []string {
	var out []string
	for _, v := range c.StringSlice("profile") {
		out = append(out, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	return out
}
