package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// X509Source is what ServerConfig and ClientConfig need: the SVID to present
// and the bundles to verify peers against. *Source and go-spiffe's
// *workloadapi.X509Source implement it.
type X509Source interface {
	x509svid.Source
	x509bundle.Source
}

var (
	_ X509Source = (*Source)(nil)
	_ X509Source = (*workloadapi.X509Source)(nil)
)

// ErrClosed is returned by a Source's getters after Close.
var ErrClosed = errors.New("identity source is closed")

// Source is an X.509 identity that may rotate: an SVID and the trust bundles
// to verify peers with, from the Workload API (NewWorkloadSource), PEM files
// (NewFileSource) or the development CA (CA.NewSource).
//
// Every TLS handshake reads the current SVID and bundles, so a rotation takes
// effect for the next handshake; established connections keep the
// certificates they were made with. A Source is safe for concurrent use.
type Source struct {
	svids   x509svid.Source
	bundles x509bundle.Source
	stop    func() error // releases what the constructor started
	log     *slog.Logger
	onError func(error)

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every update, and on Close
	lastErr error
}

func newSource(log *slog.Logger, onError func(error)) *Source {
	if log == nil {
		log = slog.Default()
	}
	return &Source{log: log, onError: onError, changed: make(chan struct{}), stop: func() error { return nil }}
}

// GetX509SVID returns the current SVID. It implements x509svid.Source.
func (s *Source) GetX509SVID() (*x509svid.SVID, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.svids.GetX509SVID()
}

// GetX509BundleForTrustDomain returns the current bundle of td. It implements
// x509bundle.Source.
func (s *Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.bundles.GetX509BundleForTrustDomain(td)
}

// Close stops watching for updates. Handshakes that need the source fail
// afterwards. Close is idempotent.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = s.stop()
		s.notify()
	})
	return s.closeErr
}

// Err is the error of the last failed update (a file that does not parse, a
// Workload API that went away), or nil when the last update succeeded. The
// source keeps serving its last good identity meanwhile.
func (s *Source) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Status describes the SVID a Source serves now.
func (s *Source) Status() (Status, error) {
	svid, err := s.GetX509SVID()
	if err != nil {
		return Status{}, err
	}
	return statusOf(svid), nil
}

// Expiry is when the current SVID expires; the zero time after Close.
func (s *Source) Expiry() time.Time {
	st, err := s.Status()
	if err != nil {
		return time.Time{}
	}
	return st.NotAfter
}

// Watch calls fn with the current Status at once, again after every update,
// and when the current SVID reaches Status.WarnAt and Status.NotAfter
// without having been replaced — so fn can set an expiry metric and warn
// when st.Expiring(time.Now()). It returns when ctx is done or the source is
// closed; run it in its own goroutine. fn is called from that goroutine only.
func (s *Source) Watch(ctx context.Context, fn func(Status)) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		changed := s.changedChan()
		st, err := s.Status()
		if errors.Is(err, ErrClosed) {
			return
		}
		if err == nil {
			fn(st)
		}
		for waiting := true; waiting; {
			var wake <-chan time.Time
			if at, ok := st.nextMilestone(time.Now()); err == nil && ok {
				timer.Reset(time.Until(at))
				wake = timer.C
			}
			select {
			case <-ctx.Done():
				return
			case <-changed:
				timer.Stop()
				waiting = false
			case <-wake:
				fn(st)
			}
		}
	}
}

func (s *Source) changedChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// updated records a successful update and wakes the watchers.
func (s *Source) updated() {
	s.mu.Lock()
	s.lastErr = nil
	s.mu.Unlock()
	s.notify()
}

func (s *Source) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
}

// report records and logs a failed update.
func (s *Source) report(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
	s.log.Error("identity update failed; keeping the current SVID", "error", err)
	if s.onError != nil {
		s.onError(err)
	}
}

// Status describes one SVID.
type Status struct {
	ID        spiffeid.ID
	Serial    *big.Int
	NotBefore time.Time
	NotAfter  time.Time
}

func statusOf(svid *x509svid.SVID) Status {
	leaf := svid.Certificates[0]
	return Status{ID: svid.ID, Serial: new(big.Int).Set(leaf.SerialNumber), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}
}

// Lifetime is NotAfter - NotBefore.
func (st Status) Lifetime() time.Duration { return st.NotAfter.Sub(st.NotBefore) }

// WarnAt is when less than a third of the SVID's lifetime remains: by then a
// healthy issuer has rotated it (SPIRE does at half-life).
func (st Status) WarnAt() time.Time { return st.NotAfter.Add(-st.Lifetime() / 3) }

// Expiring reports whether at now less than a third of the lifetime remains
// (or the SVID has expired).
func (st Status) Expiring(now time.Time) bool { return !now.Before(st.WarnAt()) }

// String is "spiffe://example.org/web (serial 1f…, expires 2026-05-01T10:00:00Z)".
func (st Status) String() string {
	return fmt.Sprintf("%s (serial %x, expires %s)", st.ID, st.Serial, st.NotAfter.UTC().Format(time.RFC3339))
}

// nextMilestone is the first of WarnAt and NotAfter after now.
func (st Status) nextMilestone(now time.Time) (time.Time, bool) {
	for _, at := range []time.Time{st.WarnAt(), st.NotAfter} {
		if now.Before(at) {
			return at, true
		}
	}
	return time.Time{}, false
}

// snapshot is one immutable SVID with the bundles that go with it.
type snapshot struct {
	svid    *x509svid.SVID
	bundles *x509bundle.Set
}

// store holds the current snapshot of a file or CA source.
type store struct{ cur atomic.Pointer[snapshot] }

func (st *store) GetX509SVID() (*x509svid.SVID, error) {
	return st.cur.Load().svid, nil
}

func (st *store) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return st.cur.Load().bundles.GetX509BundleForTrustDomain(td)
}
