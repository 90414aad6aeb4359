package router

import (
	"errors"
	"fmt"
	"github.com/wasmesh/wasmesh/config"
	"math"
	"net/http"
	"strings"
	"testing"
)

// service parses a single service "s" with the given versions (YAML list
// items) and extra fields, and resolves it with fakeDigest.
func service(t *testing.T, versions, extra string) *config.Service {
	t.Helper()
	tab := mustTable(t, "services:\n  s:\n    versions:"+versions+"\n"+extra)
	return tab.Config().Services["s"]
}

const stableCanary = `
      - {module: sha256:4f9c0a1b, weight: 90, name: stable}
      - {path: canary.wasm, weight: 10, name: canary}`

func TestSelectWeights(t *testing.T) {
	s := service(t, stableCanary, "")
	const n = 2000
	counts := map[string]int{}
	for range n {
		v, err := Select(s, request("GET", "/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[v.Name]++
	}
	// 10% of 2000 has a standard deviation of 0.67 points: ±5 is 7.5 sigma.
	if got := 100 * float64(counts["canary"]) / n; math.Abs(got-10) > 5 {
		t.Errorf("canary got %.1f%% of requests, want 10±5 (%v)", got, counts)
	}
}

func TestSelectZeroWeightOnlyByPin(t *testing.T) {
	s := service(t, `
      - {module: sha256:4f9c0a1b, weight: 100, name: stable}
      - {path: next.wasm, weight: 0, name: next}`, "    sticky: header:x-user\n")
	for i := range 500 {
		v, err := Select(s, request("GET", "/", fmt.Sprintf("X-User: %d", i)), nil)
		if err != nil || v.Name != "stable" {
			t.Fatalf("Select = %v, %v; want stable", v, err)
		}
	}
	if v, err := Select(s, request("GET", "/", "X-Wasmesh-Version: next"), nil); err != nil || v.Name != "next" {
		t.Fatalf("pinned Select = %v, %v; want next", v, err)
	}
}

// stickyShares maps n keys through s and returns the version name per key.
func stickyShares(t *testing.T, s *config.Service, n int) []string {
	t.Helper()
	got := make([]string, n)
	for i := range got {
		v, err := Select(s, request("GET", "/", fmt.Sprintf("X-User-Id: user-%d", i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		got[i] = v.Name
	}
	return got
}

func share(names []string, name string) float64 {
	c := 0
	for _, n := range names {
		if n == name {
			c++
		}
	}
	return 100 * float64(c) / float64(len(names))
}

func TestSelectStickyIsStable(t *testing.T) {
	const n = 10000
	const extra = "    sticky: header:x-user-id\n"
	first := stickyShares(t, service(t, stableCanary, extra), n)
	again := stickyShares(t, service(t, stableCanary, extra), n) // a freshly parsed config
	for i := range first {
		if first[i] != again[i] {
			t.Fatalf("key user-%d went to %s, then to %s", i, first[i], again[i])
		}
	}
	s := service(t, stableCanary, extra)
	for i := range 200 {
		if got := stickyShares(t, s, 200); got[i] != first[i] {
			t.Fatalf("key user-%d went to %s, then to %s", i, first[i], got[i])
		}
	}
	if got := share(first, "canary"); math.Abs(got-10) > 1.5 {
		t.Errorf("canary got %.2f%% of keys, want 10±1.5", got)
	}
}

// TestSelectStickyGoldenAssignment pins the hash: if it changes, replicas of
// different versions of wasmesh would disagree on where users go.
func TestSelectStickyGoldenAssignment(t *testing.T) {
	s := service(t, stableCanary, "    sticky: header:x-user-id\n")
	got := strings.Join(stickyShares(t, s, 24), " ")
	const want = "stable stable stable canary stable stable stable stable stable canary stable canary " +
		"stable stable stable stable stable stable stable stable stable stable stable canary"
	if got != want {
		t.Errorf("assignment of user-0..23 changed:\ngot  %s\nwant %s", got, want)
	}
}

func TestSelectStickyMonotonic(t *testing.T) {
	const n = 10000
	const extra = "    sticky: header:x-user-id\n"
	before := stickyShares(t, service(t, stableCanary, extra), n)
	after := stickyShares(t, service(t, `
      - {module: sha256:4f9c0a1b, weight: 50, name: stable}
      - {path: canary.wasm, weight: 50, name: canary}`, extra), n)
	for i := range before {
		if before[i] == "canary" && after[i] != "canary" {
			t.Fatalf("key user-%d moved from canary back to %s", i, after[i])
		}
	}
	if got := share(after, "canary"); math.Abs(got-50) > 2 {
		t.Errorf("canary got %.2f%% of keys at weight 50, want 50±2", got)
	}
}

func TestSelectStickyThreeVersions(t *testing.T) {
	const n = 10000
	const extra = "    sticky: header:x-user-id\n"
	three := func(a, b, c int) string {
		return fmt.Sprintf(`
      - {path: a.wasm, weight: %d, name: a}
      - {path: b.wasm, weight: %d, name: b}
      - {path: c.wasm, weight: %d, name: c}`, a, b, c)
	}
	before := stickyShares(t, service(t, three(50, 30, 20), extra), n)
	// c raised; a and b keep their 5:3 ratio, so only c's score changes in
	// relation to theirs.
	after := stickyShares(t, service(t, three(25, 15, 60), extra), n)
	for i := range before {
		if before[i] != after[i] && after[i] != "c" {
			t.Fatalf("key user-%d moved from %s to %s, want moves only to c", i, before[i], after[i])
		}
	}
	for name, want := range map[string]float64{"a": 25, "b": 15, "c": 60} {
		if got := share(after, name); math.Abs(got-want) > 2 {
			t.Errorf("%s got %.2f%% of keys, want %v±2", name, got, want)
		}
	}
}

func TestSelectStickyCookie(t *testing.T) {
	s := service(t, stableCanary, "    sticky: cookie:session\n")
	r := request("GET", "/")
	r.AddCookie(&http.Cookie{Name: "session", Value: "abc"})
	first, err := Select(s, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if v, _ := Select(s, r, nil); v != first {
			t.Fatalf("cookie key went to %s, then %s", first.Name, v.Name)
		}
	}
	if want := rendezvous(s, "abc"); first != want {
		t.Errorf("cookie chose %s, rendezvous(abc) is %s", first.Name, want.Name)
	}
}

func TestSelectStickyWithoutKeyIsRandom(t *testing.T) {
	s := service(t, stableCanary, "    sticky: header:x-user-id\n")
	seen := map[string]bool{}
	for range 500 {
		v, _ := Select(s, request("GET", "/"), nil)
		seen[v.Name] = true
	}
	if !seen["canary"] || !seen["stable"] {
		t.Errorf("requests without a key reached only %v", seen)
	}
}

func TestSelectPin(t *testing.T) {
	s := service(t, stableCanary, "")
	stable, canary := s.Versions[0], s.Versions[1]
	tests := []struct {
		pin  string
		want *config.Version
		err  string
	}{
		{stable.Digest, stable, ""},
		{canary.Digest, canary, ""},
		{canary.Digest[:len("sha256:")+8], canary, ""},
		{strings.TrimPrefix(canary.Digest, "sha256:")[:12], canary, ""},
		{strings.ToUpper(strings.TrimPrefix(canary.Digest, "sha256:")[:12]), canary, ""},
		{strings.ToUpper(canary.Digest[:len("sha256:")+12]), canary, ""},
		{"sha256:4f9c0a1b", stable, ""},
		{"canary", canary, ""},
		{" stable ", stable, ""},
		{"sha256:00000000", nil, `unknown version "sha256:00000000" for service "s"`},
		{"sha256:4f9c", nil, `want a version name, or sha256: and at least 8 hex digits`},
		{"nightly", nil, `unknown version "nightly" for service "s"`},
		{"Canary", nil, `unknown version "Canary"`},
	}
	for _, tt := range tests {
		t.Run(tt.pin, func(t *testing.T) {
			v, err := Select(s, request("GET", "/", "X-Wasmesh-Version: "+tt.pin), nil)
			if tt.err != "" {
				if !errors.Is(err, ErrUnknownVersion) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Select = %v, %v; want ErrUnknownVersion with %q", v, err, tt.err)
				}
				return
			}
			if err != nil || v != tt.want {
				t.Fatalf("Select = %v, %v; want %s", v, err, tt.want.Name)
			}
		})
	}
}

func TestSelectPinAmbiguous(t *testing.T) {
	s := &config.Service{Name: "s", PinHeader: true, Versions: []*config.Version{
		{Weight: 50, Digest: "sha256:abcdef01" + strings.Repeat("1", 56)},
		{Weight: 50, Digest: "sha256:abcdef01" + strings.Repeat("2", 56)},
	}}
	_, err := Select(s, request("GET", "/", "X-Wasmesh-Version: abcdef01"), nil)
	if !errors.Is(err, ErrUnknownVersion) || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("Select = %v, want an ambiguous ErrUnknownVersion", err)
	}
	if v, err := Select(s, request("GET", "/", "X-Wasmesh-Version: abcdef012"), nil); err != nil || v != s.Versions[1] {
		t.Errorf("longer pin: %v, %v", v, err)
	}
}

func TestSelectPinHeaderOff(t *testing.T) {
	s := service(t, `
      - {module: sha256:4f9c0a1b, weight: 100, name: stable}
      - {path: canary.wasm, weight: 0, name: canary}`, "    pin_header: false\n")
	for _, pin := range []string{"canary", "nightly"} {
		v, err := Select(s, request("GET", "/", "X-Wasmesh-Version: "+pin), nil)
		if err != nil || v.Name != "stable" {
			t.Errorf("pin %q with pin_header: false: Select = %v, %v; want stable", pin, v, err)
		}
	}
}

func TestSelectNoWeight(t *testing.T) {
	s := &config.Service{Name: "s", Versions: []*config.Version{{Weight: 0}}}
	if _, err := Select(s, request("GET", "/"), nil); err == nil {
		t.Error("Select succeeded with no weighted version")
	}
}
