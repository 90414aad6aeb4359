package wasi

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestRequestEnv(t *testing.T) {
	r := httptest.NewRequest("POST", "http://api.example.com:8080/hello/x?a=1&b=2", strings.NewReader("12345"))
	r.Header.Set("Content-Type", "text/plain")
	r.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	r.Header.Add("X-Multi", "a")
	r.Header.Add("X-Multi", "b")
	r.Header["X_Shadow"] = []string{"evil"}
	r.Header.Set("Proxy", "http://evil.example:3128")
	r.Header.Set("X-Spiffe-Peer-Id", "spiffe://example.org/forged")
	env := RequestEnv(r, Meta{PathInfo: "/x", ScriptName: "/hello", Route: "r1", Version: "sha256:abc", RequestID: "rid", PeerID: "spiffe://example.org/a"})

	want := []string{
		"REQUEST_METHOD=POST", "PATH_INFO=/x", "SCRIPT_NAME=/hello", "QUERY_STRING=a=1&b=2",
		"SERVER_NAME=api.example.com", "SERVER_PORT=8080", "CONTENT_TYPE=text/plain", "CONTENT_LENGTH=5",
		"HTTP_TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"HTTP_X_MULTI=a, b", "HTTP_HOST=api.example.com:8080", "X_MATCHED_ROUTE=r1",
		"X_WASMESH_VERSION=sha256:abc", "X_REQUEST_ID=rid", "X_SPIFFE_PEER_ID=spiffe://example.org/a",
		"HTTP_X_SPIFFE_PEER_ID=spiffe://example.org/a", // the handshake's, not the client's field
	}
	for _, w := range want {
		if !slices.Contains(env, w) {
			t.Errorf("env lacks %q; got %q", w, env)
		}
	}
	for _, e := range env {
		if strings.Contains(e, "forged") {
			t.Errorf("the client's X-Spiffe-Peer-Id reached the guest: %q", e)
		}
		for _, banned := range []string{"HTTP_X_SHADOW", "HTTP_PROXY", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"} {
			if strings.HasPrefix(e, banned+"=") {
				t.Errorf("%s reached the guest: %q", banned, e)
			}
		}
	}
	if !slices.IsSorted(env) {
		t.Errorf("env is not sorted: %q", env)
	}
}

func TestRequestEnvNoPeer(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Spiffe-Peer-Id", "spiffe://example.org/forged")
	for _, e := range RequestEnv(r, Meta{PathInfo: "/"}) {
		if strings.HasPrefix(e, "X_SPIFFE_PEER_ID=") || strings.HasPrefix(e, "HTTP_X_SPIFFE_PEER_ID=") {
			t.Fatalf("X_SPIFFE_PEER_ID set without a peer: %q", e)
		}
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name       string
		out        string
		wantStatus int
		wantHeader map[string]string
		wantBody   string
		wantErr    string
	}{
		{name: "plain", out: "Content-Type: text/plain\n\nhello\n", wantStatus: 200,
			wantHeader: map[string]string{"Content-Type": "text/plain"}, wantBody: "hello\n"},
		{name: "crlf", out: "Content-Type: text/plain\r\n\r\nhi", wantStatus: 200, wantBody: "hi"},
		{name: "status", out: "Status: 201 Created\nContent-Type: a/b\n\n", wantStatus: 201,
			wantHeader: map[string]string{"Content-Type": "a/b"}},
		{name: "status bare", out: "status: 404\n\nnope", wantStatus: 404, wantBody: "nope"},
		{name: "location gives 302", out: "Location: /there\n\n", wantStatus: 302,
			wantHeader: map[string]string{"Location": "/there"}},
		{name: "location with status", out: "Location: /there\nStatus: 301\n\n", wantStatus: 301},
		{name: "header canonicalised", out: "x-thing:  v \n\n", wantStatus: 200, wantHeader: map[string]string{"X-Thing": "v"}},
		{name: "body keeps blank lines", out: "A: b\n\n\nx\n\n", wantStatus: 200, wantBody: "\nx\n\n"},
		{name: "empty", out: "", wantErr: "no blank line"},
		{name: "no blank line", out: "Content-Type: text/plain\nhello", wantErr: "no blank line"},
		{name: "no headers", out: "\nbody", wantErr: "no headers"},
		{name: "not a header", out: "hello world\n\n", wantErr: "line 1: \"hello world\" is not a header"},
		{name: "garbage bytes", out: "\x00\x01 junk\n", wantErr: "line 1: \"\\x00\\x01 junk\" is not a header"},
		{name: "bad name", out: "Bad Name: x\n\n", wantErr: "invalid header name"},
		{name: "bad status", out: "Status: abc\n\n", wantErr: `line 1: invalid Status "abc"`},
		{name: "status out of range", out: "Status: 999\n\n", wantErr: "invalid Status"},
		{name: "informational status", out: "Status: 101\n\n", wantErr: "from 200 to 599"},
		{name: "two statuses", out: "Status: 200\nStatus: 500\n\nx", wantErr: "line 2: a second Status"},
		{name: "control character in a value", out: "X-A: a\x01b\n\n", wantErr: `invalid value for header "X-A": control character 0x01`},
		{name: "DEL in a value", out: "X-A: a\x7fb\n\n", wantErr: "control character 0x7f"},
		{name: "tab in a value", out: "X-A: a\tb\n\n", wantStatus: 200, wantHeader: map[string]string{"X-A": "a\tb"}},
		{name: "huge headers", out: "A: " + strings.Repeat("x", MaxHeaderBytes) + "\n\n", wantErr: "headers exceed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := ParseResponse([]byte(tc.out))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				if !errors.Is(err, ErrMalformedResponse) {
					t.Fatalf("err %v does not wrap ErrMalformedResponse", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.Status, tc.wantStatus)
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if _, ok := resp.Header["Status"]; ok {
				t.Errorf("Status leaked into headers: %v", resp.Header)
			}
			if tc.wantBody != "" && string(resp.Body) != tc.wantBody {
				t.Errorf("body = %q, want %q", resp.Body, tc.wantBody)
			}
		})
	}
}

