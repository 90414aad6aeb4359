// Command client is a SPIFFE-aware stand-in for curl in the mTLS example.
// It presents an X.509-SVID read from PEM files and accepts the server only
// if the server's SVID verifies against the trust bundle and carries the
// expected SPIFFE ID.
//
// curl cannot make that check: it verifies the server's DNS name, and an SVID
// carries its identity as a URI SAN (spiffe://...) and no DNS name, so
// `curl --cacert bundle.pem` fails with "unable to obtain common name from
// peer certificate", and `curl -k` skips the server check altogether.
//
//	go run ./examples/mtls/client -certs examples/mtls/certs/alice \
//	    -expect spiffe://example.org/gateway/a 'https://127.0.0.1:8443/?do=env'
//
// It prints the server's SPIFFE ID, certificate serial and the status on
// stderr and the body on stdout. It exits 1 when the connection fails, and
// with -fail also when the status is 400 or more.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/wasmesh/wasmesh/identity"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run() error {
	certs := flag.String("certs", "", "directory holding "+identity.SVIDFile+", "+identity.KeyFile+" and "+identity.BundleFile+" (as `wasmesh ca issue --out` writes them)")
	svid := flag.String("svid", "", "PEM file of the client SVID (overrides -certs)")
	key := flag.String("key", "", "PEM file of the SVID's private key (overrides -certs)")
	bundle := flag.String("bundle", "", "PEM file of the trust bundle (overrides -certs)")
	expect := flag.String("expect", "", "SPIFFE ID the server must present (required)")
	fail := flag.Bool("fail", false, "exit 1 when the HTTP status is 400 or more")
	timeout := flag.Duration("timeout", 10*time.Second, "request timeout")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: client (-certs DIR | -svid F -key F -bundle F) -expect SPIFFE_ID [-fail] URL")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		return errors.New("want one URL")
	}
	files := identity.FilesIn(*certs)
	for _, f := range []struct {
		dst *string
		val string
	}{{&files.CertFile, *svid}, {&files.KeyFile, *key}, {&files.BundleFile, *bundle}} {
		if f.val != "" {
			*f.dst = f.val
		} else if *certs == "" {
			return errors.New("give -certs DIR, or -svid, -key and -bundle")
		}
	}
	serverID, err := spiffeid.FromString(*expect)
	if err != nil {
		return fmt.Errorf("-expect %q: %v", *expect, err)
	}

	files.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	src, err := identity.NewFileSource(files)
	if err != nil {
		return err
	}
	defer src.Close()
	me, err := src.Status()
	if err != nil {
		return err
	}

	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{
		TLSClientConfig:   identity.ClientConfig(src, serverID),
		ForceAttemptHTTP2: true,
	}}
	resp, err := client.Get(flag.Arg(0))
	if err != nil {
		return fmt.Errorf("as %s: %w", me.ID, err)
	}
	defer resp.Body.Close()
	peer, _ := identity.PeerID(resp.TLS)
	fmt.Fprintf(os.Stderr, "client %s -> server %s (serial %x, verified against %s): %s %s\n",
		me.ID, peer, resp.TLS.PeerCertificates[0].SerialNumber, filepath.Base(files.BundleFile), resp.Proto, resp.Status)
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		return err
	}
	if *fail && resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	return nil
}
