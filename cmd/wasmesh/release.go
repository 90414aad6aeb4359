package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/identity"
	adminapi "github.com/wasmesh/wasmesh/internal/admin"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/modules/oci"
)

// adminFlags are the flags that reach a running gateway's admin API.
type adminFlags struct {
	addr, tokenFile, svid, expectID, ca *string
	defaultTokenFile                    string // the token file looked for when none is named
}

// adminFlag registers --admin, the address of a running gateway's admin
// API, and how to authenticate to it: a bearer token ($WASMESH_ADMIN_TOKEN,
// else --admin-token-file) and/or an SVID for mTLS (--admin-svid).
func adminFlag(fs *flag.FlagSet) *adminFlags {
	def := os.Getenv("WASMESH_ADMIN")
	if def == "" {
		def = config.DefaultAdmin
	}
	tokenFile, defaultTokenFile := os.Getenv("WASMESH_ADMIN_TOKEN_FILE"), config.DefaultAdminTokenFile(modules.DefaultDir())
	if tokenFile == "" {
		tokenFile = defaultTokenFile
	}
	return &adminFlags{
		defaultTokenFile: defaultTokenFile,
		addr:             fs.String("admin", def, "admin API of the running gateway: $WASMESH_ADMIN when set, else "+config.DefaultAdmin),
		tokenFile: fs.String("admin-token-file", tokenFile, "file holding the admin API's bearer token (unless $WASMESH_ADMIN_TOKEN holds it): "+
			"$WASMESH_ADMIN_TOKEN_FILE, else $WASMESH_HOME/admin-token, else .wasmesh/admin-token: where a gateway writes the token it makes (beside its store)"),
		svid:     fs.String("admin-svid", "", "directory with an SVID (svid.pem, svid.key, bundle.pem, as wasmesh ca issue writes) for mTLS to the admin API"),
		expectID: fs.String("admin-id", "", "with --admin-svid or --admin-ca: the SPIFFE ID the gateway must present"),
		ca: fs.String("admin-ca", os.Getenv("WASMESH_ADMIN_CA"), "PEM file of the trust bundle that verifies an admin API served over TLS (admin allow_ids), "+
			"for a caller with a token and no SVID: $WASMESH_ADMIN_CA when set"),
	}
}

type adminClient struct {
	base  string
	http  *http.Client
	token string
	// tokenFile is where the token was looked for, for the error of a 401.
	tokenFile string
}

// readTimeout bounds an admin API read (GET); changes have the client's
// five minutes.
const readTimeout = 30 * time.Second

// client returns the client the flags describe: https with --admin-svid,
// with the token when there is one (a gateway without authentication
// needs none).
func (f *adminFlags) client() (*adminClient, error) {
	addr := *f.addr
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
		if *f.svid != "" || *f.ca != "" {
			addr = "https://" + *f.addr
		}
	}
	c := &adminClient{base: strings.TrimSuffix(addr, "/"), http: &http.Client{Timeout: 5 * time.Minute}, tokenFile: *f.tokenFile}
	if t := os.Getenv("WASMESH_ADMIN_TOKEN"); t != "" {
		c.token, c.tokenFile = strings.TrimSpace(t), ""
	} else if b, err := os.ReadFile(*f.tokenFile); err == nil {
		c.token = strings.TrimSpace(string(b))
	} else if *f.tokenFile != f.defaultTokenFile {
		// A file named (--admin-token-file, $WASMESH_ADMIN_TOKEN_FILE)
		// that cannot be read; the default one may well be absent (a
		// gateway without authentication).
		return nil, fmt.Errorf("--admin-token-file: %w", err)
	}
	if *f.svid != "" {
		files := identity.FilesIn(*f.svid)
		// A command's output is its answer: the SVID's loading is not news.
		files.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		src, err := identity.NewFileSource(files)
		if err != nil {
			return nil, fmt.Errorf("--admin-svid: %w", err)
		}
		var expect spiffeid.ID
		if *f.expectID != "" {
			if expect, err = spiffeid.FromString(*f.expectID); err != nil {
				return nil, fmt.Errorf("--admin-id: %w", err)
			}
		}
		var cfg *tls.Config
		if expect.IsZero() {
			cfg = identity.ClientConfigAuthorized(src, nil) // any gateway of the bundle's trust domain
		} else {
			cfg = identity.ClientConfig(src, expect)
		}
		c.http.Transport = &http.Transport{TLSClientConfig: cfg}
	} else if *f.ca != "" {
		cfg, err := bundleClientConfig(*f.ca, *f.expectID)
		if err != nil {
			return nil, fmt.Errorf("--admin-ca: %w", err)
		}
		c.http.Transport = &http.Transport{TLSClientConfig: cfg}
	}
	return c, nil
}

