package commands

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Mistakes on the command line exit 2 with one line "jwkctl: …" and
// nothing on stdout, whichever check finds them.
func TestUsageMistakesExit2(t *testing.T) {
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	key, _ := testKey(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "public", "--key", key, "--format", "xml"}, "--format must be jwk, jwks or pem"},
		{[]string{"keys", "generate", "--key", "file:x.json", "ES256"}, "takes no arguments"},
		{[]string{"call", "--key", key, "--client-id", "c", "--issuer", "http://127.0.0.1:1"}, "exactly one URL, got 0"},
		{[]string{"call", "--key", key, "--client-id", "c", "--issuer", "http://127.0.0.1:1", "http://127.0.0.1:1/x", "--dpop"}, "flags after the URL are not read"},
		{[]string{"dev", "sts", "--listen", "127.0.0.1:0"}, "no clients"},
		{[]string{"assertion", "--key", key, "--client-id", "c", "--audience", "a", "--lifetime", "1500ms"}, "whole seconds"},
		{[]string{"assertion", "--key", key, "--client-id", "c", "--audience", "a", "--lifetime", "2m"}, "add --force-lifetime"},
		{[]string{"keys", "bogus"}, "unknown command"},
		{[]string{"token", "--key", key, "--client-id", "c"}, "no authorization server"},
		{[]string{"token", "--client-id", "c", "--issuer", "http://127.0.0.1:1"}, "no key given"},
		{[]string{"call", "--key", key, "--issuer", "http://127.0.0.1:1", "http://127.0.0.1:1/x"}, "no client id"},
	} {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			if code != ExitUsage || out != "" || !strings.HasPrefix(errOut, "jwkctl: ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", tc.args, code, out, errOut, tc.want)
			}
		})
	}
	// Over 60 s is fine when forced.
	if _, errOut, code := runCLI(t, "assertion", "--key", key, "--client-id", "c", "--audience", "a", "--lifetime", "2m", "--force-lifetime"); code != 0 {
		t.Fatalf("forced lifetime: %d %s", code, errOut)
	}
}

// A comma never splits a flag value: header values, resource URIs and
// scope tokens may hold one (a repeated flag gives several values).
func TestCommasStayInValues(t *testing.T) {
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	key, pub := testKey(t)
	var mu sync.Mutex
	var form url.Values
	var headers http.Header
	sts := newSTS(t, pub)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = r.Header.Clone()
		mu.Unlock()
	}))
	defer api.Close()
	// Record the token request's form on the way to the STS.
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r.ParseForm()
			mu.Lock()
			form = r.PostForm
			mu.Unlock()
			r.Body = io.NopCloser(strings.NewReader(r.PostForm.Encode()))
		}
		r.RequestURI = ""
		u := *r.URL
		target, _ := url.Parse(sts.srv.URL)
		u.Scheme, u.Host = target.Scheme, target.Host
		r.URL = &u
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer rec.Close()
	_, errOut, code := runCLI(t, "call", "--key", key, "--client-id", "cli-client", "--token-endpoint", rec.URL+"/connect/token", "--audience", sts.srv.URL,
		"--resource", "https://api.example.no/a,b nhn:cp-api", "--scope", "nhn:x/a,b nhn:y",
		"--header", "Accept-Language: nb, en;q=0.5", api.URL+"/x")
	if code != 0 {
		t.Fatalf("call: %d %s", code, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := form["resource"]; !slices.Equal(got, []string{"https://api.example.no/a,b", "nhn:cp-api"}) {
		t.Errorf("resource = %q", got)
	}
	if got := form.Get("scope"); got != "nhn:x/a,b nhn:y" {
		t.Errorf("scope = %q", got)
	}
	if got := headers.Get("Accept-Language"); got != "nb, en;q=0.5" {
		t.Errorf("header = %q", got)
	}
}

// A server's control characters (terminal escapes) never reach the
// terminal through an error or the -v dump.
func TestCallServerTextIsPrintable(t *testing.T) {
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	key, pub := testKey(t)
	sts := newSTS(t, pub)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, "HTTP/1.1 403 \x1b]0;pwned\x07\x1b[2J\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}()
		}
	}()
	_, errOut, code := runCLI(t, "-v", "call", "--key", key, "--client-id", "cli-client", "--issuer", sts.srv.URL, "http://"+ln.Addr().String()+"/x")
	if code != 1 || strings.ContainsAny(errOut, "\x1b\x07") || !strings.Contains(errOut, "403") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// Several headers or client specs go into one environment variable one
// per line; commas and spaces stay inside a value.
func TestLines(t *testing.T) {
	got := lines([]string{"Accept: a, b\nX-One: 1\r\n\n", "X-Two: 2"})
	want := []string{"Accept: a, b", "X-One: 1", "X-Two: 2"}
	if !slices.Equal(got, want) {
		t.Fatalf("lines = %q, want %q", got, want)
	}
}

// -v works before the command, between a group and its subcommand, and
// after the subcommand.
func TestVerboseAnywhere(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"-v", "keys", "list", "--key", "file:" + dir + "/"},
		{"keys", "-v", "list", "--key", "file:" + dir + "/"},
		{"keys", "list", "-v", "--key", "file:" + dir + "/"},
	} {
		if _, errOut, code := runCLI(t, args...); code != 0 {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
}
