package component

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// reader reads the component binary format's primitives from a byte
// slice, remembering where it is for errors.
type reader struct {
	b    []byte
	pos  int
	base int // offset of b in the whole binary
}

// errTruncated is wrapped by every error about input that ends too soon.
var errTruncated = errors.New("unexpected end")

// offset is the reader's position in the whole binary.
func (r *reader) offset() int { return r.base + r.pos }

func (r *reader) done() bool { return r.pos >= len(r.b) }

// errorf is an error about the byte just read (a tag, a kind).
func (r *reader) errorf(format string, args ...any) error {
	return &FormatError{Offset: max(r.offset()-1, r.base), Msg: fmt.Sprintf(format, args...)}
}

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, r.wrap(errTruncated)
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) wrap(err error) error {
	return &FormatError{Offset: r.offset(), Msg: err.Error(), err: err}
}

func (r *reader) bytes(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.pos < n {
		return nil, r.wrap(fmt.Errorf("%w: want %d bytes, %d left", errTruncated, n, len(r.b)-r.pos))
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s, nil
}

// u32 reads an unsigned LEB128 of at most 32 bits.
func (r *reader) u32() (uint32, error) {
	at := r.offset()
	var v uint32
	for shift := 0; ; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if shift == 28 && c > 0x0f {
			return 0, &FormatError{Offset: at, Msg: "integer representation too long or too large"}
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
}

// count reads a vector length, refusing one that the bytes left could not
// hold (each element takes at least a byte).
func (r *reader) count() (int, error) {
	at := r.offset()
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if int(n) > len(r.b)-r.pos {
		return 0, &FormatError{Offset: at, Msg: fmt.Sprintf("vector of %d elements, but only %d bytes left", n, len(r.b)-r.pos)}
	}
	return int(n), nil
}

// name reads a length-prefixed UTF-8 string.
func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	at := r.offset()
	b, err := r.bytes(int(n))
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", &FormatError{Offset: at, Msg: "name is not valid UTF-8"}
	}
	return string(b), nil
}

// sub returns a reader of the next n bytes and skips them.
func (r *reader) sub(n int) (*reader, error) {
	base := r.offset()
	b, err := r.bytes(n)
	if err != nil {
		return nil, err
	}
	return &reader{b: b, base: base}, nil
}

// FormatError is a malformed or unsupported component binary: what is
// wrong, at which byte offset, in which section.
type FormatError struct {
	Section string // e.g. "type section"; "" for the preamble
	Offset  int
	Msg     string
	err     error
}

func (e *FormatError) Error() string {
	if e.Section == "" {
		return fmt.Sprintf("component: at offset %d: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("component: %s at offset %d: %s", e.Section, e.Offset, e.Msg)
}

// Unwrap returns the cause, if any.
func (e *FormatError) Unwrap() error { return e.err }
