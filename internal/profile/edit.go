package profile

import (
	"bytes"
	"reflect"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// header starts a config file that Save writes from scratch.
const header = "# jwkctl profiles. No secrets here: key URIs name pin-source files, never pin-values.\n" +
	"# Relative paths are relative to this file's directory.\n"

// render returns what Save writes for want: the file Load read (src)
// edited in place when there is one, else a new file.
func render(src []byte, want *File) ([]byte, error) {
	if len(bytes.TrimSpace(src)) > 0 {
		if b, ok := patch(src, want); ok {
			return b, nil
		}
	}
	body, err := encode(want, 2)
	if err != nil {
		return nil, err
	}
	return append([]byte(header), body...), nil
}

func encode(v any, indent int) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// patch edits src, a config file, until it holds want, through its YAML
// node tree: only entries whose values differ are replaced, added or
// removed, so comments, order and the other entries stay. When every edit
// fits in place (single-line values in block mappings, the common case of
// a rotation switching a key), the edits are made on the text itself and
// everything else (blank lines, indentation, quoting, the spacing before
// a comment) stays byte for byte; otherwise the edited tree is encoded,
// which keeps comments and order. Either result is used only if it reads
// back as want; ok false means neither does.
func patch(src []byte, want *File) ([]byte, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, false
	}
	if doc.Kind == 0 {
		// Only comments: keep them, and add the profiles after them.
		body, err := encode(want, 2)
		if err != nil {
			return nil, false
		}
		b := bytes.Clone(src)
		if !bytes.HasSuffix(b, []byte("\n")) {
			b = append(b, '\n')
		}
		b = append(b, body...)
		return b, matches(b, want)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, false
	}
	root := doc.Content[0]
	e := newEditor(src)
	flow := root.Style&yaml.FlowStyle != 0
	e.setDefault(root, want.Default, flow)
	e.setProfiles(root, want.Profiles, flow)
	if !e.coarse {
		if b, ok := e.apply(); ok && matches(b, want) {
			return b, true
		}
	}
	b, err := encode(&doc, indentOf(root))
	if err != nil || !matches(b, want) {
		return nil, false
	}
	return b, true
}

// matches reports whether b, read as Load reads it, holds want.
func matches(b []byte, want *File) bool {
	got := &File{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(got); err != nil {
		return false
	}
	gb, err := yaml.Marshal(canonical(got))
	if err != nil {
		return false
	}
	wb, err := yaml.Marshal(canonical(want))
	return err == nil && bytes.Equal(gb, wb)
}

func canonical(f *File) *File {
	c := &File{Default: f.Default, Profiles: make(map[string]*Profile, len(f.Profiles))}
	for name, p := range f.Profiles {
		if p == nil {
			p = &Profile{}
		}
		c.Profiles[name] = p
	}
	return c
}

// indentOf guesses the file's indentation from its first nested block
// mapping, so an encoded tree keeps it.
func indentOf(root *yaml.Node) int {
	var find func(m *yaml.Node) int
	find = func(m *yaml.Node) int {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			if v.Kind != yaml.MappingNode || v.Style&yaml.FlowStyle != 0 || len(v.Content) == 0 {
				continue
			}
			if d := v.Content[0].Column - k.Column; d >= 2 && d <= 9 && v.Content[0].Line > k.Line {
				return d
			}
			if d := find(v); d != 0 {
				return d
			}
		}
		return 0
	}
	if d := find(root); d != 0 {
		return d
	}
	return 2
}

// editor edits a node tree and, where it can, records the same edit as a
// change to the text the tree was read from.
type editor struct {
	src   []byte
	lines []int // byte offset of each line's start
	nl    string
	ops   []textOp
	// was maps a value node put in by replace to the one it replaced,
	// whose place in the text is known.
	was map[*yaml.Node]*yaml.Node
	// coarse is set by an edit the text cannot take in place: the tree
	// is encoded instead.
	coarse bool
}

// textOp replaces src[start:end] with text (end == start: an insertion).
type textOp struct {
	start, end, seq int
	text            string
}

func newEditor(src []byte) *editor {
	e := &editor{src: src, lines: []int{0}, nl: "\n", was: map[*yaml.Node]*yaml.Node{}}
	for i, c := range src {
		if c == '\n' {
			e.lines = append(e.lines, i+1)
		}
	}
	if bytes.Contains(src, []byte("\r\n")) {
		e.nl = "\r\n"
	}
	return e
}

