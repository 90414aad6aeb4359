package mesh

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/admin"
	"github.com/wasmesh/wasmesh/internal/dataplane"
	"github.com/wasmesh/wasmesh/internal/http1"
	"github.com/wasmesh/wasmesh/internal/warm"
)

// Serve serves the gateway on ln and, when admin is not nil, the admin API
// on admin, until ctx is done. Then it drains, as a load balancer expects:
//
//  1. /readyz answers 503 at once, while requests are still served, each
//     response closing its connection (HTTP/2: a GOAWAY);
//  2. after the config's drain_delay, the listener closes: new connections
//     are refused;
//  3. requests in flight get up to drain_timeout to finish;
//  4. guests still running then are stopped through their context.
//
// Serve returns nil after a complete drain, or the error that stopped a
// listener.
func (g *Gateway) Serve(ctx context.Context, ln, admin net.Listener) error {
	var adminHandler http.Handler
	if admin != nil {
		var err error
		if admin, adminHandler, err = g.adminListener(admin); err != nil {
			return err
		}
	}
	guests, stopGuests := context.WithCancelCause(context.Background())
	defer stopGuests(nil)
	// Progressive releases: those of an earlier run go on, and are judged
	// every second while the gateway serves (in a fleet, by its leader
	// alone: LeadReleases).
	releaseCtx, stopReleases := context.WithCancel(ctx)
	defer stopReleases()
	if g.opts.Fleet == nil {
		if err := g.releases.LoadState(ctx); err != nil {
			return fmt.Errorf("releases: %w", err)
		}
		go g.releases.Run(releaseCtx, time.Second)
	}
	send := config.DefaultSendTimeout
	if c := g.Config(); c != nil && c.HTTP.SendTimeout > 0 {
		send = c.HTTP.SendTimeout
	}
	srv := &http.Server{
		Handler:           takingTurns(g.plane, send), // HTTP/1 reaches it only with --net-http
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Gives every HTTP/2 stream its write deadline's timer from its
		// start, far away, for takingTurns; HTTP/1 (--net-http) gets no
		// deadline that would ever pass.
		WriteTimeout: dataplane.NoWriteDeadline,
		BaseContext:  func(net.Listener) context.Context { return guests },
		ConnContext:  withTurns,
		Protocols:    new(http.Protocols),
		// HTTP/2 has no header timeout: a connection that goes silent
		// (a HEADERS frame whose CONTINUATION never comes, a peer gone)
		// is asked for a PING after 15 s and closed 10 s later without
		// its answer, not held until IdleTimeout. A PING's answer in the
		// middle of a header block is a protocol error: closed too.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 15 * time.Second, PingTimeout: 10 * time.Second},
	}
	if g.opts.NetHTTP || !http1.GuardsWrites {
		// A connection that takes no bytes for send is closed
		// (http.send_timeout, as HTTP/1's). Connections that http1
		// accepted and handed over have that bound already where it can
		// (Linux), at no cost while the kernel takes the writes
		// (http1.Server.SendTimeout), where this one sets and lifts a
		// deadline around every write.
		srv.HTTP2.WriteByteTimeout = send
	}
	srv.Protocols.SetHTTP1(true)
	// net/http (h2, --net-http) bounds the head as a whole, at what
	// http1 allows its line and fields together.
	srv.MaxHeaderBytes = http1.DefaultMaxRequestLine + http1.DefaultMaxHeaderBytes
	if c := g.Config(); c != nil {
		srv.MaxHeaderBytes = int(cmp.Or(c.HTTP.MaxRequestLine, http1.DefaultMaxRequestLine) + cmp.Or(c.HTTP.MaxHeaderBytes, http1.DefaultMaxHeaderBytes))
	}
	errc := make(chan error, 3)
	servers := []server{srv}
	if g.opts.Identity != nil {
		tlsCfg, err := g.serverTLS()
		if err != nil {
			return err
		}
		srv.Protocols.SetHTTP2(true)
		if g.opts.NetHTTP {
			srv.TLSConfig = tlsCfg
			go func() { errc <- srv.ServeTLS(ln, "", "") }()
		} else {
			// The handshake and HTTP/1.1 in http1; h2 (by ALPN) in
			// net/http, which sets up h2 for connections handed to it only
			// when its TLSConfig offers "h2".
			tlsCfg = tlsCfg.Clone()
			tlsCfg.NextProtos = []string{"h2", "http/1.1"}
			srv.TLSConfig = tlsCfg
			servers = append(servers, g.serveHTTP1(tls.NewListener(http1.NewListener(ln), tlsCfg), srv, errc))
		}
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true) // h2c, for gRPC-style clients and benchmarks
		if g.opts.NetHTTP {
			go func() { errc <- srv.Serve(ln) }()
		} else {
			servers = append(servers, g.serveHTTP1(ln, srv, errc))
		}
	}

	var adminSrv *http.Server
	if admin != nil {
		adminSrv = &http.Server{Handler: adminHandler, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- adminSrv.Serve(admin) }()
	}

	select {
	case err := <-errc:
		for _, s := range servers {
			s.Close()
		}
		if adminSrv != nil {
			adminSrv.Close()
		}
		return err
	case <-ctx.Done():
	}
	err := g.drain(servers, stopGuests)
	if adminSrv != nil {
		adminSrv.Close()
	}
	return err
}

