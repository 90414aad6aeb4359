package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/rollout"
	"github.com/wasmesh/wasmesh/modules"
)

// releaseCmd runs progressive releases on a running gateway: the candidate
// raised in steps, judged on live traffic against its baseline, promoted
// or rolled back by the gateway itself.
func releaseCmd(ctx context.Context, args []string, stdout io.Writer) error {
	subs := map[string]func(context.Context, []string, io.Writer) error{
		"start": releaseStart, "status": releaseStatus,
		"pause": releaseAction("pause"), "resume": releaseAction("resume"),
		"abort": releaseAction("abort"), "promote": releaseAction("promote"),
	}
	return subcommands(ctx, "release", "", []string{"start", "status", "pause", "resume", "abort", "promote"}, subs, args, stdout)
}

func releaseStart(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("release start", "SERVICE VERSION [flags]")
	admin := adminFlag(fs)
	steps := fs.String("steps", "5,25,50,100", "the candidate's weights, step by step, increasing, the last 100")
	lane := fs.String("lane", "", "a lane whose requests the candidate serves first, before any weight (a step of its own)")
	hold := fs.Duration("hold", 30*time.Second, "how long each step runs before it is judged")
	minRequests := fs.Int64("min-requests", 100, "requests the candidate must serve in a step before it is judged")
	maxErrorRate := fs.String("max-error-rate", "5%", "the candidate's highest error rate (answers of 500 or more) in a step")
	maxErrorAbove := fs.String("max-error-rate-above", "1%", "how far the candidate's error rate may be above the baseline's")
	maxP99 := fs.Float64("max-p99-ratio", 2, "the candidate's highest p99 latency, as a multiple of the baseline's")
	webhook := fs.String("webhook", "", "an http(s) URL each event of the release is POSTed to, as JSON")
	prometheus := fs.String("prometheus", "", "the URL of the Prometheus server that scrapes the gateways, which --check queries ask")
	var checks []rollout.PromCheck
	fs.Func("check", "a custom check, NAME<=MAX:QUERY (repeatable): fails when the PromQL query's value is above MAX; "+
		"$service, $candidate and $baseline in it are the service and the versions' short digests", func(v string) error {
		name, rest, ok1 := strings.Cut(v, "<=")
		max, query, ok2 := strings.Cut(rest, ":")
		m, err := strconv.ParseFloat(strings.TrimSpace(max), 64)
		if !ok1 || !ok2 || err != nil || strings.TrimSpace(name) == "" || strings.TrimSpace(query) == "" {
			return fmt.Errorf("want NAME<=MAX:QUERY, got %q", v)
		}
		checks = append(checks, rollout.PromCheck{Name: strings.TrimSpace(name), Max: m, Query: strings.TrimSpace(query)})
		return nil
	})
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("want: wasmesh release start SERVICE VERSION")
	}
	// Zero is each one's default when left out of the spec, which the
	// server cannot tell from a 0 given here.
	switch {
	case *hold == 0:
		return usageError("--hold 0s: must be at least 100ms")
	case *minRequests == 0:
		return usageError("--min-requests 0: must be at least 1")
	case *maxP99 == 0:
		return usageError("--max-p99-ratio 0: must be at least 1")
	}
	spec := rollout.Spec{Service: pos[0], Version: pos[1], Lane: *lane, Hold: rollout.Duration(*hold), MinRequests: *minRequests, MaxP99Ratio: *maxP99, Webhook: *webhook,
		Prometheus: *prometheus, Checks: checks}
	for _, s := range strings.Split(*steps, ",") {
		w, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return usageError("--steps: %q is not a weight", s)
		}
		spec.Steps = append(spec.Steps, w)
	}
	for flag, v := range map[string]struct {
		s   string
		out **float64
	}{"--max-error-rate": {*maxErrorRate, &spec.MaxErrorRate}, "--max-error-rate-above": {*maxErrorAbove, &spec.MaxErrorRateAbove}} {
		f, err := config.ParseFraction(v.s)
		if err != nil {
			return usageError("%s: %q is neither a fraction (0.05) nor a percentage (5%%)", flag, v.s)
		}
		*v.out = &f
	}
	c, err := admin.client()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(spec)
	var rel rollout.Release
	if err := c.do(ctx, "POST", "/v1/releases", "application/json", bytes.NewReader(body), &rel); err != nil {
		return err
	}
	return printRelease(stdout, &rel)
}