// TestParseResponseInto: the fields go into the caller's header, replacing
// what it had under a name the guest sets (its repeated names appended),
// but for skipped names; the status and body are ParseResponse's; the
// header is left alone when the output is malformed.
func TestParseResponseInto(t *testing.T) {
	for _, out := range []string{
		"Content-Type: text/plain\n\nhello\n",
		"Content-Type: a/b\nX-A: 1\nx-a: 2\nSet-Cookie: c=1\nSet-Cookie: d=2\nConnection: close\n\nbody",
		"Location: /there\n\n",
		"Status: 201 Created\r\nX-Pre: guest\r\n\r\n",
		"Status: 999\n\n",
		"X-A: 1\nBad Name: 2\n\n",
		"no blank line",
		strings.Repeat("X-Many: v\n", 40) + "X-Last: 1\n\n",
	} {
		want, wantErr := ParseResponse([]byte(out))
		h := http.Header{"X-Pre": {"gateway"}, "Connection": {"keep-alive"}}
		status, body, err := ParseResponseInto([]byte(out), h, map[string]bool{"Connection": true})
		if (err != nil) != (wantErr != nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("%q: err %v, ParseResponse's %v", out, err, wantErr)
		}
		if err != nil {
			if !reflect.DeepEqual(h, http.Header{"X-Pre": {"gateway"}, "Connection": {"keep-alive"}}) {
				t.Errorf("%q: malformed, yet the header became %v", out, h)
			}
			continue
		}
		wantH := http.Header{"X-Pre": {"gateway"}, "Connection": {"keep-alive"}}
		for k, vs := range want.Header {
			if k != "Connection" {
				wantH[k] = vs
			}
		}
		if status != want.Status || string(body) != string(want.Body) || !reflect.DeepEqual(h, wantH) {
			t.Errorf("%q: %d %v %q, want %d %v %q", out, status, h, body, want.Status, wantH, want.Body)
		}
	}
	// Into a header that has had the fields before, as a connection's
	// response header has: the block's copy and the values' array only.
	out := []byte("Content-Type: text/plain\nX-Trace: a\n\nhello")
	h := http.Header{}
	if n := testing.AllocsPerRun(100, func() {
		clear(h)
		if _, _, err := ParseResponseInto(out, h, nil); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Errorf("ParseResponseInto allocates %.0f times, want at most 2", n)
	}
}

func FuzzParseResponse(f *testing.F) {
	for _, seed := range []string{
		"Content-Type: text/plain\n\nhello", "Status: 201\r\n\r\n", "Location: /x\n\n", "\n", "a:b\n\nc",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		resp, err := ParseResponse(out)
		if err != nil {
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("error %v does not wrap ErrMalformedResponse", err)
			}
			return
		}
		if resp.Status < 100 || resp.Status > 599 {
			t.Fatalf("status %d out of range", resp.Status)
		}
		// The response must be writable by net/http without panicking.
		w := httptest.NewRecorder()
		for k, vs := range resp.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(resp.Status)
		_, _ = w.Write(resp.Body)
	})
}

