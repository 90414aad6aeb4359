package config

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
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
	return edit(data, func(root *yaml.Node) error {
		svc := lookup(lookup(deref(root), "services"), service)
		switch {
		case svc == nil:
			return fmt.Errorf("unknown service %q", service)
		case svc.Kind == yaml.AliasNode || svc.Anchor != "":
			return fmt.Errorf("service %q is shared through a YAML anchor; edit it by hand", service)
		case svc.Kind != yaml.MappingNode:
			return fmt.Errorf("service %q is not a mapping", service)
		}
		// Written in the style the list had: [ { … }, … ], or - { … }.
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		var itemStyle yaml.Style
		if old := lookup(svc, "versions"); old != nil && old.Kind == yaml.SequenceNode {
			seq.Style = old.Style & yaml.FlowStyle
			if len(old.Content) > 0 {
				itemStyle = old.Content[0].Style & yaml.FlowStyle
			}
		}
		for i, v := range versions {
			n, err := versionNode(v)
			if err != nil {
				return fmt.Errorf("versions[%d]: %w", i, err)
			}
			n.Style |= itemStyle
			seq.Content = append(seq.Content, n)
		}
		setValue(svc, "versions", seq)
		return nil
	})
}

// SetLane returns data with lanes.<l.Name> set to l (added when the config
// has no such lane), like SetVersions: mode only when strict, evict only
// when not the default. It is an error if the result is not a valid
// config, for instance if l names an unknown service or version.
func SetLane(data []byte, l *Lane) ([]byte, error) {
	return edit(data, func(root *yaml.Node) error {
		lanes, err := lanesNode(root)
		if err != nil {
			return err
		}
		setValue(lanes, l.Name, laneNode(l))
		return nil
	})
}

// DeleteLane returns data without lanes.<name>; an error if it has none.
func DeleteLane(data []byte, name string) ([]byte, error) {
	return edit(data, func(root *yaml.Node) error {
		lanes, err := lanesNode(root)
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(lanes.Content); i += 2 {
			if lanes.Content[i].Value == name {
				lanes.Content = append(lanes.Content[:i], lanes.Content[i+2:]...)
				if len(lanes.Content) == 0 { // the last: no "lanes: {}" left behind
					top := deref(root)
					for j := 0; j+1 < len(top.Content); j += 2 {
						if top.Content[j].Value == "lanes" {
							top.Content = append(top.Content[:j], top.Content[j+2:]...)
							break
						}
					}
				}
				return nil
			}
		}
		return fmt.Errorf("no lane %q", name)
	})
}

// lanesNode is the config's lanes mapping, made empty when absent.
func lanesNode(root *yaml.Node) (*yaml.Node, error) {
	top := deref(root)
	if top == nil || top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the config is not a mapping")
	}
	lanes := lookup(top, "lanes")
	switch {
	case lanes == nil || isNull(lanes):
		lanes = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		setValue(top, "lanes", lanes)
	case lanes.Kind == yaml.AliasNode || lanes.Anchor != "":
		return nil, fmt.Errorf("lanes are shared through a YAML anchor; edit them by hand")
	case lanes.Kind != yaml.MappingNode:
		return nil, fmt.Errorf("lanes is not a mapping")
	}
	return lanes, nil
}

func laneNode(l *Lane) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if l.Strict {
		m.Content = append(m.Content, str("mode"), str("strict"))
	}
	vs := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
	for _, svc := range slices.Sorted(maps.Keys(l.Versions)) {
		vs.Content = append(vs.Content, str(svc), str(l.Versions[svc]))
	}
	m.Content = append(m.Content, str("versions"), vs)
	if len(l.Entry) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range l.Entry {
			en := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
			if e.Kind == "share" {
				en.Content = append(en.Content, str("share"), number(strconv.FormatFloat(e.Share, 'f', -1, 64)), str("key"), str(e.Key.Kind+":"+e.Key.Name))
			} else {
				en.Content = append(en.Content, str(e.Kind), str(e.Name+"="+e.Value))
			}
			seq.Content = append(seq.Content, en)
		}
		m.Content = append(m.Content, str("entry"), seq)
	}
	switch ev := l.Evict; {
	case ev.Off:
		m.Content = append(m.Content, str("evict"), str("off"))
	case ev != defaultEvict() && ev != Evict{}:
		en := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
		en.Content = append(en.Content, str("error_rate"), number(strconv.FormatFloat(ev.ErrorRate, 'f', -1, 64)),
			str("window"), str(ev.Window.String()), str("min_requests"), number(strconv.Itoa(ev.MinRequests)))
		m.Content = append(m.Content, str("evict"), en)
	}
	return m
}

// edit applies change to the node tree of data and returns it re-encoded
// with 2-space indentation, once parsed as a valid config.
func edit(data []byte, change func(root *yaml.Node) error) ([]byte, error) {
	root, err := decodeYAML("config", data)
	if err != nil {
		return nil, err
	}
	if root == nil {
		root = &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	if err := change(root); err != nil {
		return nil, err
	}
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
			switch c := m.Content[i+1].LineComment; {
			case c == "":
			case v.Style&yaml.FlowStyle != 0: // on one line still: after it
				v.LineComment = c
			case k.LineComment == "": // a block now: after its key
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

// number is a scalar node of the number s, an integer or a float.
func number(s string) *yaml.Node {
	tag := "!!float"
	if _, err := strconv.Atoi(s); err == nil {
		tag = "!!int"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s}
}

func versionNode(v *Version) (*yaml.Node, error) {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	switch {
	case v.Upstream != nil:
		// As the config wrote it: an upstream only comes from a config.
		m.Content = append(m.Content, str("upstream"), v.Upstream.node)
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
	weight := number(strconv.Itoa(v.Weight))
	m.Content = append(m.Content, str("weight"), weight)
	if v.Name != "" {
		m.Content = append(m.Content, str("name"), str(v.Name))
	}
	if v.DSCP > 0 {
		m.Content = append(m.Content, str("dscp"), number(strconv.Itoa(v.DSCP)))
	}
	return m, nil
}
