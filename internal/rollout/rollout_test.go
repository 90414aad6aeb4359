package rollout

import (
	"strings"
	"testing"
	"time"
)

func TestSpecDefaults(t *testing.T) {
	s, err := Spec{Service: "s", Version: "v2"}.withDefaults()
	if err != nil || len(s.Steps) != 4 || s.Hold != Duration(30*time.Second) || s.MinRequests != 100 ||
		*s.MaxErrorRate != 0.05 || *s.MaxErrorRateAbove != 0.01 || s.MaxP99Ratio != 2 {
		t.Fatalf("defaults: %+v, %v", s, err)
	}
	zero := 0.0
	if s, err := (Spec{MaxErrorRate: &zero}).withDefaults(); err != nil || *s.MaxErrorRate != 0 {
		t.Errorf("max_error_rate 0 is a bound, not a default: %v, %v", s.MaxErrorRate, err)
	}
	for _, c := range []struct {
		spec Spec
		want string
	}{
		{Spec{Steps: []int{10, 10, 100}}, "steps must increase: steps[1] is 10 after 10"},
		{Spec{Steps: []int{0, 100}}, "steps[0] is 0: a step is a weight from 1 to 100"},
		{Spec{Steps: []int{10, 50}}, "the last step must be 100, got 50"},
		{Spec{Hold: Duration(time.Millisecond)}, "hold must be at least 100ms"},
		{Spec{MaxP99Ratio: 0.5}, "max_p99_ratio must be at least 1"},
		{Spec{MaxErrorRate: ptr(2.0)}, "max_error_rate must be a fraction from 0 to 1"},
	} {
		if _, err := c.spec.withDefaults(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.spec, err, c.want)
		}
	}
}

func TestCheck(t *testing.T) {
	s, _ := Spec{}.withDefaults()
	r := &Release{Spec: s}
	fig := func(req, errs int64, p99 time.Duration) Figures {
		return Figures{Requests: req, Errors: errs, ErrorRate: float64(errs) / float64(req), p99: p99}
	}
	for _, c := range []struct {
		base, cand Figures
		want       string
	}{
		{fig(1000, 10, 2*time.Millisecond), fig(200, 2, 3*time.Millisecond), ""},
		{fig(1000, 0, 2*time.Millisecond), fig(200, 40, 2*time.Millisecond), "error rate 20.00% over max_error_rate 5.00%"},
		{fig(1000, 0, 2*time.Millisecond), fig(200, 4, 2*time.Millisecond), "over the baseline's 0.00% by more than max_error_rate_above 1.00 points"},
		{fig(1000, 0, 2*time.Millisecond), fig(200, 0, 10*time.Millisecond), "p99 10ms over 2× the baseline's 2ms"},
		{fig(1000, 0, 2*time.Millisecond), fig(60, 0, 10*time.Millisecond), ""},     // too few for a p99
		{fig(1000, 0, 150*time.Microsecond), fig(200, 0, 900*time.Microsecond), ""}, // 6×, but within 1 ms
		{fig(1000, 0, 150*time.Microsecond), fig(200, 0, 1500*time.Microsecond), "p99 1.5ms over 2×"},
		{fig(1000, 0, 2*time.Millisecond), fig(20, 10, 2*time.Millisecond), "error rate 50.00%"}, // failing fast, before min_requests
	} {
		if got := r.check(&Comparison{Baseline: c.base, Candidate: c.cand}, true); (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("check(%+v, %+v) = %q, want %q", c.base, c.cand, got, c.want)
		}
	}
}

// TestFiguresAcrossReplicas: a step's figures are the sum of what each
// replica served since the step began; a replica first seen during the
// step counts from then, one that restarted (its counts went down) from
// zero.
func TestFiguresAcrossReplicas(t *testing.T) {
	count := func(requests, errs int64) Count {
		c := Count{Errors: errs}
		c.Latency[3] = requests
		return c
	}
	type counts = map[string]Count
	for _, c := range []struct {
		name         string
		atMark, now  counts
		wantRequests int64
		wantErrors   int64
	}{
		{"one replica", counts{"": count(100, 1)}, counts{"": count(150, 3)}, 50, 2},
		{"three summed", counts{"": count(100, 0), "b": count(10, 0), "c": count(0, 0)},
			counts{"": count(110, 1), "b": count(40, 2), "c": count(5, 0)}, 10 + 30 + 5, 3},
		{"first seen during the step", counts{"": count(100, 0)}, counts{"": count(120, 0), "new": count(500, 9)}, 20, 0},
		{"restarted", counts{"": count(100, 0), "b": count(400, 4)}, counts{"": count(100, 0), "b": count(30, 1)}, 30, 1},
		{"died (its last counts stay)", counts{"": count(0, 0), "b": count(10, 0)}, counts{"": count(0, 0), "b": count(25, 0)}, 15, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := c.atMark
			ctl := &Controller{counts: func(service, digest string) map[string]Count {
				if digest != "cand" {
					return counts{"": {}}
				}
				return now
			}}
			r := &Release{Spec: Spec{Service: "s"}, Baseline: "base", Candidate: "cand"}
			ctl.markStep(r)
			now = c.now
			f := ctl.figures(r).Candidate
			if f.Requests != c.wantRequests || f.Errors != c.wantErrors {
				t.Errorf("candidate %d requests, %d errors; want %d, %d", f.Requests, f.Errors, c.wantRequests, c.wantErrors)
			}
			// The next look starts where this one left the replicas it
			// first saw or saw restart.
			if again := ctl.figures(r).Candidate; again.Requests != c.wantRequests {
				t.Errorf("looked at again: %d requests, want %d", again.Requests, c.wantRequests)
			}
		})
	}
}
