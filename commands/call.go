package commands

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/internal/inputfile"
	"github.com/jwkctl/jwkctl/token"
)

// maxCallBody bounds what call reads from --data.
const maxCallBody = 32 << 20

func callCommand() *cli.Command {
	flags := tokenFlags()
	flags = append(flags,
		&cli.StringFlag{Name: "method", Aliases: []string{"X"}, Usage: "HTTP `METHOD` (default GET, or POST with --data)", EnvVars: env("method")},
		&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Usage: "request body: `@FILE`, @- for stdin, or the text itself", EnvVars: env("data")},
		&cli.StringSliceFlag{Name: "header", Aliases: []string{"H"}, Usage: "extra request header `\"Name: value\"`, repeatable (not Authorization or DPoP; in JWKCTL_HEADER, one per line)", EnvVars: env("header")},
	)
	return &cli.Command{
		Name:      "call",
		Usage:     "call an API with a token from the key (DPoP proof with ath when --dpop)",
		ArgsUsage: "URL",
		Description: "Gets a token as `jwkctl token` does, then sends the request with\n" +
			"Authorization: Bearer …, or Authorization: DPoP … and a fresh DPoP proof. Prints the\n" +
			"response body on stdout; with -v the status and headers go to stderr. A status\n" +
			"outside 2xx ends with a non-zero exit.\n\n" +
			"   jwkctl call --profile helseid-test --dpop --scope nhn:cp-api/access-v2-dpop \\\n" +
			"     https://cpapi.test.grunndata.nhn.no/api/v1/communicationparty/8142987",
		Flags:  flags,
		Action: runCall,
	}
}

func runCall(c *cli.Context) error {
	if c.NArg() != 1 {
		hint := ""
		if c.NArg() > 1 {
			hint = " (flags after the URL are not read: put them before it)"
		}
		return cli.Exit(fmt.Sprintf("call needs exactly one URL, got %d arguments%s", c.NArg(), hint), ExitUsage)
	}
	target := c.Args().First()
	if err := token.CheckURL(target); err != nil {
		return err
	}
	body, err := callBody(c)
	if err != nil {
		return err
	}
	method := strings.ToUpper(c.String("method"))
	if method == "" {
		method = http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(c.Context, method, target, rd)
	if err != nil {
		return fmt.Errorf("call: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range lines(c.StringSlice("header")) {
		name, value, ok := strings.Cut(h, ":")
		name = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name))
		if !ok || name == "" {
			return fmt.Errorf("call: --header %q is not \"Name: value\"", h)
		}
		if slices.Contains([]string{"Authorization", "Dpop", "Host"}, name) {
			return fmt.Errorf("call: --header %s is set by jwkctl", name)
		}
		req.Header.Set(name, strings.TrimSpace(value))
	}
	src, _, err := tokenSourceFromFlags(c)
	if err != nil {
		return err
	}
	resp, err := token.NewHTTPClient(src, nil).Do(req)
	if err != nil {
		return fmt.Errorf("call: %w", err)
	}
	defer resp.Body.Close()
	if verbose(c) {
		w := c.App.ErrWriter
		fmt.Fprintf(w, "%s %s\n", resp.Proto, printable(resp.Status))
		keys := make([]string, 0, len(resp.Header))
		for k := range resp.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			for _, v := range resp.Header[k] {
				fmt.Fprintf(w, "%s: %s\n", printable(k), printable(v))
			}
		}
	}
	if _, err := io.Copy(c.App.Writer, resp.Body); err != nil {
		return fmt.Errorf("call: reading the answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("call: %s %s answered %s", method, redactQuery(target), resp.Status)
		if ch := resp.Header.Get("WWW-Authenticate"); ch != "" {
			msg += " (" + strings.Join(strings.Fields(ch), " ") + ")"
		}
		return cli.Exit(msg, 1)
	}
	return nil
}

// callBody reads --data: @FILE, @- (stdin) or the literal text.
func callBody(c *cli.Context) ([]byte, error) {
	if !c.IsSet("data") {
		return nil, nil
	}
	d := c.String("data")
	var r io.Reader
	switch {
	case d == "@-":
		r = c.App.Reader
		if r == nil {
			r = os.Stdin
		}
	case strings.HasPrefix(d, "@"):
		b, err := inputfile.Read(d[1:], maxCallBody, "a request body")
		if err != nil {
			return nil, fmt.Errorf("call: --data: %w", err)
		}
		return b, nil
	default:
		return []byte(d), nil
	}
	b, err := io.ReadAll(io.LimitReader(r, maxCallBody+1))
	if err != nil {
		return nil, fmt.Errorf("call: --data: %w", err)
	}
	if len(b) > maxCallBody {
		return nil, fmt.Errorf("call: --data is larger than %d MiB", maxCallBody>>20)
	}
	return b, nil
}

// redactQuery keeps query strings (which may carry identifiers) out of
// error lines.
func redactQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}