// PrepareAdmin makes the admin API's authentication as the active config
// says (admin.NewAuth), writing the token it makes, if any: Serve calls it
// when the caller has not, a caller that announces the admin API calls it
// first, so that the token file is there once announced.
func (g *Gateway) PrepareAdmin() error {
	if g.adminAuth != nil {
		return nil
	}
	var cfg config.AdminAuth
	if c := g.Config(); c != nil {
		cfg = c.AdminAuth
	} else if g.opts.AdminAuth != nil {
		cfg = *g.opts.AdminAuth
	}
	auth, err := admin.NewAuth(cfg, g.log)
	if err != nil {
		return err
	}
	g.adminAuth, g.adminAllowIDs = auth, len(cfg.AllowIDs) > 0
	return nil
}

// adminListener authenticates the admin API (PrepareAdmin): with
// allow_ids, ln serves TLS with the gateway's SVID, asking callers for
// their certificates.
func (g *Gateway) adminListener(ln net.Listener) (net.Listener, http.Handler, error) {
	if err := g.PrepareAdmin(); err != nil {
		return nil, nil, err
	}
	if g.adminAllowIDs {
		if g.opts.Identity == nil {
			return nil, nil, errors.New("admin allow_ids: the gateway has no identity (tls) to serve the admin API over TLS with")
		}
		ln = tls.NewListener(ln, identity.ServerConfig(g.opts.Identity, nil, identity.WithClientAuth(identity.RequestClientCert)))
	}
	return ln, g.adminAuth.Wrap(g.api.Handler()), nil
}

// AdminTokenFile is the file of the admin API's bearer token once
// PrepareAdmin has run, "" when it has none.
func (g *Gateway) AdminTokenFile() string {
	if g.adminAuth == nil {
		return ""
	}
	return g.adminAuth.TokenFile()
}

// serverTLS is the listener's mTLS config: any peer with an SVID the bundle
// verifies gets through the handshake (as tls.client_auth says); which peer
// may call which service is allow_peers' business, answered with a 403.
func (g *Gateway) serverTLS() (*tls.Config, error) {
	mode := "require"
	if cfg := g.Config(); cfg != nil && cfg.TLS != nil {
		mode = cfg.TLS.ClientAuth
	}
	auth, err := identity.ParseClientAuth(mode)
	if err != nil {
		return nil, err
	}
	return identity.ServerConfig(g.opts.Identity, nil, identity.WithClientAuth(auth)), nil
}

func (g *Gateway) drain(servers []server, stopGuests context.CancelCauseFunc) error {
	delay, timeout := config.DefaultDrainDelay, config.DefaultDrainTimeout
	if cfg := g.Config(); cfg != nil {
		delay, timeout = cfg.DrainDelay, cfg.DrainTimeout
	}
	g.plane.Drain()
	// Responses say Connection: close from now on (HTTP/2: a GOAWAY once a
	// connection's streams are done), so that clients on kept-alive
	// connections move to new ones during the delay rather than lose a
	// request sent as the listener's close takes their connection.
	for _, s := range servers {
		s.SetKeepAlivesEnabled(false)
	}
	g.log.Info("draining: /readyz now answers 503", "drain_delay", delay, "drain_timeout", timeout)
	time.Sleep(delay)

	g.log.Info("draining: no longer accepting connections")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := shutdown(ctx, servers)
	if errors.Is(err, context.DeadlineExceeded) {
		g.log.Warn("drain timeout: stopping the guests still running", "drain_timeout", timeout)
		stopGuests(dataplane.ErrDrainDeadline) // what the data plane tells from a client gone
		// Give handlers a moment to answer after their guests stop.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if shutdown(ctx, servers) != nil {
			for _, s := range servers {
				s.Close()
			}
			// The handlers whose connections that closed (a tunnel's, a
			// guest's that would not stop) return and log their requests.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			shutdown(ctx, servers)
			_ = g.plane.Idle(ctx) // HTTP/2's handlers, which net/http's Close does not wait for
		}
		err = nil
	}
	g.log.Info("drained")
	return err
}

