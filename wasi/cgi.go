package wasi

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
)

// Meta is what the gateway knows about a request beyond the request itself.
type Meta struct {
	// PathInfo is the path the guest sees (after any strip_prefix).
	PathInfo string
	// ScriptName is the prefix stripped from the path, "" when none.
	ScriptName string
	// Route is the name of the matched route (X_MATCHED_ROUTE).
	Route string
	// Version is the digest of the version serving the request (X_WASMESH_VERSION).
	Version string
	// RequestID is the request's id (X_REQUEST_ID).
	RequestID string
	// PeerID is the SPIFFE ID of an mTLS peer (X_SPIFFE_PEER_ID), "" without mTLS.
	PeerID string
}

// RequestEnv returns the CGI environment ("KEY=VALUE") for r, in the spirit of
// RFC 3875 and WAGI: REQUEST_METHOD, PATH_INFO, QUERY_STRING, SERVER_NAME,
// CONTENT_TYPE, CONTENT_LENGTH and friends, one HTTP_<NAME> per request header
// (values of a repeated header joined by ", "; not for Content-Type,
// Content-Length and Proxy, see skipHeaderVar), and the wasmesh variables
// X_MATCHED_ROUTE, X_WASMESH_VERSION, X_REQUEST_ID and X_SPIFFE_PEER_ID.
//
// Headers whose names contain anything but letters, digits and '-' are dropped:
// "X-User" and "X_User" would otherwise both become HTTP_X_USER, letting a
// client shadow a header set by a trusted proxy (nginx does the same).
// The result is sorted by name so that guests see a deterministic environment.
func RequestEnv(r *http.Request, m Meta) []string {
	host, port := splitHostPort(r.Host)
	env := []string{
		"GATEWAY_INTERFACE=CGI/1.1",
		"REQUEST_METHOD=" + r.Method,
		"PATH_INFO=" + m.PathInfo,
		"SCRIPT_NAME=" + m.ScriptName,
		"QUERY_STRING=" + r.URL.RawQuery,
		"REQUEST_URI=" + r.URL.RequestURI(),
		"SERVER_NAME=" + host,
		"SERVER_PORT=" + port,
		"SERVER_PROTOCOL=" + r.Proto,
		"SERVER_SOFTWARE=wasmesh",
		"REMOTE_ADDR=" + remoteIP(r.RemoteAddr),
		"HTTP_HOST=" + r.Host,
		"X_MATCHED_ROUTE=" + m.Route,
		"X_WASMESH_VERSION=" + m.Version,
		"X_REQUEST_ID=" + m.RequestID,
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		env = append(env, "CONTENT_TYPE="+ct)
	}
	if r.ContentLength >= 0 {
		env = append(env, "CONTENT_LENGTH="+strconv.FormatInt(r.ContentLength, 10))
	}
	if m.PeerID != "" {
		env = append(env, "X_SPIFFE_PEER_ID="+m.PeerID)
	}
	for name, values := range r.Header {
		if v, ok := headerVar(name); ok && !skipHeaderVar[v] {
			env = append(env, v+"="+strings.Join(values, ", "))
		}
	}
	sort.Strings(env)
	return env
}

// skipHeaderVar are header variables not passed: HTTP_HOST is set from
// r.Host, Content-Type and Content-Length have their own variables, and a
// "Proxy:" header would become HTTP_PROXY, which HTTP libraries take for
// their proxy setting (httpoxy).
var skipHeaderVar = map[string]bool{"HTTP_HOST": true, "HTTP_CONTENT_TYPE": true, "HTTP_CONTENT_LENGTH": true, "HTTP_PROXY": true}

// headerVar maps a header name to its CGI variable, refusing names that are
// not plain tokens of letters, digits and '-'.
func headerVar(name string) (string, bool) {
	b := make([]byte, 0, len("HTTP_")+len(name))
	b = append(b, "HTTP_"...)
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b = append(b, c)
		case c == '-':
			b = append(b, '_')
		default:
			return "", false
		}
	}
	return string(b), len(name) > 0
}

func splitHostPort(hostport string) (host, port string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, ""
	}
	return host, port
}

func remoteIP(addr string) string {
	host, _ := splitHostPort(addr)
	return host
}

// Response is a guest's CGI response.
type Response struct {
	// Status is the HTTP status: from a "Status:" header, else 302 when a
	// "Location:" header is present, else 200.
	Status int
	// Header holds the other headers, canonicalised.
	Header http.Header
	// Body aliases the bytes after the blank line that ends the headers.
	Body []byte
}

// MaxHeaderBytes is the largest header block ParseResponse accepts.
const MaxHeaderBytes = 64 << 10

// ErrMalformedResponse is wrapped by every error of ParseResponse.
var ErrMalformedResponse = errors.New("malformed CGI response")

// ParseResponse parses a guest's stdout: header lines ("Name: value", ending
// in "\n" or "\r\n"), a blank line, then the body. At least one header is
// required, as RFC 3875 requires Content-Type, Location or Status; a response
// with none, with no blank line, with a line that is not a header, or with a
// bad Status is an error wrapping ErrMalformedResponse that says where.
func ParseResponse(out []byte) (*Response, error) {
	resp := &Response{Status: http.StatusOK, Header: http.Header{}}
	explicitStatus := false
	rest := out
	for lineNo := 1; ; lineNo++ {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, malformed("no blank line after the headers (%d bytes of output)", len(out))
		}
		if consumed := len(out) - len(rest) + i; consumed > MaxHeaderBytes {
			return nil, malformed("headers exceed %d bytes", MaxHeaderBytes)
		}
		line := bytes.TrimSuffix(rest[:i], []byte("\r"))
		rest = rest[i+1:]
		if len(line) == 0 {
			if lineNo == 1 {
				return nil, malformed("no headers before the blank line on line 1")
			}
			break
		}
		isStatus, err := resp.addHeader(line)
		if err != nil {
			return nil, malformed("line %d: %v", lineNo, err)
		}
		explicitStatus = explicitStatus || isStatus
	}
	resp.Body = rest
	if _, ok := resp.Header["Location"]; ok && !explicitStatus {
		resp.Status = http.StatusFound
	}
	return resp, nil
}

// addHeader adds one header line, reporting whether it was Status.
func (r *Response) addHeader(line []byte) (isStatus bool, err error) {
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return false, fmt.Errorf("%q is not a header (want Name: value)", truncate(line))
	}
	key := string(name)
	if !validHeaderName(key) {
		return false, fmt.Errorf("invalid header name %q", truncate(name))
	}
	val := strings.TrimSpace(string(value))
	if strings.ContainsAny(val, "\r\x00") {
		return false, fmt.Errorf("invalid value for header %q", key)
	}
	key = textproto.CanonicalMIMEHeaderKey(key)
	if key != "Status" {
		r.Header.Add(key, val)
		return false, nil
	}
	if r.Status, err = parseStatus(val); err != nil {
		return false, err
	}
	return true, nil
}

// parseStatus accepts "201" or "201 Created". A 1xx is not a final answer,
// so it is refused.
func parseStatus(v string) (int, error) {
	digits, _, _ := strings.Cut(v, " ")
	code, err := strconv.Atoi(digits)
	if err != nil || len(digits) != 3 || code < 200 || code > 599 {
		return 0, fmt.Errorf("invalid Status %q: want a 3-digit code from 200 to 599", v)
	}
	return code, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedResponse, fmt.Sprintf(format, args...))
}