func (e *editor) add(start, end int, text string) {
	e.ops = append(e.ops, textOp{start: start, end: end, seq: len(e.ops), text: text})
}

// apply makes the recorded text edits, from the end of the file back; ok
// is false if two of them overlap.
func (e *editor) apply() ([]byte, bool) {
	ops := slices.Clone(e.ops)
	sort.SliceStable(ops, func(i, j int) bool {
		a, b := ops[i], ops[j]
		if a.start != b.start {
			return a.start > b.start
		}
		// At one offset: what replaces text first, then insertions, the
		// last recorded first so they end up in recorded order.
		if (a.end > a.start) != (b.end > b.start) {
			return a.end > a.start
		}
		return a.seq > b.seq
	})
	b := bytes.Clone(e.src)
	limit := len(b)
	for _, o := range ops {
		if o.end > limit {
			return nil, false
		}
		b = slices.Concat(b[:o.start], []byte(o.text), b[o.end:])
		limit = o.start
	}
	return b, true
}

// offset is the byte offset of a node's line and column (1-based, the
// column in characters), or -1.
func (e *editor) offset(line, col int) int {
	if line < 1 || line > len(e.lines) || col < 1 {
		return -1
	}
	off := e.lines[line-1]
	for range col - 1 {
		if off >= len(e.src) || e.src[off] == '\n' {
			return -1
		}
		_, n := utf8.DecodeRune(e.src[off:])
		off += n
	}
	return off
}

// lineEnd is the offset of the end of the line that holds off, before
// its newline.
func (e *editor) lineEnd(off int) int {
	if i := bytes.IndexByte(e.src[off:], '\n'); i >= 0 {
		return off + i
	}
	return len(e.src)
}

// span finds the text of a scalar that sits on one line: its offsets, so
// an edit can replace just the value and keep a comment after it. ok is
// false for anything else (block scalars, multi-line values, anchors,
// explicit tags).
func (e *editor) span(n *yaml.Node) (start, end int, ok bool) {
	if n.Kind != yaml.ScalarNode || n.Anchor != "" || n.Style&(yaml.TaggedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return 0, 0, false
	}
	start = e.offset(n.Line, n.Column)
	if start < 0 {
		return 0, 0, false
	}
	line := e.src[start:e.lineEnd(start)]
	end = -1
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		for i := 1; i < len(line); i++ {
			if line[i] == '\\' {
				i++
			} else if line[i] == '"' {
				end = i + 1
				break
			}
		}
	case n.Style&yaml.SingleQuotedStyle != 0:
		for i := 1; i < len(line); i++ {
			if line[i] == '\'' {
				if i+1 < len(line) && line[i+1] == '\'' {
					i++
					continue
				}
				end = i + 1
				break
			}
		}
	default:
		end = len(line)
		for i := 1; i < len(line); i++ {
			if line[i] == '#' && (line[i-1] == ' ' || line[i-1] == '\t') {
				end = i
				break
			}
		}
		end = len(bytes.TrimRight(line[:end], " \t\r"))
	}
	if end <= 0 {
		return 0, 0, false
	}
	// The text must be the whole value: a plain value continued on the
	// next line, say, is not.
	var v yaml.Node
	if err := yaml.Unmarshal(line[:end], &v); err != nil || len(v.Content) != 1 ||
		v.Content[0].Kind != yaml.ScalarNode || v.Content[0].Value != n.Value {
		return 0, 0, false
	}
	return start, start + end, true
}

// rest reports whether only blanks and a comment follow off on its line.
func (e *editor) rest(off int) bool {
	r := bytes.TrimLeft(e.src[off:e.lineEnd(off)], " \t\r")
	return len(r) == 0 || r[0] == '#'
}

// lineStart is where the line of a key node starts, if the key is the
// first thing on it; with its head comment lines when they sit right
// above it and withHead is set.
func (e *editor) lineStart(k *yaml.Node, withHead bool) (int, bool) {
	off := e.offset(k.Line, k.Column)
	if off < 0 {
		return 0, false
	}
	start := e.lines[k.Line-1]
	if len(bytes.Trim(e.src[start:off], " ")) != 0 {
		return 0, false
	}
	if withHead && k.HeadComment != "" {
		n := strings.Count(k.HeadComment, "\n") + 1
		if first := k.Line - n; first >= 1 {
			all := true
			for l := first; l < k.Line; l++ {
				text := bytes.TrimLeft(e.src[e.lines[l-1]:e.lineEnd(e.lines[l-1])], " \t")
				all = all && len(text) > 0 && text[0] == '#'
			}
			if all {
				start = e.lines[first-1]
			}
		}
	}
	return start, true
}

