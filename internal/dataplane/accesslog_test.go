//go:build !race

package dataplane

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/config"
)

// TestAccessLogAllocs: a request's access line, every field set, takes the
// two allocations slog's record makes for fields past its first five and
// the trace id's text, not one more for the fields' slice growing.
func TestAccessLogAllocs(t *testing.T) {
	var out bytes.Buffer
	p := &Plane{log: slog.New(slog.NewTextHandler(&out, nil))}
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	req := &Request{
		HTTP: httptest.NewRequest("GET", "http://example.com/x", nil), ID: "r1", ctx: ctx, span: trace.SpanFromContext(ctx),
		Route: &config.Route{Name: "r"}, Service: &config.Service{Name: "s"}, Version: &config.Version{Digest: "sha256:" + strings.Repeat("ab", 32)},
		Status: 200, Hop: 1, PeerID: "spiffe://example.org/x",
	}
	p.accessLog(req)
	for _, want := range []string{"request_id=r1", "route=r", "service=s", "version=", "trace_id=0af7651916cd43dd8448eb211c80319c", "hop=1", "peer_id="} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("access line %q has no %s", out.String(), want)
		}
	}
	p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if n := testing.AllocsPerRun(100, func() { p.accessLog(req) }); n > 2 {
		t.Errorf("%v allocations an access line, want at most 2", n)
	}
}
