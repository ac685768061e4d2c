package profile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Save edits the user's file rather than writing a new one: what rotation
// changes (a profile's key, an alg it adds, a next_key it clears) is
// changed, and every comment, blank line, indentation, quote and the
// spacing before a comment stays as the user wrote it. The file keeps its
// mode.
func TestSaveEditsTheFileInPlace(t *testing.T) {
	dir := t.TempDir()
	src := `# jwkctl config for the demo
default: p   # my default

profiles:
    # the demo client
    p:
        issuer: http://127.0.0.1:8080
        client_id: demo
        key: file:client.json              # relative to this file's directory
        dpop: true
        scopes: [nhn:demo-api/read]


    other:   # another one
        issuer: 'https://helseid-sts.test.nhn.no'
        key: "file:keys/other.json"
        next_key: file:keys/other-next.json   # set by hand
        scopes: nhn:a nhn:b
# the end
`
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(src), 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p, o := f.Profiles["p"], f.Profiles["other"]
	p.Key, p.Alg = "file://"+filepath.Join(dir, "client-20270101-000000.json"), "ES256"
	o.Key, o.NextKey = "file://"+filepath.Join(dir, "keys", "other-next.json"), ""
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer(
		"key: file:client.json              #", "key: file:client-20270101-000000.json              #",
		"        dpop: true\n", "        alg: ES256\n        dpop: true\n",
		`key: "file:keys/other.json"`, `key: "file:keys/other-next.json"`,
		"        next_key: file:keys/other-next.json   # set by hand\n", "",
	).Replace(src)
	b, _ := os.ReadFile(path)
	if string(b) != want {
		t.Errorf("saved file:\n%s\nwant:\n%s", b, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %04o after save, want 0640", st.Mode().Perm())
	}
	again, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Profiles, f.Profiles) || again.Default != "p" {
		t.Errorf("profiles after a round trip:\n%+v\nwant\n%+v", again.Profiles, f.Profiles)
	}
	// Nothing changed: nothing rewritten, byte for byte.
	if err := again.Save(path); err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(path); string(b2) != want {
		t.Errorf("an unchanged save changed the file:\n%s", b2)
	}
}

// Edits that do not fit in the text (a new profile, a list written as a
// block) go through the YAML node tree: the user's comments and order
// stay, and so does the indentation.
func TestSaveNodeEditsKeepComments(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, `default: b # my default
profiles:
    # second first
    b:
        issuer: https://b   # b's issuer
        scopes:
            - x
            - y
    a:
        issuer: https://a
`)
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Profiles["b"].Scopes = StringList{"z"}
	if err := f.Set("c", &Profile{Issuer: "https://c", Key: "file:" + filepath.Join(dir, "c.json")}); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	text := string(b)
	for _, want := range []string{"default: b # my default\n", "    # second first\n    b:\n", "issuer: https://b # b's issuer\n", "            - z\n", "    c:\n        issuer: https://c\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("saved file lacks %q:\n%s", want, text)
		}
	}
	if strings.Index(text, "    b:") > strings.Index(text, "    a:") {
		t.Errorf("profiles reordered:\n%s", text)
	}
	again, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Profiles, f.Profiles) {
		t.Errorf("profiles after a round trip:\n%+v\nwant\n%+v", again.Profiles, f.Profiles)
	}
}

// A File made in memory is written whole, with jwkctl's header, as before.
func TestSaveNewFileHasHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	f := &File{}
	f.Set("a", &Profile{Issuer: "https://a"})
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "# jwkctl profiles.") || !strings.Contains(string(b), "issuer: https://a") {
		t.Fatalf("new file:\n%s", b)
	}
}

// Each edit in the text keeps the rest byte for byte; values that do not
// sit on one line are edited in the tree; either way the file reads back
// as saved.
func TestSaveEdits(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		change    func(f *File)
		want      string // "" when only the read-back is checked
	}{
		{
			name:   "default switched, quoted key",
			src:    "default: a  # which\nprofiles:\n  a:\n    key: \"file:a\\u002ejson\"  # escaped\n  b: {}\n",
			change: func(f *File) { f.Default = "b"; f.Profiles["a"].Key = "file://" + filepath.Join(f.dir, "a2.json") },
			want:   "default: b  # which\nprofiles:\n  a:\n    key: \"file:a2.json\"  # escaped\n  b: {}\n",
		},
		{
			name:   "default dropped, its comment kept",
			src:    "# top of the file\ndefault: a\nprofiles:\n  a:\n    issuer: https://a\n",
			change: func(f *File) { f.Default = "" },
			want:   "# top of the file\nprofiles:\n  a:\n    issuer: https://a\n",
		},
		{
			name:   "CRLF, no newline at the end",
			src:    "profiles:\r\n  a:\r\n    key: file:a.json\r\n    dpop: true",
			change: func(f *File) { f.Profiles["a"].DPoP = nil; f.Profiles["a"].Alg = "ES256" },
			want:   "profiles:\r\n  a:\r\n    key: file:a.json\r\n    alg: ES256\r\n",
		},
		{
			// dpop: false is a setting (off for a HelseID issuer), not an
			// entry to drop.
			name:   "dpop turned off stays written",
			src:    "profiles:\n  a:\n    issuer: https://helseid-sts.nhn.no\n    dpop: true  # bound\n",
			change: func(f *File) { f.Profiles["a"].DPoP = new(false) },
			want:   "profiles:\n  a:\n    issuer: https://helseid-sts.nhn.no\n    dpop: false  # bound\n",
		},
		{
			name:   "word list kept a string",
			src:    "profiles:\n  a:\n    scopes: 'x y'   # two\n",
			change: func(f *File) { f.Profiles["a"].Scopes = StringList{"x", "z"} },
			want:   "profiles:\n  a:\n    scopes: 'x z'   # two\n",
		},
		{
			name:   "block scalar key",
			src:    "profiles:\n  a:\n    # the key\n    key: >-\n      file:a.json\n    dpop: true\n",
			change: func(f *File) { f.Profiles["a"].Key = "file://" + filepath.Join(f.dir, "b.json") },
		},
		{
			name:   "anchored key",
			src:    "profiles:\n  a:\n    key: &k file:a.json\n  b:\n    key: *k\n",
			change: func(f *File) { f.Profiles["a"].Key = "file://" + filepath.Join(f.dir, "b.json") },
		},
		{
			name:   "flow profile",
			src:    "profiles:\n  a: {key: 'file:a.json', dpop: true}   # flow\n",
			change: func(f *File) { f.Profiles["a"].Key = "file://" + filepath.Join(f.dir, "b.json") },
		},
		{
			name:   "only comments",
			src:    "# nothing yet\n",
			change: func(f *File) { f.Set("a", &Profile{Issuer: "https://a"}) },
			want:   "# nothing yet\nprofiles:\n  a:\n    issuer: https://a\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, t.TempDir(), tc.src)
			f, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(f)
			if err := f.Save(path); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			if tc.want != "" && string(b) != tc.want {
				t.Errorf("saved:\n%q\nwant:\n%q", b, tc.want)
			}
			again, err := Load(path)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if !reflect.DeepEqual(canonical(again), canonical(f)) {
				t.Errorf("read back:\n%+v\nwant\n%+v\n%s", again.Profiles, f.Profiles, b)
			}
			if strings.Contains(tc.src, "# ") && !strings.Contains(string(b), "# ") {
				t.Errorf("comments lost:\n%s", b)
			}
		})
	}
}
