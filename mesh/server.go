package mesh

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/router"
)

// Watch reloads the config whenever its file changes, until ctx is done.
// See router.Watch for what counts as a change.
func (g *Gateway) Watch(ctx context.Context) error {
	return router.Watch(ctx, g.opts.ConfigPath, 0, func(data []byte) {
		_ = g.Reload(ctx, data) // failures are logged and kept for /v1/config
	}, func(err error) {
		g.log.Warn("watching the config file", "file", g.opts.ConfigPath, "error", err)
	})
}

// Serve serves the gateway on ln and, when admin is not nil, the admin API
// on admin, until ctx is done. Then it drains, as a load balancer expects:
//
//  1. /readyz answers 503 at once, while requests are still served;
//  2. after the config's drain_delay, the listener closes: new connections
//     are refused;
//  3. requests in flight get up to drain_timeout to finish;
//  4. guests still running then are stopped through their context.
//
// Serve returns nil after a complete drain, or the error that stopped a
// listener.
func (g *Gateway) Serve(ctx context.Context, ln, admin net.Listener) error {
	guests, stopGuests := context.WithCancel(context.Background())
	defer stopGuests()
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return guests },
		ConnContext:       withConn,
		ConnState:         g.forgetConn,
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	errc := make(chan error, 2)
	if g.opts.Identity != nil {
		tlsCfg, err := g.serverTLS()
		if err != nil {
			return err
		}
		srv.TLSConfig = tlsCfg
		srv.Protocols.SetHTTP2(true)
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true) // h2c, for gRPC-style clients and benchmarks
		go func() { errc <- srv.Serve(ln) }()
	}

	var adminSrv *http.Server
	if admin != nil {
		adminSrv = &http.Server{Handler: g.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- adminSrv.Serve(admin) }()
	}

	select {
	case err := <-errc:
		srv.Close()
		if adminSrv != nil {
			adminSrv.Close()
		}
		return err
	case <-ctx.Done():
	}
	err := g.drain(srv, stopGuests)
	if adminSrv != nil {
		adminSrv.Close()
	}
	return err
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

func (g *Gateway) drain(srv *http.Server, stopGuests context.CancelFunc) error {
	delay, timeout := router.DefaultDrainDelay, router.DefaultDrainTimeout
	if cfg := g.Config(); cfg != nil {
		delay, timeout = cfg.DrainDelay, cfg.DrainTimeout
	}
	g.draining.Store(true)
	g.metrics.draining.Set(1)
	g.log.Info("draining: /readyz now answers 503", "drain_delay", delay, "drain_timeout", timeout)
	time.Sleep(delay)

	g.log.Info("draining: no longer accepting connections")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		g.log.Warn("drain timeout: stopping the guests still running", "drain_timeout", timeout)
		stopGuests()
		// Give handlers a moment to answer after their guests stop.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		err = nil
	}
	g.log.Info("drained")
	return err
}
