package config

import (
	"bytes"
	"path/filepath"
	"slices"
	"sync"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// A Parser parses configs as Parse does, keeping the YAML trees of the
// pieces of the last config it parsed so that the next one parses only
// the pieces that changed. A piece is a top-level field, or one entry of
// services, routes, lanes or registries when that field is written as a
// block: a reload of a config of a thousand services that changes one
// parses that one. A config the pieces cannot reproduce exactly
// (anything at the start of a line but a plain key or a list's item,
// indentation by tabs, a piece that does not parse alone, an anchor used
// in another piece) is parsed whole, as Parse does, and so is one of
// which more than a quarter changed.
//
// The zero Parser is ready to use; it is safe for concurrent use.
type Parser struct {
	mu   sync.Mutex
	last map[string]parsedPiece // by text
	// memo holds the services and routes decoded from the last tree, which
	// the next tree shares every unchanged piece's nodes with.
	memo memo
	// whole and parsed count the configs parsed whole and the pieces
	// parsed alone, for tests.
	whole, parsed int
}

// Parse is the package's Parse, reusing what p parsed last.
func (p *Parser) Parse(name string, data []byte) (*Config, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	root, err := p.tree(name, data)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(name)
	p.memo.start(name, dir)
	return decodeTree(name, dir, data, root, &p.memo)
}

// parsedPiece is a piece's nodes, parsed when it began at line.
type parsedPiece struct {
	line  int
	nodes []*yaml.Node // a key and its value, or an item
}

// section is a top-level field and its pieces.
type section struct {
	key    string
	header []byte // the key's line
	line   int    // of the key
	// split: each entry of the field's block mapping or sequence (seq) is
	// a piece; else the field is one piece, key and value.
	split, seq bool
	pieces     []piece
}

type piece struct {
	text []byte
	line int
}

// splitKeys are the fields whose entries are pieces of their own.
var splitKeys = []string{"services", "routes", "lanes", "registries"}

// splitPieces cuts data into sections and pieces; ok is false when it
// cannot be sure that the pieces parsed alone make the tree data does.
func splitPieces(data []byte) (secs []section, ok bool) {
	if !plainText(data) {
		return nil, false
	}
	var cur *section
	entryIndent := -1
	n := 0
	for off := 0; off < len(data); {
		end := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			end = off + i + 1
		}
		text := data[off:end]
		off = end
		n++
		indent := 0
		for indent < len(text) && text[indent] == ' ' {
			indent++
		}
		rest := bytes.TrimRight(text[indent:], "\r\n")
		switch {
		case len(rest) == 0 || rest[0] == '#': // blank or a comment: with what it follows
			if cur != nil && len(cur.pieces) > 0 {
				p := &cur.pieces[len(cur.pieces)-1]
				p.text = data[off-len(text)-len(p.text) : off]
			}
			continue
		case rest[0] == '\t':
			return nil, false
		}
		item := rest[0] == '-' && (len(rest) == 1 || rest[1] == ' ')
		if indent == 0 && !item { // a top-level field
			key, value, ok := plainKey(rest)
			if !ok {
				return nil, false
			}
			finish(cur)
			secs = append(secs, section{key: key, header: text, line: n})
			cur = &secs[len(secs)-1]
			entryIndent = -1
			if cur.split = slices.Contains(splitKeys, key) && (len(value) == 0 || value[0] == '#'); !cur.split {
				cur.pieces = []piece{{text: text, line: n}}
			}
			continue
		}
		switch {
		case cur == nil:
			return nil, false
		case !cur.split:
		case entryIndent < 0:
			entryIndent, cur.seq = indent, item
			fallthrough
		case indent == entryIndent:
			if item != cur.seq {
				return nil, false
			}
			if !item {
				if _, _, ok := plainKey(rest); !ok {
					return nil, false
				}
			}
			cur.pieces = append(cur.pieces, piece{text: text, line: n})
			continue
		case indent < entryIndent:
			return nil, false
		}
		p := &cur.pieces[len(cur.pieces)-1]
		p.text = data[off-len(text)-len(p.text) : off]
	}
	finish(cur)
	return secs, len(secs) > 0
}

