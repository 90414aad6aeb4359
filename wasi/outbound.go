package wasi

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OutboundRequest is what a guest asks the host to send with the http_call
// host function, encoded as
//
//	<METHOD> <URL>\n
//	Name: value\n   (zero or more)
//	\n
//	<body>
type OutboundRequest struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// HeadTimeout, when set, bounds the time to the response's head (a
	// component's first-byte-timeout; an in-process call's whole run),
	// within the deadline of the request that makes it. Default 0: that
	// deadline alone.
	HeadTimeout time.Duration
}

// OutboundResponse is the answer to an http_call: what
// EncodeOutboundResponse encodes.
type OutboundResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// ErrMalformedRequest is wrapped by every error of ParseOutboundRequest.
var ErrMalformedRequest = errors.New("malformed http_call request")

// ParseOutboundRequest decodes a guest's http_call request. Body aliases b.
func ParseOutboundRequest(b []byte) (*OutboundRequest, error) {
	line, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no request line", ErrMalformedRequest)
	}
	method, url, ok := strings.Cut(strings.TrimSuffix(string(line), "\r"), " ")
	if !ok || !validHeaderName(method) || url == "" || strings.ContainsAny(url, " \x00") {
		return nil, fmt.Errorf("%w: request line %q: want \"METHOD URL\"", ErrMalformedRequest, truncate(string(line)))
	}
	req := &OutboundRequest{Method: method, URL: url, Header: http.Header{}}
	for n := 2; ; n++ {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if !ok {
			return nil, fmt.Errorf("%w: no blank line after the headers", ErrMalformedRequest)
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found || !validHeaderName(string(name)) {
			return nil, fmt.Errorf("%w: line %d: %q is not a header", ErrMalformedRequest, n, truncate(string(line)))
		}
		req.Header.Add(textproto.CanonicalMIMEHeaderKey(string(name)), strings.TrimSpace(string(value)))
	}
	req.Body = rest
	return req, nil
}

// EncodeOutboundRequest is the inverse of ParseOutboundRequest, for guests
// written in Go and for tests.
func EncodeOutboundRequest(method, url string, h http.Header, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(method + " " + url + "\n")
	writeHeaders(&b, h)
	b.Write(body)
	return b.Bytes()
}

// EncodeOutboundResponse encodes the answer to an http_call:
//
//	<STATUS>\n
//	Name: value\n   (zero or more, sorted by name)
//	\n
//	<body>
func EncodeOutboundResponse(status int, h http.Header, body []byte) []byte {
	var b bytes.Buffer
	b.Grow(64 + len(body))
	b.WriteString(strconv.Itoa(status) + "\n")
	writeHeaders(&b, h)
	b.Write(body)
	return b.Bytes()
}

func writeHeaders(b *bytes.Buffer, h http.Header) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range h[k] {
			b.WriteString(k + ": " + strings.NewReplacer("\r", " ", "\n", " ").Replace(v) + "\n")
		}
	}
	b.WriteString("\n")
}
