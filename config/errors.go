package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a config file. Parse and Load (and
// router.NewTable, for versions whose module cannot be resolved) return
// these joined with [errors.Join] by [JoinErrors].
//
// Its text is "file:line:col: field: msg"; parts that are unknown are left
// out (YAML syntax errors carry no column, top-level unknown fields no field).
type Error struct {
	File   string
	Line   int
	Column int
	Field  string // e.g. "services.hello.versions[1].weight"
	Msg    string
	err    error // cause, e.g. from a Resolve func
}

func (e *Error) Error() string {
	var parts []string
	for _, p := range []string{e.File, itoa(e.Line), itoa(e.Column)} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	var loc []string
	if len(parts) > 0 {
		loc = append(loc, strings.Join(parts, ":"))
	}
	if e.Field != "" {
		loc = append(loc, e.Field)
	}
	return strings.Join(append(loc, e.Msg), ": ")
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.err }

func itoa(i int) string {
	if i <= 0 {
		return ""
	}
	return strconv.Itoa(i)
}

// JoinErrors sorts errs by position and joins them; nil when errs is empty.
func JoinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 parse error of data into an *Error naming
// file and line.
func syntaxError(file string, data []byte, err error) *Error {
	msg := err.Error()
	m := yamlLine.FindStringSubmatch(msg)
	if m == nil {
		msg = strings.TrimPrefix(msg, "yaml: ")
		if parserProblems[msg] {
			return &Error{File: file, Line: 1, Msg: msg} // its line, 0 counted from 0, is not said
		}
		return &Error{File: file, Msg: msg}
	}
	line, _ := strconv.Atoi(m[1])
	if parserProblems[m[2]] {
		// yaml.v3 says a parser's problem's line counted from 0 (a
		// scanner's from 1); past the last line, it is the end of the
		// file, the last line's.
		line = min(line+1, lineCount(data))
	}
	return &Error{File: file, Line: line, Msg: m[2]}
}

// lineCount is how many lines data has, at least 1.
func lineCount(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return max(n, 1)
}

// parserProblems are the problems yaml.v3's parser (not its scanner)
// finds, whose line it says counted from 0.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// suggest returns ` (did you mean "x"?)` for the known name closest to s, or "".
func suggest(s string, known []string) string {
	best, bestDist := "", len(s)/2+1
	for _, k := range known {
		if d := editDistance(s, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, sub)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
