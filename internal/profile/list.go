package profile

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// StringList is a list of words (scopes, resource URIs) that the config
// file may give as a YAML list or as one space-separated string, the way
// OAuth writes a scope parameter:
//
//	scopes: [nhn:cp-api/access-v2-dpop, nhn:other/read]
//	scopes: nhn:cp-api/access-v2-dpop nhn:other/read
//
// It is a []string, and is written back as a list.
type StringList []string

// UnmarshalYAML reads a sequence of strings or one space-separated string.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = nil
		if n.Tag != "!!null" {
			if f := strings.Fields(n.Value); len(f) > 0 {
				*l = f
			}
		}
		return nil
	case yaml.SequenceNode:
		out := make(StringList, 0, len(n.Content))
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
				return listError(item)
			}
			out = append(out, strings.Fields(item.Value)...)
		}
		*l = out
		return nil
	}
	return listError(n)
}

func listError(n *yaml.Node) error {
	return fmt.Errorf("line %d: scopes and resources take a list of strings ([a, b]) or one space-separated string (a b), not %s", n.Line, kindName(n))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a nested list"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.Tag == "!!null" {
		return "an empty item"
	}
	return "that"
}
