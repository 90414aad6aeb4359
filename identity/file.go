package identity

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Names of the files WriteFiles writes and FilesIn expects.
const (
	SVIDFile   = "svid.pem"
	KeyFile    = "svid.key"
	BundleFile = "bundle.pem"
)

// FileOptions configure NewFileSource.
type FileOptions struct {
	// CertFile holds the SVID: PEM certificates, leaf first, then any
	// intermediates.
	CertFile string
	// KeyFile holds the SVID's private key: PEM, PKCS#8 ("PRIVATE KEY"),
	// SEC 1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY").
	KeyFile string
	// BundleFile holds the trust bundle: the PEM CA certificates of the SVID's
	// trust domain. Peers of other trust domains are not trusted.
	BundleFile string
	// Debounce is how long the files must be quiet after a change before they
	// are read again. Default 100ms.
	Debounce time.Duration
	// Logger receives rotations and failed updates. Default slog.Default().
	Logger *slog.Logger
	// OnError, when set, is also called with each failed update.
	OnError func(error)
}

// FilesIn returns the options for the files WriteFiles writes into dir.
func FilesIn(dir string) FileOptions {
	return FileOptions{
		CertFile:   filepath.Join(dir, SVIDFile),
		KeyFile:    filepath.Join(dir, KeyFile),
		BundleFile: filepath.Join(dir, BundleFile),
	}
}

// NewFileSource returns a Source that serves the SVID and bundle in PEM files
// and reloads them when they change, as cert-manager's csi-driver-spiffe, a
// Kubernetes Secret volume or `wasmesh ca issue` replace them.
//
// It watches the files' directories rather than the files, so replacing a
// file by rename and Kubernetes' swap of the "..data" symlink are seen. An
// update is used only if the certificate and key match, the chain verifies
// against the bundle and the SVID has not expired; otherwise the source keeps
// the identity it has, logs the error, calls OnError and reports it in Err. An
// SVID that is not valid yet is put in service when it becomes valid.
//
// NewFileSource fails unless the files hold such an identity at the start.
func NewFileSource(opts FileOptions) (*Source, error) {
	if opts.CertFile == "" || opts.KeyFile == "" || opts.BundleFile == "" {
		return nil, errors.New("file source needs a certificate, a key and a bundle file")
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	s := newSource(opts.Logger, opts.OnError)
	fs := &fileSource{opts: opts, src: s}
	s.svids, s.bundles = &fs.store, &fs.store
	if nb, err := fs.load(); err != nil {
		if !nb.IsZero() { // no identity to start with until then (a clock behind, a certificate issued for later)
			return nil, fmt.Errorf("%s: the SVID is not valid until %s: no identity to start with", opts.CertFile, nb.UTC().Format(time.RFC3339))
		}
		return nil, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching the SVID files: %w", err)
	}
	for _, dir := range fs.dirs() {
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, fmt.Errorf("watching %s: %w", dir, err)
		}
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		fs.run(w, done)
	}()
	s.stop = func() error {
		close(done)
		<-stopped
		return w.Close()
	}
	return s, nil
}

type fileSource struct {
	opts  FileOptions
	src   *Source
	store store
	sum   [sha256.Size]byte // of the files in service
}

func (fs *fileSource) paths() []string {
	return []string{fs.opts.CertFile, fs.opts.KeyFile, fs.opts.BundleFile}
}