// plainText reports whether data is UTF-8 without a byte order mark, of
// characters YAML allows (yaml.v3 refuses control characters in any line,
// even in a comment no piece holds), whose lines break at "\n" or "\r\n"
// only (YAML breaks them at a lone '\r', NEL, LS and PS too).
func plainText(data []byte) bool {
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f || c == '\r' && (i+1 == len(data) || data[i+1] != '\n') {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 || r == 0x2028 || r == 0x2029 || r == 0xfeff ||
			!(0xa0 <= r && r <= 0xd7ff || 0xe000 <= r && r <= 0xfffd || r >= 0x10000) {
			return false
		}
		i += size
	}
	return true
}

// finish makes a split field with no entries one piece of its own.
func finish(s *section) {
	if s != nil && s.split && len(s.pieces) == 0 {
		s.split = false
		s.pieces = []piece{{text: s.header, line: s.line}}
	}
}

// plainKey reads a line that starts with a plain key of letters, digits,
// '_', '-' and '.' followed by ':' and a space or the line's end; value is
// what follows, its spaces trimmed.
func plainKey(line []byte) (key string, value []byte, ok bool) {
	i := 0
	for i < len(line) && (isAlnum(line[i]) || line[i] == '_' || i > 0 && (line[i] == '-' || line[i] == '.')) {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ':' || i+1 < len(line) && line[i+1] != ' ' {
		return "", nil, false
	}
	return string(line[:i]), bytes.TrimLeft(line[i+1:], " "), true
}

// tree is data's YAML tree, from the pieces p parsed last where it can:
// a piece that did not change or move keeps its nodes. p.mu is held.
func (p *Parser) tree(name string, data []byte) (*yaml.Node, error) {
	secs, ok := splitPieces(data)
	if !ok {
		p.whole++
		return decodeYAML(name, data)
	}
	total, misses := 0, 0
	for _, s := range secs {
		for _, pc := range s.pieces {
			total++
			if _, hit := p.last[string(pc.text)]; !hit {
				misses++
			}
		}
	}
	next := make(map[string]parsedPiece, total)
	if misses*4 > total {
		p.whole++
		root, err := decodeYAML(name, data)
		if err == nil {
			p.last = attribute(secs, root, next)
		}
		return root, err
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Line: secs[0].line, Column: 1}
	top := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: secs[0].line, Column: 1}
	doc.Content = []*yaml.Node{top}
	for _, s := range secs {
		var value *yaml.Node
		if s.split {
			top.Content = append(top.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s.key, Line: s.line, Column: 1})
			value = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			if s.seq {
				value = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			}
			top.Content = append(top.Content, value)
		}
		for i, pc := range s.pieces {
			nodes, ok := p.piece(pc, s, next)
			if !ok {
				p.whole++
				return decodeYAML(name, data)
			}
			if value == nil {
				top.Content = append(top.Content, nodes...)
				continue
			}
			if i == 0 {
				value.Line, value.Column = nodes[0].Line, nodes[0].Column
				if s.seq { // the sequence is where its first item's '-' is
					value.Line, value.Column = pc.line, pieceIndent(pc)+1
				}
			}
			value.Content = append(value.Content, nodes...)
		}
	}
	p.last = next
	return doc, nil
}

func pieceIndent(pc piece) int {
	return len(pc.text) - len(bytes.TrimLeft(pc.text, " "))
}

