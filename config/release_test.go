package config

import (
	"strings"
	"testing"
	"time"
)

func TestReleaseBlock(t *testing.T) {
	cfg := mustParse(t, `services:
  users:
    versions: [ { path: a.wasm, name: v1, weight: 100 }, { path: b.wasm, name: v2, weight: 0 } ]
    release: { version: v2, lane: testers, steps: [ 10, 100 ], hold: 2s, min_requests: 50, max_error_rate: 2%, max_error_rate_above: 0.005, max_p99_ratio: 1.5 }
lanes:
  testers: { entry: [ { header: X-Lane=testers } ] }
`)
	r := cfg.Services["users"].Release
	if r == nil || r.Version != "v2" || r.Lane != "testers" || len(r.Steps) != 2 || r.Hold != 2*time.Second || r.MinRequests != 50 ||
		*r.MaxErrorRate != 0.02 || *r.MaxErrorRateAbove != 0.005 || r.MaxP99Ratio != 1.5 {
		t.Fatalf("release: %+v", r)
	}
	for _, tt := range []struct{ src, want string }{
		{`{ version: v9 }`, `services.users.release.version: "v9" is not the name of a version of the service`},
		{`{ steps: [ 10, 100 ] }`, `services.users.release: missing field "version"`},
		{`{ version: v2, steps: [ 50, 20, 100 ] }`, `release.steps: steps must increase: steps[1] is 20 after 50`},
		{`{ version: v2, steps: [ 10, 50 ] }`, `release.steps: the last step must be 100, got 50`},
		{`{ version: v2, hold: 1ms }`, `release.hold: must be at least 100ms, got 1ms`},
		{`{ version: v2, max_error_rate: lots }`, `release.max_error_rate: must be a fraction from 0 to 1`},
		{`{ version: v2, max_p99_ratio: 0.5 }`, `release.max_p99_ratio: must be a number, at least 1, got "0.5"`},
		{`{ version: v2, checks: [] }`, `unknown field "checks"`},
		{`{ version: v2, lane: tester }`, `wasmesh.yaml:4:35: services.users.release.lane: unknown lane "tester" (did you mean "testers"?)`},
		{`{ version: v2, lane: "not a lane" }`, `release.lane: "not a lane" is not a lane name`},
	} {
		_, err := Parse("wasmesh.yaml", []byte("services:\n  users:\n    versions: [ { path: a.wasm, name: v1, weight: 100 }, { path: b.wasm, name: v2, weight: 0 } ]\n    release: "+tt.src+"\nlanes:\n  testers: {}\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.src, err, tt.want)
		}
	}
}