// bundleClientConfig verifies a gateway's SVID against the roots in the
// PEM file at path, as SPIFFE does (go-spiffe's tlsconfig): the chain, and
// a SPIFFE ID in the certificate (expect's, when given) instead of a host
// name, which an SVID does not hold. The caller presents no certificate.
func bundleClientConfig(path, expect string) (*tls.Config, error) {
	pemData, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	roots, err := x509bundle.Parse(spiffeid.TrustDomain{}, pemData)
	if err != nil || roots.Empty() {
		return nil, fmt.Errorf("%s holds no PEM certificate: %v", path, err)
	}
	authorize := tlsconfig.AuthorizeAny()
	if expect != "" {
		want, err := spiffeid.FromString(expect)
		if err != nil {
			return nil, fmt.Errorf("--admin-id: %w", err)
		}
		authorize = func(id spiffeid.ID, _ [][]*x509.Certificate) error {
			if id != want {
				return fmt.Errorf("the gateway presented %s, --admin-id wants %s", id, want)
			}
			return nil
		}
	}
	return tlsconfig.TLSClientConfig(anyTrustDomain{roots.X509Authorities()}, authorize), nil
}

// anyTrustDomain is an x509bundle.Source of the same roots for every trust
// domain: a bundle file says which authorities to trust, not for whom.
type anyTrustDomain struct{ roots []*x509.Certificate }

func (a anyTrustDomain) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return x509bundle.FromX509Authorities(td, a.roots), nil
}

// do sends a request and decodes a JSON answer into out, turning an error
// answer into an error.
func (c *adminClient) do(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	if method == http.MethodGet {
		// A read answers at once; one that does not (the address is not
		// a gateway's admin listener) is given up well before a change's
		// five minutes (a deploy may pull from a registry).
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("gateway admin API: %w (is the gateway running? --admin or $WASMESH_ADMIN names its admin listener, default %s)", err, config.DefaultAdmin)
		}
		return fmt.Errorf("gateway admin API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			if resp.StatusCode == http.StatusUnauthorized && c.tokenFile == "" {
				return fmt.Errorf("admin API: %s (the token sent was $WASMESH_ADMIN_TOKEN's; unset, the token file is read: a gateway that makes its own writes it to $WASMESH_HOME/admin-token, else .wasmesh/admin-token beside its config)", e.Error)
			}
			if resp.StatusCode == http.StatusUnauthorized {
				return fmt.Errorf("admin API: %s (token looked for in $WASMESH_ADMIN_TOKEN and %s; a gateway that makes its own writes it to $WASMESH_HOME/admin-token, else .wasmesh/admin-token beside its config)", e.Error, c.tokenFile)
			}
			return fmt.Errorf("%s", e.Error)
		}
		if resp.StatusCode == http.StatusBadRequest && strings.Contains(string(data), "HTTP request to an HTTPS server") {
			return fmt.Errorf("%s %s: %s: the admin listener at %s serves TLS (admin allow_ids): call https:// with --admin-svid, or with --admin-ca and a token", method, path, resp.Status, c.base)
		}
		if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/v1/config") {
			return fmt.Errorf("%s %s: %s (is %s a gateway's admin listener, not its traffic listener?)", method, path, resp.Status, c.base)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func (c *adminClient) release(ctx context.Context, service, op string, req any, stdout io.Writer) error {
	var body io.Reader = http.NoBody
	if req != nil {
		b, _ := json.Marshal(req)
		body = bytes.NewReader(b)
	}
	var st adminapi.ServiceStatus
	if err := c.do(ctx, "POST", "/v1/services/"+service+"/"+op, "application/json", body, &st); err != nil {
		return err
	}
	printServices(stdout, []adminapi.ServiceStatus{st})
	return nil
}