func releaseStatus(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("release status", "[SERVICE] [-o json]")
	admin := adminFlag(fs)
	output := outputFlag(fs, "table", "json")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	c, err := admin.client()
	if err != nil {
		return err
	}
	var rels []*rollout.Release
	if len(pos) == 1 {
		var rel rollout.Release
		if err := c.do(ctx, "GET", "/v1/releases/"+pos[0], "", nil, &rel); err != nil {
			return err
		}
		rels = append(rels, &rel)
	} else if err := c.do(ctx, "GET", "/v1/releases", "", nil, &rels); err != nil {
		return err
	}
	if *output == "json" {
		return writeJSON(stdout, rels)
	}
	for _, r := range rels {
		if err := printRelease(stdout, r); err != nil {
			return err
		}
	}
	if len(rels) == 0 {
		fmt.Fprintln(stdout, "no releases")
	}
	return nil
}

func releaseAction(action string) func(context.Context, []string, io.Writer) error {
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		fs := newFlags("release "+action, "SERVICE")
		admin := adminFlag(fs)
		pos, err := parse(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError("want: wasmesh release %s SERVICE", action)
		}
		c, err := admin.client()
		if err != nil {
			return err
		}
		var rel rollout.Release
		if err := c.do(ctx, "POST", "/v1/releases/"+pos[0]+"/"+action, "application/json", nil, &rel); err != nil {
			return err
		}
		return printRelease(stdout, &rel)
	}
}

// printRelease writes a release: its versions, phase and step, the step's
// figures, and its history.
func printRelease(w io.Writer, r *rollout.Release) error {
	weight := r.Steps[r.Step]
	if n := len(r.History); n > 0 && r.Phase != rollout.Running && r.Phase != rollout.Paused {
		weight = r.History[n-1].Weight // where it ended
	}
	at := fmt.Sprintf("candidate at %d%%", weight)
	if r.Lane != "" && weight == 0 && (r.Phase == rollout.Running || r.Phase == rollout.Paused) {
		at = "candidate in lane " + r.Lane + ", at 0%"
	}
	fmt.Fprintf(w, "release of %s: %s, step %d of %d (%s)\n", r.Service, r.Phase, r.Step+1, len(r.Steps), at)
	steps := fmt.Sprint(r.Steps)
	if r.Lane != "" {
		steps = fmt.Sprintf("lane %s, then %v", r.Lane, r.Steps[1:])
	}
	fmt.Fprintf(w, "  candidate sha256:%s, baseline sha256:%s, steps %s, hold %s, min requests %d\n",
		modules.Short(r.Candidate), modules.Short(r.Baseline), steps, time.Duration(r.Hold), r.MinRequests)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if f := r.Figures; f != nil {
		fmt.Fprintln(tw, "  \tREQUESTS\tERRORS\tERROR RATE\tP99")
		for _, row := range []struct {
			name string
			f    rollout.Figures
		}{{"baseline", f.Baseline}, {"candidate", f.Candidate}} {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%.2f%%\t%s\n", row.name, row.f.Requests, row.f.Errors, 100*row.f.ErrorRate, row.f.P99)
		}
	}
	for _, e := range r.History {
		weight := fmt.Sprintf("%d%%", e.Weight)
		if e.Lane != "" {
			weight = "lane " + e.Lane
		}
		fmt.Fprintf(tw, "  %s\t%s\tstep %d\t%s\t%s\n", e.At.Format(time.TimeOnly), e.Kind, e.Step+1, weight, e.Reason)
	}
	return tw.Flush()
}