// inline is n written on one line, or ok false.
func inline(n *yaml.Node) (string, bool) {
	c := *n
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	b, err := yaml.Marshal(&c)
	if err != nil {
		return "", false
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" || strings.ContainsAny(s, "\r\n") {
		return "", false
	}
	return s, true
}

func find(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return i
		}
	}
	return -1
}

// replace puts v in place of the value at m.Content[vi].
func (e *editor) replace(m *yaml.Node, vi int, v *yaml.Node, flow bool) {
	old := m.Content[vi]
	v.HeadComment, v.LineComment, v.FootComment = old.HeadComment, old.LineComment, old.FootComment
	m.Content[vi] = v
	if o := e.was[old]; o != nil {
		old = o
	}
	e.was[v] = old
	if flow {
		e.coarse = true
		return
	}
	start, end, ok := e.span(old)
	text, ok2 := inline(v)
	if !ok || !ok2 || v.Kind == yaml.MappingNode {
		e.coarse = true
		return
	}
	e.add(start, end, text)
}

// remove drops the entry at m.Content[i] (its key) and i+1. A comment
// above it stays (it may be about more than this entry, as the one at the
// top of a file is): in the text it stays where it is, in the tree it
// moves to the next entry.
func (e *editor) remove(m *yaml.Node, i int, flow bool) {
	k, v := m.Content[i], m.Content[i+1]
	m.Content = slices.Delete(m.Content, i, i+2)
	if k.HeadComment != "" && i < len(m.Content) {
		next := m.Content[i]
		next.HeadComment = strings.TrimSuffix(k.HeadComment+"\n"+next.HeadComment, "\n")
	}
	if flow {
		e.coarse = true
		return
	}
	if o := e.was[v]; o != nil {
		v = o
	}
	start, ok := e.lineStart(k, false)
	_, vend, ok2 := e.span(v)
	if !ok || !ok2 || k.Line != v.Line || !e.rest(vend) {
		e.coarse = true
		return
	}
	end := e.lineEnd(vend)
	if end < len(e.src) {
		end++
	}
	e.add(start, end, "")
}

// insert adds key: v to m as its entry number at/2.
func (e *editor) insert(m *yaml.Node, at int, key string, v *yaml.Node, flow bool) {
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	m.Content = slices.Insert(m.Content, at, k, v)
	if flow || len(m.Content) == 2 {
		e.coarse = true
		return
	}
	ktext, ok := inline(k)
	vtext, ok2 := inline(v)
	if !ok || !ok2 || v.Kind == yaml.MappingNode {
		e.coarse = true
		return
	}
	// After the entry before it, when that is one line; else before the
	// entry after it.
	if at >= 2 {
		pk, pv := m.Content[at-2], m.Content[at-1]
		if o := e.was[pv]; o != nil {
			pv = o
		}
		if _, ok := e.lineStart(pk, false); ok {
			if _, end, ok := e.span(pv); ok && e.rest(end) {
				pos, lead := e.lineEnd(end), ""
				if pos < len(e.src) {
					pos++
				} else {
					lead = e.nl
				}
				e.add(pos, pos, lead+strings.Repeat(" ", pk.Column-1)+ktext+": "+vtext+e.nl)
				return
			}
		}
	}
	if at+2 < len(m.Content) {
		nk := m.Content[at+2]
		if pos, ok := e.lineStart(nk, true); ok {
			e.add(pos, pos, strings.Repeat(" ", nk.Column-1)+ktext+": "+vtext+e.nl)
			return
		}
	}
	e.coarse = true
}

// setDefault makes the root's default what want says.
func (e *editor) setDefault(root *yaml.Node, want string, flow bool) {
	i := find(root, "default")
	switch {
	case i < 0 && want == "":
	case i < 0:
		e.insert(root, 0, "default", valueNode(nil, reflect.ValueOf(want)), flow)
	case want == "":
		e.remove(root, i, flow)
	default:
		var cur string
		if err := root.Content[i+1].Decode(&cur); err != nil || cur != want {
			e.replace(root, i+1, valueNode(root.Content[i+1], reflect.ValueOf(want)), flow)
		}
	}
}

