package dataplane

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/router"
)

// Request is one request on the request path. It is made once, where the
// request enters — by the HTTP edge (ServeHTTP) for a client's request, by
// a guest's call for an in-process one — and the one path (serve) reads and
// fills it: route, service, version, limits, then what came of it. Nothing
// about a request lives anywhere else; host functions find the request
// their guest serves through the context (requestFrom).
type Request struct {
	// What is asked. Its URL.Path is cleaned before routing; its body is
	// read by serve within the service's limits.
	HTTP *http.Request
	// ID is the request id: a sane incoming X-Request-Id, else a new one.
	ID string
	// Start is when the request entered, from clock.Now: for durations
	// and deadlines, not a timestamp to show.
	Start time.Time

	// Where it came from.

	// Conn is the client connection, coloured for the version that
	// answers; nil for an in-process call.
	Conn *clientConn
	// Peer is the mTLS client's SPIFFE ID, read once from its certificate;
	// zero without one. PeerID is its text, "" without one.
	Peer   spiffeid.ID
	PeerID string
	// Caller is the request whose guest made this in-process call; nil for
	// a request from a client. allow_peers governs clients; a call is
	// governed by its caller's outbound list.
	Caller *Request
	// service is the service an in-process call names.
	service string
	// Hop counts the in-process calls that led here: 0 for a client's
	// request.
	Hop int
	// calls counts the wasmesh:// calls made on behalf of a client's
	// request, in the request at the root of the calls' tree (treeCall).
	calls atomic.Int32
	// denied counts the request's outbound calls the allow-list refused.
	denied atomic.Int32
	// bag is the W3C baggage header the request's calls carry, "" for
	// none: a client's (with the lane member the host decided, enterLane),
	// or a call's caller's. Guests cannot change it.
	bag string
	// ctx carries the request's span (and, for a call, the caller's
	// deadline); span is the request's server span.
	ctx  context.Context
	span trace.Span
	// attrs holds the attributes handed to the request's recorded spans,
	// one SetAttributes at a time (a provider copies them): from a pool
	// (spanAttrs), so that they allocate nothing, and an unrecorded
	// request (most, when tracing is off or sampled) carries no room for
	// them (448 bytes, half the Request).
	attrs *[7]attribute.KeyValue
	// body sets the client connection's read deadline while the body is
	// read; nil for in-process calls, whose body is in memory.
	body *http.ResponseController

	// Where it goes: set by serve.

	// snap is the config generation the request is served by, to its end;
	// an in-process call is served by its caller's.
	snap    *Snapshot
	Route   *config.Route
	Service *config.Service
	Version *config.Version
	// Limits are the service's: the body read, the wait for a slot and the
	// guest's run are each bounded by Limits.Timeout.
	Limits config.Limits
	// Lane is the request's lane, nil for none: set where a client's
	// request enters (enterLane), a call's is its caller's.
	Lane   *router.Lane
	series *series    // the route's and version's metrics
	colour bpf.Colour // the version's colour, 0 for none

	// What came of it.

	// abort says the response went out in part only (a streamed response
	// whose guest failed or did not finish its body): the edge breaks the
	// connection rather than end the response cleanly.
	abort bool
	// stopped: the gateway's drain stopped the request (a 503 that is not
	// the version's error).
	stopped bool
	// unjudged: the request is none of its version's figures
	// (VersionStats), which releases judge: a client chose the version
	// (a pin), or the service had no slot free for it (shed).
	unjudged, shed bool
	// answered: a buffered answer was ready to write, readyAfter after
	// Start: the version's latency ends there, and the client's time to
	// take it is its own. False for an answer streamed.
	answered   bool
	nhv        uint8 // of hv used (below, here in the padding: the request is 512 bytes, a size class)
	readyAfter time.Duration
	// guestLog counts the bytes of the request's guest log lines.
	guestLog atomic.Int64

	Status  int
	Bytes   int   // response body bytes written
	BodyLen int   // request body bytes read
	Err     error // why the request failed, for the log and the span
	// ClientFault is why the request failed by its client's doing
	// (ClientFaults), "" when it did not: counted apart, never as its
	// version's error.
	ClientFault string

	// hv holds the values of the headers the path sets (setHeader):
	// allocated with the request, not one slice each.
	hv [3]string
	// guest is what a CGI guest's run takes of the request, allocated with
	// it (runGuest).
	guest guestRun
}

// guestRun is what a CGI guest's run is given besides its buffers: its
// arguments, stdin, stderr and context.
type guestRun struct {
	args   [1]string
	stdin  bytes.Reader
	stderr headWriter
	ctx    guestContext
}

// guestContext is a guest's context, a CGI guest's or a component's: its
// request's, with the request as the value of requestKey (requestFrom),
// kept where the run is (one allocation fewer than context.WithValue).
type guestContext struct {
	context.Context
	req *Request
}

func (c *guestContext) Value(key any) any {
	if key == (requestKey{}) {
		return c.req
	}
	return c.Context.Value(key)
}

// Context is the request's context, with its span.
func (r *Request) Context() context.Context { return r.ctx }

// setHeader sets response header k, canonical, to v.
func (r *Request) setHeader(h http.Header, k, v string) {
	if int(r.nhv) == len(r.hv) {
		h.Set(k, v)
		return
	}
	r.hv[r.nhv] = v
	h[k] = r.hv[r.nhv : r.nhv+1 : r.nhv+1]
	r.nhv++
}

// attrPool holds the requests' span attribute buffers.
var attrPool = sync.Pool{New: func() any { return new([7]attribute.KeyValue) }}

// spanAttrs is an empty slice with room for the attributes of one of the
// request's spans, its buffer kept until the request ends (endAttrs).
func (req *Request) spanAttrs() []attribute.KeyValue {
	if req.attrs == nil {
		req.attrs = attrPool.Get().(*[7]attribute.KeyValue)
	}
	return req.attrs[:0]
}

// endAttrs gives the request's span attribute buffer back, cleared.
func (req *Request) endAttrs() {
	if req.attrs != nil {
		*req.attrs = [7]attribute.KeyValue{}
		attrPool.Put(req.attrs)
		req.attrs = nil
	}
}