// deployCmd uploads a file (or names a stored digest or an oci:// artifact,
// which the gateway pulls) and gives it a weight.
func deployCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("deploy", "SERVICE FILE.wasm|DIGEST|NAME|oci://REF [--weight N]")
	admin := adminFlag(fs)
	weight := fs.Int("weight", 10, "percentage of the service's traffic for the new version; the others scale down")
	name := fs.String("name", "", "label for the version (can pin it)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("want: wasmesh deploy SERVICE FILE.wasm|DIGEST|NAME|oci://REF --weight N")
	}
	if *weight < 0 || *weight > 100 { // refused before anything is uploaded
		return usageError("--weight %d: want a percentage, 0 to 100", *weight)
	}
	c, err := admin.client()
	if err != nil {
		return err
	}
	ref := pos[1]
	if wasm, err := modules.ReadFile(ref); err == nil {
		if err := modules.Check(wasm); err != nil { // as run and artifact push refuse it: a usage error
			return exitWith(2, fmt.Errorf("%s: %w; nothing uploaded", ref, err))
		}
		// The service first: a name mistyped is said before anything is
		// uploaded.
		var services []adminapi.ServiceStatus
		if err := c.do(ctx, "GET", "/v1/services", "", nil, &services); err != nil {
			return err
		}
		names := make([]string, len(services))
		for i, s := range services {
			names[i] = s.Name
		}
		if !slices.Contains(names, pos[0]) {
			return fmt.Errorf("no service %q in the gateway (its services: %s); nothing uploaded", pos[0], strings.Join(names, ", "))
		}
		// A release of the service refuses the deploy: said before the
		// upload too.
		var releases []struct{ Service, Phase, Candidate string }
		if err := c.do(ctx, "GET", "/v1/releases", "", nil, &releases); err == nil {
			for _, r := range releases {
				if r.Service == pos[0] && (r.Phase == "running" || r.Phase == "paused") {
					return fmt.Errorf("service %q has a release %s (candidate %.19s); abort it first; nothing uploaded", pos[0], r.Phase, r.Candidate)
				}
			}
		}
		var up struct{ Digest string }
		if err := c.do(ctx, "POST", "/v1/artifacts", "application/wasm", bytes.NewReader(wasm), &up); err != nil {
			return fmt.Errorf("upload %s: %w", ref, err)
		}
		ref = up.Digest
		fmt.Fprintf(stdout, "pushed %s\n", ref)
	} else if !modules.IsDigest(ref) && !oci.IsReference(ref) && !versionName(ref, err) {
		return exitWith(2, unwrapOpen(ref, err))
	} else if oci.IsReference(ref) {
		if _, err := oci.ParseReference(ref); err != nil {
			return exitWith(2, err)
		}
	}
	return c.release(ctx, pos[0], "deploy", adminapi.ReleaseRequest{Module: ref, Weight: *weight, Name: *name}, stdout)
}

