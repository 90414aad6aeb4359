package config

import (
	"bytes"
	"fmt"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
)

// SetVersions returns data with services.<service>.versions replaced by
// versions, keeping the meaning of everything else, the comments outside
// that list, and key order. Each version is written as "module: <Module>"
// when Module is an OCI reference, else "module: <Digest>" when Digest is
// set, else "module: <Module>" or "path: <Path>" as written,
// then weight and, if set, name. The output is re-encoded with 2-space
// indentation, so blank lines and some spacing are not kept.
//
// It is an error if the service does not exist, is written through a YAML
// alias or anchor, or if the result is not a valid config (it is parsed
// before being returned).
func SetVersions(data []byte, service string, versions []*Version) ([]byte, error) {
	root, err := decodeYAML("config", data)
	if err != nil {
		return nil, err
	}
	svc := lookup(lookup(deref(root), "services"), service)
	switch {
	case svc == nil:
		return nil, fmt.Errorf("unknown service %q", service)
	case svc.Kind == yaml.AliasNode || svc.Anchor != "":
		return nil, fmt.Errorf("service %q is shared through a YAML anchor; edit it by hand", service)
	case svc.Kind != yaml.MappingNode:
		return nil, fmt.Errorf("service %q is not a mapping", service)
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for i, v := range versions {
		n, err := versionNode(v)
		if err != nil {
			return nil, fmt.Errorf("versions[%d]: %w", i, err)
		}
		seq.Content = append(seq.Content, n)
	}
	setValue(svc, "versions", seq)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	if _, err := parse("", ".", out.Bytes()); err != nil {
		return nil, fmt.Errorf("edited config would be invalid: %w", err)
	}
	return out.Bytes(), nil
}

// lookup returns the value of key in mapping m (nil if absent), without
// following an alias value.
func lookup(m *yaml.Node, key string) *yaml.Node {
	if m = deref(m); m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := deref(m.Content[i]); k != nil && k.Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setValue replaces the value of key in mapping m, or appends key. A line
// comment after the old value moves to the key, so it stays on its line.
func setValue(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Value == key {
			if c := m.Content[i+1].LineComment; c != "" && k.LineComment == "" {
				k.LineComment = c
			}
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, str(key), v)
}

func str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func versionNode(v *Version) (*yaml.Node, error) {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	switch {
	case v.IsOCI(): // keep the reference: other replicas pull it from there
		m.Content = append(m.Content, str("module"), str(v.Module))
	case v.Digest != "":
		m.Content = append(m.Content, str("module"), str(v.Digest))
	case v.Module != "":
		m.Content = append(m.Content, str("module"), str(v.Module))
	case v.Path != "":
		m.Content = append(m.Content, str("path"), str(v.Path))
	default:
		return nil, fmt.Errorf("no digest, module or path")
	}
	weight := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v.Weight)}
	m.Content = append(m.Content, str("weight"), weight)
	if v.Name != "" {
		m.Content = append(m.Content, str("name"), str(v.Name))
	}
	if v.DSCP > 0 {
		m.Content = append(m.Content, str("dscp"), &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v.DSCP)})
	}
	return m, nil
}