// piece is pc's nodes: the last parse's, moved to pc's line, or parsed
// now. ok is false when pc does not parse alone into what s needs.
func (p *Parser) piece(pc piece, s section, next map[string]parsedPiece) (nodes []*yaml.Node, ok bool) {
	if was, hit := p.last[string(pc.text)]; hit {
		nodes = was.nodes
		if was.line != pc.line {
			nodes = make([]*yaml.Node, len(was.nodes))
			for i, n := range was.nodes {
				nodes[i] = shifted(n, pc.line-was.line)
			}
		}
		next[string(pc.text)] = parsedPiece{line: pc.line, nodes: nodes}
		return nodes, true
	}
	p.parsed++
	root, err := decodeYAML("", pc.text)
	if err != nil || root == nil || len(root.Content) != 1 {
		return nil, false
	}
	top := root.Content[0]
	want := 2
	if s.split && s.seq {
		want = 1
	}
	switch {
	case top.Style&yaml.FlowStyle != 0 || top.Anchor != "" || top.Tag != "!!map" && top.Tag != "!!seq":
		return nil, false
	case s.split && s.seq && top.Kind != yaml.SequenceNode, !(s.split && s.seq) && top.Kind != yaml.MappingNode:
		return nil, false
	case len(top.Content) != want, top.Line != 1, top.Column != pieceIndent(pc)+1:
		return nil, false
	case !s.split && (top.Content[0].Value != s.key || top.Content[0].Kind != yaml.ScalarNode):
		return nil, false
	case deeper(top, maxPieceDepth):
		// yaml.v3 refuses nesting past 10,000 levels, and a piece alone
		// is a level less deep than in its file.
		return nil, false
	}
	nodes = top.Content
	for _, n := range nodes {
		move(n, pc.line-1)
	}
	if !bytes.ContainsRune(pc.text, '&') { // an anchor's aliases would point into the old tree when moved
		next[string(pc.text)] = parsedPiece{line: pc.line, nodes: nodes}
	}
	return nodes, true
}

// maxPieceDepth is the deepest a piece parsed alone may nest; a config
// needs a handful of levels.
const maxPieceDepth = 1000

// deeper reports whether the tree at n nests more than limit levels.
func deeper(n *yaml.Node, limit int) bool {
	if limit < 0 {
		return true
	}
	for _, k := range n.Content {
		if deeper(k, limit-1) {
			return true
		}
	}
	return false
}

// move moves the tree at n delta lines; its aliases' anchors are in it.
func move(n *yaml.Node, delta int) {
	n.Line += delta
	for _, k := range n.Content {
		move(k, delta)
	}
}

// shifted is a copy of the tree at n, which has no anchors, moved delta
// lines.
func shifted(n *yaml.Node, delta int) *yaml.Node {
	if delta == 0 {
		return n
	}
	c := *n
	c.Line += delta
	if len(n.Content) > 0 {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, k := range n.Content {
			c.Content[i] = shifted(k, delta)
		}
	}
	return &c
}

// attribute records the nodes of root, data's tree parsed whole, under
// the pieces secs cut data into, in next; nil when they do not line up.
func attribute(secs []section, root *yaml.Node, next map[string]parsedPiece) map[string]parsedPiece {
	if root == nil || len(root.Content) != 1 || len(root.Content[0].Content) != 2*len(secs) {
		return nil
	}
	top := root.Content[0].Content
	for i, s := range secs {
		key, value := top[2*i], top[2*i+1]
		if key.Value != s.key || key.Line != s.line {
			return nil
		}
		if !s.split {
			add(next, s.pieces[0], []*yaml.Node{key, value})
			continue
		}
		per := 2
		if s.seq {
			per = 1
		}
		if len(value.Content) != per*len(s.pieces) {
			return nil
		}
		for j, pc := range s.pieces {
			nodes := value.Content[per*j : per*j+per]
			if nodes[0].Line != pc.line {
				return nil
			}
			add(next, pc, nodes)
		}
	}
	return next
}

func add(next map[string]parsedPiece, pc piece, nodes []*yaml.Node) {
	if !bytes.ContainsRune(pc.text, '&') && !bytes.ContainsRune(pc.text, '*') {
		next[string(pc.text)] = parsedPiece{line: pc.line, nodes: nodes}
	}
}
