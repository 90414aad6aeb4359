package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/wasmesh/wasmesh/identity"
)

// caCmd is `wasmesh ca init|issue`: the development CA.
func caCmd(ctx context.Context, args []string, stdout io.Writer) error {
	subs := map[string]func(context.Context, []string, io.Writer) error{"init": caInit, "issue": caIssue}
	return subcommands(ctx, "ca", "", []string{"init", "issue"}, subs, args, stdout)
}

// caDirFlag registers --dir, the CA directory.
func caDirFlag(fs *flag.FlagSet) *string {
	return fs.String("dir", identity.DefaultCADir(), "CA directory: $WASMESH_HOME/ca when WASMESH_HOME is set, else .wasmesh/ca")
}

func caInit(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("ca init", "--trust-domain DOMAIN [--dir DIR]")
	trustDomain := fs.String("trust-domain", "", "trust domain of the CA, such as example.org (required)")
	dir := caDirFlag(fs)
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	if *trustDomain == "" {
		return usageError("no --trust-domain given: wasmesh ca init --trust-domain example.org")
	}
	td, err := spiffeid.TrustDomainFromString(*trustDomain)
	if err != nil {
		return usageError("--trust-domain %q: %v", *trustDomain, err)
	}
	ca, err := identity.InitCA(*dir, td)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s: CA of trust domain %s, %s, expires %s\n",
		filepath.Join(*dir, identity.CACertFile), filepath.Join(*dir, identity.CAKeyFile), td.Name(),
		identity.Fingerprint(ca.Certificate()), ca.Certificate().NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func caIssue(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("ca issue", "SPIFFE_ID --out DIR [--ttl 1h] [--dir DIR]")
	out := fs.String("out", "", "directory to write "+identity.SVIDFile+", "+identity.KeyFile+" (mode 0600) and "+identity.BundleFile+" into (required)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the SVID")
	dir := caDirFlag(fs)
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) != 1:
		return usageError("want one SPIFFE ID: wasmesh ca issue spiffe://example.org/ns/dev/sa/web --out DIR")
	case *out == "":
		return usageError("no --out directory given")
	case *ttl <= 0:
		return usageError("--ttl %v: want more than 0", *ttl)
	}
	id, err := spiffeid.FromString(rest[0])
	if err != nil {
		return usageError("SPIFFE ID %q: %v", rest[0], err)
	}
	ca, err := identity.LoadCA(*dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w (create a CA with: wasmesh ca init --trust-domain %s --dir %s)", err, id.TrustDomain().Name(), *dir)
	}
	if err != nil {
		return err
	}
	svid, err := ca.Issue(id, *ttl)
	if err != nil {
		return err
	}
	if err := identity.WriteFiles(*out, svid, ca.Bundle()); err != nil {
		return err
	}
	leaf := svid.Certificates[0]
	fmt.Fprintf(stdout, "wrote %s, %s and %s: %s, serial %x, expires %s\n",
		filepath.Join(*out, identity.SVIDFile), filepath.Join(*out, identity.KeyFile), filepath.Join(*out, identity.BundleFile),
		id, leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// identityCmd is `wasmesh identity`: print the SVID a source serves now.
func identityCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("identity", "[--spiffe-socket ADDR | --svid FILE --key FILE --bundle FILE] [-o json]")
	socket := fs.String("spiffe-socket", "", "Workload API address, such as unix:///run/spire/agent.sock (default $"+workloadapi.SocketEnv+")")
	svidFile := fs.String("svid", "", "PEM file of the SVID and its intermediates")
	keyFile := fs.String("key", "", "PEM file of the SVID's private key")
	bundleFile := fs.String("bundle", "", "PEM file of the trust bundle")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the Workload API")
	output := outputFlag(fs, "text", "json")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var src *identity.Source
	switch files := *svidFile != "" || *keyFile != "" || *bundleFile != ""; {
	case files && *socket != "":
		return usageError("give --spiffe-socket or --svid, --key and --bundle, not both")
	case files && (*svidFile == "" || *keyFile == "" || *bundleFile == ""):
		return usageError("--svid, --key and --bundle go together")
	case files:
		src, err = identity.NewFileSource(identity.FileOptions{CertFile: *svidFile, KeyFile: *keyFile, BundleFile: *bundleFile, Logger: quiet})
	case *socket == "" && os.Getenv(workloadapi.SocketEnv) == "":
		return usageError("no identity source: give --spiffe-socket (or set %s), or --svid, --key and --bundle", workloadapi.SocketEnv)
	default:
		wctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		src, err = identity.NewWorkloadSource(wctx, identity.WorkloadOptions{Addr: *socket, Logger: quiet})
	}
	if err != nil {
		return err
	}
	defer src.Close()
	rep, err := reportIdentity(src, time.Now())
	if err != nil {
		return err
	}
	if *output == "json" {
		err = writeJSON(stdout, rep)
	} else {
		rep.writeText(stdout)
	}
	if err == nil && rep.Expired {
		return exitWith(1, errors.New("the SVID has expired"))
	}
	return err
}

type identityReport struct {
	SPIFFEID  string    `json:"spiffe_id"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Expiring  bool      `json:"expiring"` // less than a third of the lifetime left
	Expired   bool      `json:"expired"`
	Bundle    struct {
		TrustDomain string        `json:"trust_domain"`
		CAs         []caReportRow `json:"cas"`
	} `json:"bundle"`
	remaining time.Duration
}

type caReportRow struct {
	Fingerprint string    `json:"fingerprint"`
	Subject     string    `json:"subject"`
	NotAfter    time.Time `json:"not_after"`
}

func reportIdentity(src *identity.Source, now time.Time) (*identityReport, error) {
	st, err := src.Status()
	if err != nil {
		return nil, err
	}
	bundle, err := src.GetX509BundleForTrustDomain(st.ID.TrustDomain())
	if err != nil {
		return nil, err
	}
	rep := &identityReport{
		SPIFFEID: st.ID.String(), Serial: fmt.Sprintf("%x", st.Serial),
		NotBefore: st.NotBefore.UTC(), NotAfter: st.NotAfter.UTC(),
		Expiring: st.Expiring(now), Expired: now.After(st.NotAfter), remaining: st.NotAfter.Sub(now),
	}
	rep.Bundle.TrustDomain = bundle.TrustDomain().Name()
	for _, c := range bundle.X509Authorities() {
		rep.Bundle.CAs = append(rep.Bundle.CAs, caReportRow{Fingerprint: identity.Fingerprint(c), Subject: c.Subject.String(), NotAfter: c.NotAfter.UTC()})
	}
	return rep, nil
}

func (r *identityReport) writeText(w io.Writer) {
	when := fmt.Sprintf("in %s", r.remaining.Round(time.Second))
	switch {
	case r.Expired:
		when = "expired"
	case r.Expiring:
		when += "; less than a third of its lifetime left, so it should have been rotated"
	}
	fmt.Fprintf(w, "SPIFFE ID   %s\n", r.SPIFFEID)
	fmt.Fprintf(w, "Serial      %s\n", r.Serial)
	fmt.Fprintf(w, "Not before  %s\n", r.NotBefore.Format(time.RFC3339))
	fmt.Fprintf(w, "Not after   %s (%s)\n", r.NotAfter.Format(time.RFC3339), when)
	fmt.Fprintf(w, "Bundle      %s, %d CA(s)\n", r.Bundle.TrustDomain, len(r.Bundle.CAs))
	for _, c := range r.Bundle.CAs {
		fmt.Fprintf(w, "  %s  %s (expires %s)\n", c.Fingerprint, c.Subject, c.NotAfter.Format(time.RFC3339))
	}
}
