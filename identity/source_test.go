package identity

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/wasmesh/wasmesh/internal/testca"
)

func TestStatusExpiring(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := Status{ID: spiffeid.RequireFromString(serverID), Serial: big.NewInt(0x1f), NotBefore: start, NotAfter: start.Add(90 * time.Minute)}
	if st.Lifetime() != 90*time.Minute || !st.WarnAt().Equal(start.Add(time.Hour)) {
		t.Errorf("Lifetime %v, WarnAt %v; want 90m and an hour in", st.Lifetime(), st.WarnAt())
	}
	for at, want := range map[time.Duration]bool{0: false, 59 * time.Minute: false, time.Hour: true, 2 * time.Hour: true} {
		if got := st.Expiring(start.Add(at)); got != want {
			t.Errorf("Expiring %v in = %v; want %v", at, got, want)
		}
	}
	if got, want := st.String(), "spiffe://example.org/server (serial 1f, expires 2026-01-01T01:30:00Z)"; got != want {
		t.Errorf("String = %q; want %q", got, want)
	}
}

// TestWatchMilestones: Watch reports an SVID that is not replaced again when
// it enters the last third of its lifetime and when it expires.
func TestWatchMilestones(t *testing.T) {
	ca := testca.New(t, "example.org")
	// X.509 times are whole seconds; warnAt (now) at least a second away,
	// so that Watch has begun before it.
	now := time.Now().Truncate(time.Second).Add(2 * time.Second)
	svid := ca.SVID(serverID, testca.Validity(now.Add(-2*time.Second), now.Add(1*time.Second)))
	src, _ := memSource(t, svid, ca.Bundle())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type call struct {
		at       time.Time
		expiring bool
	}
	calls := make(chan call, 8)
	done := make(chan struct{})
	go func() {
		src.Watch(ctx, func(st Status) { calls <- call{time.Now(), st.Expiring(time.Now())} })
		close(done)
	}()
	warnAt := now // lifetime 3s: a third left at NotAfter - 1s
	notAfter := now.Add(time.Second)
	for i, want := range []time.Time{{}, warnAt, notAfter} {
		select {
		case c := <-calls:
			if i > 0 && (c.at.Before(want) || !c.expiring) {
				t.Errorf("call %d at %v, expiring %v; want at or after %v, expiring", i, c.at, c.expiring, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no call %d", i)
		}
	}
	select {
	case c := <-calls:
		t.Errorf("a call after expiry, at %v", c.at)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return when its context was done")
	}
}