// serveHTTP1 serves ln's HTTP/1 with http1 and hands h2 connections (h2c
// prior knowledge, or h2 by ALPN on TLS) to srv, which serves them on the
// same port; both report to errc.
func (g *Gateway) serveHTTP1(ln net.Listener, srv *http.Server, errc chan<- error) *http1.Server {
	h2 := newHandoff(ln.Addr())
	fast := &http1.Server{
		Handler:           g.plane,
		ReadHeaderTimeout: srv.ReadHeaderTimeout,
		IdleTimeout:       srv.IdleTimeout,
		BaseContext:       srv.BaseContext,
		ConnContext:       dataplane.WithConn,
		HTTP2:             h2.hand,
		Logger:            g.log,
		Refused:           g.plane.Refused,
	}
	if c := g.Config(); c != nil {
		lim := c.HTTP
		fast.MaxRequestLine, fast.MaxHeaderBytes, fast.MaxHeaders, fast.MaxHeadMemory = int(lim.MaxRequestLine), int(lim.MaxHeaderBytes), lim.MaxHeaders, int(lim.MaxHeadMemory)
		fast.SendTimeout = cmp.Or(lim.SendTimeout, config.DefaultSendTimeout) // as HTTP/2's
	}
	go func() { errc <- fast.Serve(ln) }()
	go func() { errc <- srv.Serve(h2) }()
	return fast
}

// server is what drain needs of net/http's and http1's servers.
type server interface {
	Shutdown(context.Context) error
	Close() error
	SetKeepAlivesEnabled(bool)
}

// shutdown shuts the servers down together and returns the first error.
func shutdown(ctx context.Context, servers []server) error {
	errs := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errs <- s.Shutdown(ctx) }()
	}
	var first error
	for range servers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// handoff is a listener of the connections http1 hands over (h2c), for
// net/http's server.
type handoff struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (h *handoff) hand(c net.Conn) {
	select {
	case h.ch <- c:
	case <-h.done:
		c.Close()
	}
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handoff) Addr() net.Addr { return h.addr }

// takingTurns is h for net/http's server: before an HTTP/1 request, the
// connection's goroutine takes its http1.Turn, as internal/http1 does
// between requests: it yields the processor if it has not for
// http1.TurnLength, so that under saturation connections take turns.
// Without it the scheduler keeps serving the goroutines of its local
// queues and rarely polls the network; connections whose next request has
// arrived are found by sysmon, every 10 ms, and put in the global queue,
// where they wait for tens of ms (golang/go#51651). HTTP/2 runs each
// stream in a goroutine of its own, and h on one of h2Workers. The
// connection's last turn is in its context (withTurns).
//
// What an HTTP/2 stream still buffers when h returns is written after it
// (net/http's), under the stream's flow control: a client that keeps its
// window shut would hold the stream and its goroutine for good. The
// stream's write deadline is set to send from then (http.send_timeout):
// the stream is reset if its last frames are not taken by then, and the
// deadline goes with the stream once it closes. That is safe because
// every h2 stream has its deadline's timer from its start
// (http.Server.WriteTimeout, dataplane.NoWriteDeadline) and it is never
// cleared, only moved: a deadline set after the stream closed (net/http
// applies it in the connection's goroutine, perhaps after the frame that
// ends the stream) finds the timer stopped and does nothing.
func takingTurns(h http.Handler, send time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := r.Context().Value(turnKey{}).(*http1.Turn); ok && r.ProtoMajor == 1 {
			t.Take(time.Now())
		} else if r.ProtoMajor == 2 {
			serveWarm(h, w, r)
			if d, ok := w.(h2Writer); ok {
				_ = d.SetWriteDeadline(time.Now().Add(send))
			}
			return
		}
		h.ServeHTTP(w, r)
	})
}

// h2Writer is what takingTurns needs of an HTTP/2 response writer.
type h2Writer interface {
	SetWriteDeadline(time.Time) error
}

// h2Workers run the HTTP/2 requests of all of the process's servers.
// HTTP/2 serves each stream on a goroutine of its own, whose stack starts
// small and was grown by doubling as the request's path went deeper (a
// guest's run, the host functions under it): three copies a request, each
// walking every frame, a third of the handler's CPU over h2. A kept
// goroutine's stack has grown already.
var h2Workers warm.Pool

// h2Call is a request for one of h2Workers, with the function that serves
// it made once: calls are kept in h2Calls, so that a request allocates
// none.
type h2Call struct {
	h   http.Handler
	w   http.ResponseWriter
	r   *http.Request
	run func()
}

var h2Calls = sync.Pool{New: func() any {
	c := &h2Call{}
	c.run = func() { c.h.ServeHTTP(c.w, c.r) }
	return c
}}

// serveWarm runs h for r on one of h2Workers and waits for it. A panic in
// h is raised again here, where net/http recovers it as its own handler's:
// http.ErrAbortHandler as it is, any other with the stack it was raised on.
func serveWarm(h http.Handler, w http.ResponseWriter, r *http.Request) {
	c := h2Calls.Get().(*h2Call)
	c.h, c.w, c.r = h, w, r
	p := h2Workers.Run(c.run)
	*c = h2Call{run: c.run}
	h2Calls.Put(c)
	if p != nil {
		p.Raise()
	}
}

type turnKey struct{}

// withTurns is dataplane.WithConn with the connection's last turn, for
// takingTurns: net/http's server runs an HTTP/1 connection's requests one
// after the other on its goroutine, so the record needs no lock.
func withTurns(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(dataplane.WithConn(ctx, c), turnKey{}, new(http1.Turn))
}