// versionName reports whether ref, which no file has (err), may be the
// name of a version the service has (the admin API takes one as its
// digest): no path, no .wasm.
func versionName(ref string, err error) bool {
	return errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(ref, `/\`) && !strings.HasSuffix(ref, ".wasm")
}

func promoteCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("promote", "SERVICE DIGEST|NAME")
	admin := adminFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("want: wasmesh promote SERVICE DIGEST|NAME")
	}
	c, err := admin.client()
	if err != nil {
		return err
	}
	return c.release(ctx, pos[0], "promote", adminapi.ReleaseRequest{Module: pos[1]}, stdout)
}

func rollbackCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("rollback", "SERVICE")
	admin := adminFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("want: wasmesh rollback SERVICE")
	}
	c, err := admin.client()
	if err != nil {
		return err
	}
	return c.release(ctx, pos[0], "rollback", nil, stdout)
}

// readerCmd parses the flags of a command that reads the admin API and
// prints a table or JSON (-o), and returns its client and output format.
func readerCmd(name string, args []string) (*adminClient, string, error) {
	fs := newFlags(name, "[-o table|json]")
	admin := adminFlag(fs)
	output := outputFlag(fs, "table", "json")
	pos, err := parse(fs, args)
	if err != nil {
		return nil, "", err
	}
	if len(pos) > 0 {
		return nil, "", usageError("no arguments wanted, got %q", pos)
	}
	c, err := admin.client()
	return c, *output, err
}

func statusCmd(ctx context.Context, args []string, stdout io.Writer) error {
	c, output, err := readerCmd("status", args)
	if err != nil {
		return err
	}
	var cfg adminapi.ConfigStatus
	if err := c.do(ctx, "GET", "/v1/config", "", nil, &cfg); err != nil {
		return err
	}
	var services []adminapi.ServiceStatus
	if err := c.do(ctx, "GET", "/v1/services", "", nil, &services); err != nil {
		return err
	}
	if output == "json" {
		return writeJSON(stdout, map[string]any{"config": cfg, "services": services})
	}
	fmt.Fprintf(stdout, "config %s, generation %d", cfg.File, cfg.Generation)
	if cfg.Draining {
		fmt.Fprint(stdout, ", DRAINING")
	}
	fmt.Fprintln(stdout)
	if cfg.LastError != "" {
		fmt.Fprintf(stdout, "last reload FAILED at %s (the previous config is serving):\n  %s\n",
			cfg.LastErrAt.Local().Format(time.DateTime), strings.ReplaceAll(cfg.LastError, "\n", "\n  "))
	}
	printServices(stdout, services)
	return nil
}

func printServices(w io.Writer, services []adminapi.ServiceStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tVERSION\tNAME\tWEIGHT\tREQUESTS\tERRORS")
	for _, s := range services {
		for _, v := range s.Versions {
			fmt.Fprintf(tw, "%s\tsha256:%s\t%s\t%d%%\t%d\t%d\n", s.Name, modules.Short(v.Digest), dash(v.Name), v.Weight, v.Requests, v.Errors)
		}
	}
	tw.Flush()
}

// coloursCmd prints a running gateway's colour table with live counters.
func coloursCmd(ctx context.Context, args []string, stdout io.Writer) error {
	c, output, err := readerCmd("colours", args)
	if err != nil {
		return err
	}
	var cs adminapi.ColoursStatus
	if err := c.do(ctx, "GET", "/v1/colours", "", nil, &cs); err != nil {
		return err
	}
	if output == "json" {
		return writeJSON(stdout, cs)
	}
	fmt.Fprintf(stdout, "mode %s: %s\n", cs.Mode, cs.Reason)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COLOUR\tSERVICE\tVERSION\tDSCP\tOUT PKTS\tOUT BYTES\tIN PKTS\tIN BYTES")
	for _, c := range cs.Colours {
		fmt.Fprintf(tw, "%d\t%s\tsha256:%s\t%d\t%d\t%d\t%d\t%d\n", c.Colour, c.Service, modules.Short(c.Version), c.DSCP,
			c.EgressPackets, c.EgressBytes, c.IngressPackets, c.IngressBytes)
	}
	return tw.Flush()
}