func TestParseMount(t *testing.T) {
	tests := []struct {
		spec    string
		want    Mount
		wantErr bool
	}{
		{spec: "/data", want: Mount{HostPath: "/data", GuestPath: "/data"}},
		{spec: "/data:/d", want: Mount{HostPath: "/data", GuestPath: "/d"}},
		{spec: "/data:/d:ro", want: Mount{HostPath: "/data", GuestPath: "/d", ReadOnly: true}},
		{spec: "/data:ro", want: Mount{HostPath: "/data", GuestPath: "/data", ReadOnly: true}},
		{spec: "a:b:c:d", wantErr: true},
		{spec: ":/x", wantErr: true},
		{spec: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ParseMount(tc.spec)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestEnvBufferReuse builds environments of different sizes in one
// EnvBuffer: each is what RequestEnv builds on its own.
func TestEnvBufferReuse(t *testing.T) {
	var b EnvBuffer
	for _, tc := range []struct{ target, header string }{
		{"/a", ""}, {"/much/longer/path?with=a&query=string", strings.Repeat("v", 3000)}, {"/b", "x"}, {"/", ""},
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		if tc.header != "" {
			r.Header.Set("X-Long", tc.header)
		}
		m := Meta{PathInfo: r.URL.Path, RequestID: "id" + tc.target}
		got, want := b.RequestEnv(r, m), RequestEnv(r, m)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: reused buffer gave %q, want %q", tc.target, got, want)
		}
	}
}

// TestRequestEnvSorted: the environment is sorted whatever the request
// has (it is built in order, the HTTP_ group sorted on its own).
func TestRequestEnvSorted(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		headers        []string
		meta           Meta
	}{
		{"GET", "/", nil, Meta{}},
		{"POST", "/p?q=1", []string{"Content-Type", "a/b", "Accept", "*/*", "Zz-Last", "z", "A", "first", "Host-Like", "h"}, Meta{PeerID: "spiffe://x/y", Route: "r"}},
		{"GET", "http://h:1/abs", []string{"Hosta", "x", "Ho", "y", "X-Forwarded-For", "1.2.3.4"}, Meta{RequestID: "id", Version: "v"}},
	} {
		var body io.Reader
		if tc.method == "POST" {
			body = strings.NewReader("abc")
		}
		r := httptest.NewRequest(tc.method, tc.target, body)
		for i := 0; i+1 < len(tc.headers); i += 2 {
			r.Header.Add(tc.headers[i], tc.headers[i+1])
		}
		env := RequestEnv(r, tc.meta)
		if !slices.IsSorted(env) {
			t.Errorf("%s %s: not sorted: %q", tc.method, tc.target, env)
		}
	}
}

func TestServerNameAndPort(t *testing.T) {
	for _, tc := range []struct{ host, name, port string }{
		{"api.example.com", "api.example.com", ""},
		{"api.example.com:8080", "api.example.com", "8080"},
		{"[::1]:8443", "::1", "8443"},
		{"[::1]", "[::1]", ""},
		{"", "", ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = tc.host
		env := strings.Join(RequestEnv(r, Meta{PathInfo: "/"}), "\n") + "\n"
		if !strings.Contains(env, "\nSERVER_NAME="+tc.name+"\n") || !strings.Contains(env, "\nSERVER_PORT="+tc.port+"\n") {
			t.Errorf("Host %q: want SERVER_NAME=%q SERVER_PORT=%q in\n%s", tc.host, tc.name, tc.port, env)
		}
	}
}