// setProfiles makes the root's profiles what want says: profiles that
// are not wanted go, new ones are added at the end, and the others are
// edited entry by entry.
func (e *editor) setProfiles(root *yaml.Node, want map[string]*Profile, flow bool) {
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	i := find(root, "profiles")
	if i < 0 {
		if len(want) > 0 {
			e.insert(root, len(root.Content), "profiles", encodeNode(canonical(&File{Profiles: want}).Profiles), flow)
		}
		return
	}
	pm := root.Content[i+1]
	if pm.Kind != yaml.MappingNode {
		if len(want) > 0 || !isNull(pm) {
			e.replace(root, i+1, encodeNode(canonical(&File{Profiles: want}).Profiles), flow)
		}
		return
	}
	flow = flow || pm.Style&yaml.FlowStyle != 0
	for j := len(pm.Content) - 2; j >= 0; j -= 2 {
		if _, ok := want[pm.Content[j].Value]; !ok {
			e.remove(pm, j, flow)
		}
	}
	for _, name := range names {
		p := want[name]
		if p == nil {
			p = &Profile{}
		}
		j := find(pm, name)
		if j < 0 {
			e.insert(pm, len(pm.Content), name, encodeNode(p), flow)
			continue
		}
		e.setProfile(pm, j+1, p, flow)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func encodeNode(v any) *yaml.Node {
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		// Not for the values a File holds; matches catches it anyway.
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	return n
}

// setProfile edits the profile at m.Content[vi] field by field. A new
// field goes right after the field before it in Profile's order that the
// profile has (alg after key).
func (e *editor) setProfile(m *yaml.Node, vi int, want *Profile, flow bool) {
	node := m.Content[vi]
	var cur Profile
	if err := node.Decode(&cur); err != nil || node.Kind != yaml.MappingNode {
		if err != nil || !reflect.DeepEqual(canonicalProfile(&cur), canonicalProfile(want)) {
			e.replace(m, vi, encodeNode(want), flow)
		}
		return
	}
	flow = flow || node.Style&yaml.FlowStyle != 0
	t := reflect.TypeFor[Profile]()
	cv, wv := reflect.ValueOf(&cur).Elem(), reflect.ValueOf(want).Elem()
	var names []string
	for f := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(f).Tag.Get("yaml"), ",")
		names = append(names, name)
		c, w := cv.Field(f), wv.Field(f)
		if sameValue(c, w) {
			continue
		}
		i := find(node, name)
		switch {
		case w.IsZero() || (w.Kind() == reflect.Slice && w.Len() == 0):
			if i >= 0 {
				e.remove(node, i, flow)
			}
		case i >= 0:
			e.replace(node, i+1, valueNode(node.Content[i+1], w), flow)
		default:
			at := 0
			for _, before := range slices.Backward(names[:len(names)-1]) {
				if j := find(node, before); j >= 0 {
					at = j + 2
					break
				}
			}
			e.insert(node, at, name, valueNode(nil, w), flow)
		}
	}
}

func canonicalProfile(p *Profile) *Profile {
	c := p.Clone()
	if len(c.Scopes) == 0 {
		c.Scopes = nil
	}
	if len(c.Resources) == 0 {
		c.Resources = nil
	}
	return c
}

func sameValue(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Slice:
		return slices.Equal(a.Interface().(StringList), b.Interface().(StringList))
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return a.Elem().Interface() == b.Elem().Interface()
	}
	return a.Interface() == b.Interface()
}

// valueNode is the node for a new value v of an entry whose old value
// node is old (nil for a new entry), in old's style where it has one: the
// same quotes, a word list as one string or as a flow list.
func valueNode(old *yaml.Node, v reflect.Value) *yaml.Node {
	if l, ok := v.Interface().(StringList); ok {
		if old != nil && old.Kind == yaml.ScalarNode {
			return valueNode(old, reflect.ValueOf(strings.Join(l, " ")))
		}
		n := encodeNode([]string(l))
		if old == nil || old.Style&yaml.FlowStyle != 0 {
			n.Style |= yaml.FlowStyle
		}
		return n
	}
	n := encodeNode(v.Interface())
	if old != nil && old.Kind == yaml.ScalarNode && v.Kind() == reflect.String {
		if q := old.Style & (yaml.SingleQuotedStyle | yaml.DoubleQuotedStyle); q != 0 {
			n.Style = q
		}
	}
	return n
}
