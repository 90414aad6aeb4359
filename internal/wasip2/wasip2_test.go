package wasip2

import (
	"context"
	"reflect"
	"testing"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"net/http"
	"strconv"
)

// TestDeny: a WASI function the host does not grant answers with its
// interface's own error, not a failure to link.
func TestDeny(t *testing.T) {
	fsCode := cabi.EnumOf("access", "would-block", "already")
	sockCode := cabi.EnumOf("unknown", "access-denied", "not-supported")
	tests := []struct {
		name    string
		key     string
		results []*cabi.Type
		want    any // nil: no result
	}{
		{"filesystem: access", "wasi:filesystem/types@0.2#[method]descriptor.stat", []*cabi.Type{cabi.ResultOf(cabi.TU64, fsCode)},
			cabi.VariantValue{Case: 1, Value: cabi.VariantValue{Case: 0}}},
		{"sockets: access-denied", "wasi:sockets/tcp@0.2#[method]tcp-socket.start-bind", []*cabi.Type{cabi.ResultOf(nil, sockCode)},
			cabi.VariantValue{Case: 1, Value: cabi.VariantValue{Case: 1}}},
		{"option: none", "wasi:filesystem/types@0.2#filesystem-error-code", []*cabi.Type{cabi.OptionOf(fsCode)},
			cabi.VariantValue{Case: 0}},
		{"no result", "wasi:sockets/network@0.2#drop", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := deny(tc.key, tc.results)
			if f == nil {
				t.Fatal("deny returned nil")
			}
			got, err := f(context.Background(), nil, nil)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if f := deny("wasi:clocks/timezone@0.2#display", []*cabi.Type{cabi.TString}); f == nil {
		t.Error("a WASI function with no error to return: nil, want one that traps")
	} else if _, err := f(context.Background(), nil, nil); err == nil {
		t.Error("a WASI function with no error to return did not trap")
	}
	if f := deny("example:crypto/hash@1#sha256", nil); f != nil {
		t.Error("deny of a non-WASI interface is not nil: the import would link to nothing")
	}
	// WASI 0.3's interfaces are not 0.2's denied: a 0.3 component's
	// import of wasi:http/types@0.3.0 linked, and every call failed.
	if f := deny("wasi:http/types@0.3#[method]request.get-path-with-query", []*cabi.Type{cabi.OptionOf(cabi.TString)}); f != nil {
		t.Error("deny of a WASI 0.3 function is not nil: the component would link")
	}
}

// TestCheckField: a field a component sets is refused for its syntax, or
// because the host frames the message (wasmtime's forbidden fields).
func TestCheckField(t *testing.T) {
	tests := []struct {
		name, value string
		want        int // -1: ok; else the header-error case
	}{
		{"content-type", "text/plain", -1},
		{"x-custom", "", -1},
		{"bad name", "v", headerInvalidSyntax},
		{"x-custom", "a\nb", headerInvalidSyntax},
		{"", "v", headerInvalidSyntax},
		{"connection", "close", headerForbidden},
		{"transfer-encoding", "chunked", headerForbidden},
		{"host", "example.com", headerForbidden},
		{"keep-alive", "5", headerForbidden},
		{"upgrade", "websocket", headerForbidden},
		{"http2-settings", "", headerForbidden},
	}
	for _, tc := range tests {
		e, good := checkField(tc.name, []byte(tc.value))
		switch {
		case tc.want < 0 && !good:
			t.Errorf("%q: %q refused (%v), want ok", tc.name, tc.value, e)
		case tc.want >= 0 && (good || e.Value.(cabi.VariantValue).Case != uint32(tc.want)):
			t.Errorf("%q: %q = %v, %v; want header-error case %d", tc.name, tc.value, e, good, tc.want)
		}
	}
}

// TestAddHeader: a response's fields set in a header replace what it had
// under their names, a repeated name keeps all its values in order, the
// fields skip names are left out, and a long list (which takes the map
// path) gives the same.
func TestAddHeader(t *testing.T) {
	list := func(kv ...string) *fields {
		f := &fields{}
		for i := 0; i < len(kv); i += 2 {
			f.names, f.values = append(f.names, kv[i]), append(f.values, []byte(kv[i+1]))
		}
		return f
	}
	skip := map[string]bool{"Connection": true}
	short := list("content-type", "text/plain", "set-cookie", "a=1", "connection", "close", "x-thing", "v", "set-cookie", "b=2")
	var long []string
	for i := range 20 {
		long = append(long, "x-long-"+strconv.Itoa(i), strconv.Itoa(i))
	}
	for _, tc := range []struct {
		name string
		f    *fields
		want http.Header
	}{
		{"short", short, http.Header{"Content-Type": {"text/plain"}, "Set-Cookie": {"a=1", "b=2"}, "X-Thing": {"v"}, "X-Request-Id": {"r"}}},
		{"long", list(append(long, "set-cookie", "a=1", "content-type", "text/plain", "set-cookie", "b=2", "connection", "close")...),
			func() http.Header {
				h := http.Header{"Content-Type": {"text/plain"}, "Set-Cookie": {"a=1", "b=2"}, "X-Request-Id": {"r"}}
				for i := range 20 {
					h["X-Long-"+strconv.Itoa(i)] = []string{strconv.Itoa(i)}
				}
				return h
			}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"text/html"}, "X-Request-Id": {"r"}}
			r := &OutgoingResponse{Status: 200, headers: tc.f}
			r.AddHeader(h, skip)
			if !reflect.DeepEqual(h, tc.want) {
				t.Errorf("got %v, want %v", h, tc.want)
			}
		})
	}
}