func (fs *fileSource) dirs() []string {
	var dirs []string
	seen := map[string]bool{}
	for _, p := range fs.paths() {
		if d := filepath.Dir(p); !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// relevant reports whether ev may change one of the files: an event for the
// file's name, or for a "..data" symlink it may point through.
func (fs *fileSource) relevant(ev fsnotify.Event) bool {
	base := filepath.Base(ev.Name)
	if base == "..data" {
		return true
	}
	for _, p := range fs.paths() {
		if base == filepath.Base(p) {
			return true
		}
	}
	return false
}

// run reloads the files after each burst of events, and when an SVID that
// was not valid yet becomes valid.
func (fs *fileSource) run(w *fsnotify.Watcher, done <-chan struct{}) {
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer debounce.Stop()
	defer retry.Stop()
	reload := func() {
		retryAt, err := fs.load()
		if err != nil {
			fs.src.report(err)
		}
		if !retryAt.IsZero() {
			retry.Reset(time.Until(retryAt))
		}
	}
	for {
		select {
		case <-done:
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if fs.relevant(ev) {
				debounce.Reset(fs.opts.Debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			fs.src.report(fmt.Errorf("watching the SVID files: %w", err))
		case <-debounce.C:
			reload()
		case <-retry.C:
			reload()
		}
	}
}

// load reads the files and, if they changed and hold a good identity, puts it
// in service. For an SVID that is not valid yet it returns when to try again.
func (fs *fileSource) load() (retryAt time.Time, err error) {
	var data [3][]byte
	h := sha256.New()
	for i, p := range fs.paths() {
		if data[i], err = os.ReadFile(p); err != nil {
			return time.Time{}, err
		}
		h.Write(data[i])
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if fs.store.cur.Load() != nil && sum == fs.sum {
		return time.Time{}, nil
	}
	snap, err := parseFiles(fs.opts, data[0], data[1], data[2])
	if err != nil {
		return time.Time{}, err
	}
	if nb := snap.svid.Certificates[0].NotBefore; time.Now().Before(nb) {
		return nb, fmt.Errorf("%s: the SVID is not valid until %s; will load it then",
			fs.opts.CertFile, nb.UTC().Format(time.RFC3339))
	}
	fs.store.cur.Store(snap)
	fs.sum = sum
	fs.src.log.Info("identity loaded", "svid", statusOf(snap.svid).String(), "file", fs.opts.CertFile)
	fs.src.updated()
	return time.Time{}, nil
}

// parseFiles checks an SVID, key and bundle and pairs them.
func parseFiles(opts FileOptions, certPEM, keyPEM, bundlePEM []byte) (*snapshot, error) {
	svid, err := parseSVID(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", opts.CertFile, opts.KeyFile, err)
	}
	td := svid.ID.TrustDomain()
	bundles, skipped, err := parseBundles(td, bundlePEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.BundleFile, err)
	}
	for _, why := range skipped {
		cmp.Or(opts.Logger, slog.Default()).Warn("trust bundle: a CA certificate left out", "file", opts.BundleFile, "why", why)
	}
	bundle, _ := bundles.Get(td)
	if bundle == nil || bundle.Empty() {
		return nil, fmt.Errorf("%s: no CA certificates for the SVID's trust domain %s", opts.BundleFile, td)
	}
	if err := checkChain(svid, bundle, time.Now()); err != nil {
		return nil, fmt.Errorf("%s: %w", opts.CertFile, err)
	}
	return &snapshot{svid: svid, bundles: bundles}, nil
}

// parseBundles sorts the CA certificates of a bundle file by trust
// domain: one whose URI SAN names a trust domain (spiffe://partner.org,
// as `wasmesh ca init` makes them) is an authority for that one only, a
// federated domain's root; one that names none, for own, the SVID's. So a
// partner's CA appended to the file lets its peers in (as allow_peers
// says) but mints none of the gateway's own identities. One whose
// spiffe:// URI SAN is no trust domain is left out, trusted for none,
// and said in skipped.
func parseBundles(own spiffeid.TrustDomain, data []byte) (set *x509bundle.Set, skipped []string, err error) {
	ders, err := parseCertsPEM(data)
	if errors.Is(err, errNoCertificates) {
		return nil, nil, errors.New("no CA certificates")
	}
	if err != nil {
		return nil, nil, err
	}
	set = x509bundle.NewSet()
certs:
	for i, der := range ders {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate %d: %w", i+1, err)
		}
		td := own
		for _, u := range cert.URIs {
			if u.Scheme != "spiffe" {
				continue
			}
			if td, err = spiffeid.TrustDomainFromURI(u); err != nil {
				skipped = append(skipped, fmt.Sprintf("certificate %d (%s): URI SAN %q: %v", i+1, cert.Subject, u, err))
				continue certs
			}
			break
		}
		b, ok := set.Get(td)
		if !ok {
			b = x509bundle.New(td)
			set.Add(b)
		}
		b.AddX509Authority(cert)
	}
	return set, skipped, nil
}

// checkChain verifies the SVID against bundle, failing if it has expired but
// not if it is only not valid yet.
func checkChain(svid *x509svid.SVID, bundle *x509bundle.Bundle, now time.Time) error {
	leaf := svid.Certificates[0]
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("the SVID expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	at := now
	if at.Before(leaf.NotBefore) {
		at = leaf.NotBefore
	}
	if _, _, err := x509svid.Verify(svid.Certificates, bundle, x509svid.WithTime(at)); err != nil {
		return fmt.Errorf("the SVID does not verify against the bundle: %w", err)
	}
	return nil
}

// parseSVID parses PEM certificates and a PEM key in any of the usual
// encodings (x509svid.Parse takes only PKCS#8).
func parseSVID(certPEM, keyPEM []byte) (*x509svid.SVID, error) {
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	return x509svid.ParseRaw(bytes.Join(certs, nil), key)
}
