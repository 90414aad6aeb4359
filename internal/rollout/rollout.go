// Package rollout runs progressive releases of services: a candidate
// version's weight raised in steps against its baseline, each step held
// and checked on the live traffic the data plane measures (error rate, p99
// latency, against fixed bounds and against the baseline over the same
// interval), promoted at the last step, rolled back at once when a check
// fails. Its state is written atomically beside the store, so that a
// release survives a restart of the gateway and resumes at its step.
package rollout

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/dataplane"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/router"
)

// Spec is what a release is asked to do.
type Spec struct {
	// Service is released; Version is its candidate (a version's name or
	// digest prefix, already in the service, typically at weight 0).
	Service string `json:"service"`
	Version string `json:"version"`
	// Steps are the candidate's weights, increasing, the last 100. Default
	// [5, 25, 50, 100]. With a Lane, a step of weight 0 comes first: the
	// lane's step.
	Steps []int `json:"steps,omitempty"`
	// Lane, when set, is the lane (of the config's lanes) whose requests
	// the candidate serves first, before any weight: the release's first
	// step makes the candidate the lane's version of the service, at
	// weight 0, and is held and checked as any other. The candidate stays
	// the lane's version until the release ends, when the lane's version
	// of the service is put back as it was. Default none.
	Lane string `json:"lane,omitempty"`
	// Hold is how long each step runs before it is judged. Default 30s.
	Hold Duration `json:"hold,omitempty"`
	// MinRequests is how many requests the candidate must serve in a step
	// before it is judged; a step with fewer holds on. Default 100.
	MinRequests int64 `json:"min_requests,omitempty"`
	// MaxErrorRate bounds the candidate's error rate (answers of 500 or
	// more, client faults apart) in a step. Default 0.05.
	MaxErrorRate *float64 `json:"max_error_rate,omitempty"`
	// MaxErrorRateAbove bounds how far the candidate's error rate may be
	// above the baseline's over the same interval. Default 0.01.
	MaxErrorRateAbove *float64 `json:"max_error_rate_above,omitempty"`
	// MaxP99Ratio bounds the candidate's p99 latency against the
	// baseline's over the same interval; a p99 within 1 ms of the
	// baseline's passes whatever the ratio. Default 2.
	MaxP99Ratio float64 `json:"max_p99_ratio,omitempty"`
	// Webhook, when set, is an http(s) URL every event of the release is
	// POSTed to as JSON (a WebhookEvent), tried up to 3 times, 5 s each.
	Webhook string `json:"webhook,omitempty"`
	// Prometheus is the URL of the Prometheus server that Checks are asked
	// of; needed by Checks.
	Prometheus string      `json:"prometheus,omitempty"`
	Checks     []PromCheck `json:"checks,omitempty"`
}

// WebhookEvent is what a release's webhook gets for each event.
type WebhookEvent struct {
	Service   string `json:"service"`
	Baseline  string `json:"baseline"`
	Candidate string `json:"candidate"`
	Phase     string `json:"phase"`
	Event
}

// Duration is a time.Duration written as "30s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a string such as "30s"; anything else is a
// *json.UnmarshalTypeError, which the decoder completes with the field's
// name.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	v, err := time.Duration(0), json.Unmarshal(b, &s)
	if err == nil {
		v, err = time.ParseDuration(s)
	}
	if err != nil {
		return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[Duration]()}
	}
	*d = Duration(v)
	return nil
}

// withDefaults checks s and fills in its defaults.
func (s Spec) withDefaults() (Spec, error) {
	steps := s.Steps
	if s.Lane != "" && len(steps) > 0 && steps[0] == 0 {
		steps = steps[1:] // the lane's step, of a spec given its defaults already
	}
	if len(steps) == 0 {
		steps = []int{5, 25, 50, 100}
	}
	if err := config.CheckSteps(steps); err != nil {
		return s, err
	}
	s.Steps = steps
	if s.Lane != "" {
		if !config.ValidName(s.Lane) {
			return s, fmt.Errorf("%q is not a lane name", s.Lane)
		}
		s.Steps = append([]int{0}, steps...)
	}
	s.Hold = cmp.Or(s.Hold, Duration(30*time.Second))
	s.MinRequests = cmp.Or(s.MinRequests, 100)
	if s.MaxErrorRate == nil {
		s.MaxErrorRate = ptr(0.05)
	}
	if s.MaxErrorRateAbove == nil {
		s.MaxErrorRateAbove = ptr(0.01)
	}
	s.MaxP99Ratio = cmp.Or(s.MaxP99Ratio, 2)
	switch {
	case s.Hold < Duration(100*time.Millisecond):
		return s, fmt.Errorf("hold must be at least 100ms, got %s", time.Duration(s.Hold))
	case s.MinRequests < 1:
		return s, fmt.Errorf("min_requests must be at least 1, got %d", s.MinRequests)
	case *s.MaxErrorRate < 0 || *s.MaxErrorRate > 1:
		return s, fmt.Errorf("max_error_rate must be a fraction from 0 to 1, got %g", *s.MaxErrorRate)
	case *s.MaxErrorRateAbove < 0 || *s.MaxErrorRateAbove > 1:
		return s, fmt.Errorf("max_error_rate_above must be a fraction from 0 to 1, got %g", *s.MaxErrorRateAbove)
	case s.MaxP99Ratio < 1:
		return s, fmt.Errorf("max_p99_ratio must be at least 1, got %g", s.MaxP99Ratio)
	}
	for name, v := range map[string]string{"webhook": s.Webhook, "prometheus": s.Prometheus} {
		if u, err := url.Parse(v); v != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			return s, fmt.Errorf("%s must be an http(s) URL, got %q", name, v)
		}
	}
	for i, c := range s.Checks {
		switch {
		case s.Prometheus == "":
			return s, fmt.Errorf("checks need prometheus (the URL of the server that scrapes the gateways)")
		case c.Name == "" || c.Query == "":
			return s, fmt.Errorf("checks[%d] needs a name and a query", i)
		}
	}
	return s, nil
}

func ptr[T any](v T) *T { return &v }

// maxEarlier is how many earlier candidates a service's release keeps
// (Release.Earlier).
const maxEarlier = 32

// Phases of a release.
const (
	Running    = "running"
	Paused     = "paused"
	Promoted   = "promoted"
	RolledBack = "rolled_back"
	Aborted    = "aborted"
)

// Release is a release's state.
type Release struct {
	Spec
	// Baseline and Candidate are the versions' digests; Before is the
	// service's split when the release started (weights by digest), put
	// back by a rollback or an abort.
	Baseline  string         `json:"baseline"`
	Candidate string         `json:"candidate"`
	Before    map[string]int `json:"before"`
	// LaneBefore is the lane's version of the service when the release
	// started ("" for none), put back when it ends.
	LaneBefore string `json:"lane_before,omitempty"`
	// Earlier are the candidates of the service's earlier releases,
	// the last most recent (up to maxEarlier): a config's release block
	// starts a release of its candidate once, whatever ran since.
	Earlier []string `json:"earlier_candidates,omitempty"`
	// Step is the index in Steps of the step it is at.
	Step  int    `json:"step"`
	Phase string `json:"phase"`
	// StepStarted is when the step began (again, after a restart or a
	// resume); Started when the release did.
	Started     time.Time `json:"started"`
	StepStarted time.Time `json:"step_started"`
	// Figures are the step's so far, when it runs.
	Figures *Comparison `json:"figures,omitempty"`
	History []Event     `json:"history"`

	// The versions' counts when the step began (baseline, candidate), by
	// replica.
	from [2]map[string]Count
	// offStep counts the judgements in a row that found the candidate's
	// weight in the config other than its step's: two (a second apart,
	// past a fleet's replicas catching up) pause the release.
	offStep int
}

// Figures are what one version served in a step.
type Figures struct {
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	P99       string  `json:"p99"`
	p99       time.Duration
}

// Comparison is a step's figures, baseline and candidate.
type Comparison struct {
	Baseline  Figures `json:"baseline"`
	Candidate Figures `json:"candidate"`
}

// Event is one entry of a release's history.
type Event struct {
	At     time.Time   `json:"at"`
	Kind   string      `json:"kind"` // started, step, promoted, rolled_back, paused, resumed, aborted
	Step   int         `json:"step"`
	Weight int         `json:"weight"`
	Lane   string      `json:"lane,omitempty"` // at the lane's step
	Reason string      `json:"reason,omitempty"`
	Figure *Comparison `json:"figures,omitempty"`
}

// Traffic changes where a service's requests go, through the control
// plane: Shift sets one version's weight (the others scaled), SetWeights
// puts a whole split back, SetLaneVersion makes a version the lane's
// version of the service ("" takes the service out of the lane), Settled
// waits for an operator's edit the guard (Busy) let through.
type Traffic interface {
	Shift(ctx context.Context, service, ref string, weight int) ([]*config.Version, error)
	SetWeights(ctx context.Context, service string, weights map[string]int) ([]*config.Version, error)
	SetLaneVersion(ctx context.Context, lane, service, ref string) error
	// Settled is the snapshot served once an edit in progress is applied.
	Settled() *dataplane.Snapshot
	// Editable is nil, or why an operator's change of the config would
	// write over what it should not (an edit of the file that was
	// refused): a release is not started over it.
	Editable() error
}

// Controller runs the releases.
type Controller struct {
	plane   *dataplane.Plane
	traffic Traffic
	log     *slog.Logger

	step         *prometheus.GaugeVec
	events       *prometheus.CounterVec
	leadingGauge prometheus.Gauge
	tracer       trace.Tracer

	// move is held across a change of a release: its decision, the weights
	// it sets and the state it records, so that an operator's pause or
	// abort and the judging of a step happen one after the other. Busy
	// does not take it.
	move     sync.Mutex
	mu       sync.Mutex // the releases and their fields
	releases map[string]*Release
	starting map[string]bool // services whose release Start is starting
	// declaredGen is the config generation whose declared releases were
	// started.
	declaredGen atomic.Int64

	// Where the state is kept, what the figures are summed from, and
	// whether this replica leads (JoinFleet); one gateway always leads.
	state       State
	counts      func(service, digest string) map[string]Count
	leader      func() string
	notifyEvent func(service string, e Event)
	fleet       Fleet
	leading     atomic.Bool
	leadCtx     context.Context // Lead's, while it or the last one ran; mu held
}

// StateFile is the releases' state file, in the store's directory.
const StateFile = "releases.json"

// New returns a controller of the releases of plane's services, which
// moves traffic through t and keeps its state in the store's directory
// (LoadState reads it).
func New(plane *dataplane.Plane, t Traffic, log *slog.Logger, tp trace.TracerProvider) *Controller {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	c := &Controller{plane: plane, traffic: t, log: log, releases: map[string]*Release{}, starting: map[string]bool{},
		tracer: tp.Tracer("github.com/wasmesh/wasmesh/rollout"),
		step: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wasmesh_release_weight",
			Help: "The weight of a running or paused release's candidate, by service (0 when the config no longer has it).",
		}, []string{"service"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_release_events_total",
			Help: "Release events by service and kind: started, step, promoted, rolled_back, paused, resumed, aborted.",
		}, []string{"service", "kind"}),
	}
	c.state = fileState{plane}
	c.counts = c.localCounts
	c.leading.Store(true)
	c.leadingGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "wasmesh_release_leader",
		Help: "1 while this gateway drives the releases (always, for one gateway; in a fleet, while it holds the releases' Lease), else 0.",
	})
	c.leadingGauge.Set(1)
	plane.Metrics().Registry.MustRegister(c.step, c.events, c.leadingGauge)
	return c
}

// LoadState reads the releases' state, once a config is loaded: a release
// that was running or paused goes on at the step it was at (its weights
// are in the config already), the step held again from now. A release
// whose candidate has its next step's weight in the config (the gateway
// stopped after setting it, before recording it) goes on at that step; one
// whose candidate has any other weight than its step's is paused, saying
// so. An entry that does not make sense is left out, and logged.
func (c *Controller) LoadState(ctx context.Context) error {
	if err := c.load(ctx, ""); err != nil {
		c.log.Error("release: the state is unreadable; no release resumed", "state", c.state.Where(), "error", err)
	}
	return nil
}

// load is LoadState, which returns the error of a state it cannot read; a
// why, when given, is recorded as a "resumed" event of each release that
// goes on running.
func (c *Controller) load(ctx context.Context, why string) error {
	st := c.plane.Snapshot()
	if st == nil {
		return nil // no config yet: nothing to resume
	}
	saved, err := c.state.Load(ctx)
	if err != nil {
		return err
	}
	c.move.Lock()
	defer c.move.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.releases = map[string]*Release{}
	for _, r := range saved {
		spec, err := r.Spec.withDefaults()
		if err != nil || r.Step < 0 || r.Step >= len(spec.Steps) {
			c.log.Error("release: an entry of the state left out", "state", c.state.Where(), "service", r.Service, "step", r.Step, "error", err)
			continue
		}
		r.Spec = spec
		c.releases[r.Service] = r
		if r.Phase != Running && r.Phase != Paused {
			continue
		}
		r.StepStarted = now
		c.markStep(r)
		w := candidateWeight(st, r)
		switch {
		case w == r.Steps[r.Step]:
		case r.Step+1 < len(r.Steps) && w == r.Steps[r.Step+1]:
			r.Step++
			c.event(r, "step", "the step's weight was set before the state recorded it (the leader stopped between the two)")
		case r.Phase == Running:
			r.Phase = Paused
			c.event(r, "paused", fmt.Sprintf("the candidate's weight in the config is %d, its step's %d: the gateway stopped while changing it", w, r.Steps[r.Step]))
		}
		if why != "" && r.Phase == Running {
			c.event(r, "resumed", why)
		}
		c.step.WithLabelValues(r.Service).Set(float64(r.Steps[r.Step]))
		c.log.Info("release restored from its state", "service", r.Service, "step", r.Step, "weight", r.Steps[r.Step], "phase", r.Phase)
	}
	if why != "" {
		c.saveLocked()
	}
	return nil
}

// candidateWeight is r's candidate's weight in st, -1 when it is not there.
func candidateWeight(st *dataplane.Snapshot, r *Release) int {
	if svc := st.Config.Services[r.Service]; svc != nil {
		for _, v := range svc.Versions {
			if v.Digest == r.Candidate {
				return v.Weight
			}
		}
	}
	return -1
}

// BusyHere is Busy from this gateway's own state: on a replica that does
// not lead the releases, which starts none, nothing (what the others
// record was asked by Busy, before). It needs no network: the control
// plane asks it with its lock held.
func (c *Controller) BusyHere(service string) error {
	if !c.leading.Load() {
		return nil
	}
	return c.Busy(service)
}

// LaneBusyHere is the control plane's guard of lane edits, on the replica
// that leads releases (elsewhere nil): a lane that a release running or
// paused moves its candidate in may not be changed or deleted under it.
func (c *Controller) LaneBusyHere(lane string) error {
	if !c.leading.Load() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.releases {
		if r.Lane == lane && (r.Phase == Running || r.Phase == Paused) {
			return fmt.Errorf("%w: lane %q carries the release of service %q (%s, candidate %s, step %d of %d); abort or promote it first",
				ErrConflict, lane, r.Service, r.Phase, modules.Short(r.Candidate), r.Step+1, len(r.Steps))
		}
	}
	return nil
}

// Busy is the control plane's guard: a service with a release running or
// paused refuses other release operations.
func (c *Controller) Busy(service string) error {
	var r *Release
	var starting bool
	if c.leading.Load() {
		c.mu.Lock()
		defer c.mu.Unlock()
		r, starting = c.releases[service], c.starting[service]
	} else {
		rec, err := c.recorded()
		if err != nil {
			return fmt.Errorf("%w: %v; try again", ErrConflict, err) // a release may be running: refused
		}
		r = rec[service]
	}
	if r != nil && (r.Phase == Running || r.Phase == Paused) {
		return fmt.Errorf("%w: service %q has a release %s (candidate %s, step %d of %d); abort it first",
			ErrConflict, service, r.Phase, modules.Short(r.Candidate), r.Step+1, len(r.Steps))
	}
	if starting {
		return fmt.Errorf("%w: a release of service %q is starting; try again", ErrConflict, service)
	}
	return nil
}

// Errors of the release operations.
var (
	ErrConflict = errors.New("conflict")
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
)

// Start starts a release of spec: the candidate goes to the first step's
// weight at once.
func (c *Controller) Start(ctx context.Context, spec Spec) (*Release, error) {
	spec, err := spec.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if rel, elsewhere, err := c.atLeader(ctx, Request{Service: spec.Service, Action: ActionStart, Spec: &spec}); elsewhere {
		return rel, err
	}
	c.move.Lock()
	defer c.move.Unlock()
	if err := c.Busy(spec.Service); err != nil {
		return nil, err
	}
	// The guard refuses operators' edits of the service from here on; one
	// it let through before is applied by the time Settled returns, so the
	// split read is the one the first step changes.
	c.mu.Lock()
	c.starting[spec.Service] = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.starting, spec.Service)
		c.mu.Unlock()
	}()
	st := c.traffic.Settled()
	if st == nil {
		return nil, errors.New("no config loaded")
	}
	svc, ok := st.Config.Services[spec.Service]
	if !ok {
		return nil, fmt.Errorf("%w: service %q", ErrNotFound, spec.Service)
	}
	cand, err := router.Pinned(svc, spec.Version)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not a version of service %q (by name or digest prefix; deploy it at weight 0 first): %v", ErrNotFound, spec.Version, spec.Service, err)
	}
	// The first step that sets a weight: a lane's step (0) moves the
	// candidate's weight back to the versions judged against it.
	first := spec.Steps[0]
	if spec.Lane != "" {
		first = spec.Steps[1]
	}
	if cand.Weight >= 100 {
		return nil, fmt.Errorf("%w: %s serves all of service %q's traffic already: there is nothing to release to it (deploy the new version at weight 0, and release that)",
			ErrInvalid, spec.Version, spec.Service)
	}
	if cand.Weight > 0 && cand.Weight >= first {
		return nil, fmt.Errorf("%w: %s has weight %d already, at or above the first step's %d: the release would move its traffic at once to versions nothing judges (set its weight to 0 first, or start with a step above %d)",
			ErrInvalid, spec.Version, cand.Weight, first, cand.Weight)
	}
	var base *config.Version
	before := map[string]int{}
	for _, v := range svc.Versions {
		before[v.Digest] = v.Weight
		if v != cand && v.Weight > 0 && (base == nil || v.Weight > base.Weight) {
			base = v
		}
	}
	if base == nil {
		return nil, fmt.Errorf("%w: service %q has no other version serving to compare %s with", ErrInvalid, spec.Service, spec.Version)
	}
	now := time.Now()
	r := &Release{Spec: spec, Baseline: base.Digest, Candidate: cand.Digest, Before: before, Phase: Running, Started: now, StepStarted: now}
	if spec.Lane != "" {
		l := st.Config.Lanes[spec.Lane]
		if l == nil {
			return nil, fmt.Errorf("%w: lane %q (create it first, with the entry rules that lead into it)", ErrNotFound, spec.Lane)
		}
		r.LaneBefore = l.Versions[spec.Service]
	}
	for _, check := range spec.Checks { // a query that Prometheus refuses is refused before any traffic moves
		if _, _, err := promQuery(ctx, spec.Prometheus, check.query(r)); err != nil {
			return nil, fmt.Errorf("%w: check %s: %v", ErrInvalid, check.Name, err)
		}
	}
	if err := c.traffic.Editable(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConflict, err)
	}
	if spec.Lane != "" {
		if err := c.traffic.SetLaneVersion(ctx, spec.Lane, spec.Service, cmp.Or(cand.Name, cand.Digest)); err != nil {
			return nil, err
		}
	}
	if _, err := c.traffic.Shift(ctx, spec.Service, cand.Digest, spec.Steps[0]); err != nil {
		if spec.Lane != "" {
			c.putLaneBack(ctx, r)
		}
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.releases[spec.Service]; old != nil {
		r.Earlier = append(slices.Clone(old.Earlier), old.Candidate)
		r.Earlier = r.Earlier[max(0, len(r.Earlier)-maxEarlier):]
	}
	c.releases[spec.Service] = r
	c.markStep(r)
	c.event(r, "started", "")
	c.saveLocked()
	return r.clone(), nil
}

// markStep notes the versions' counts at the step's start, c.mu held.
func (c *Controller) markStep(r *Release) {
	for i, d := range []string{r.Baseline, r.Candidate} {
		r.from[i] = c.counts(r.Service, d)
	}
	r.Figures = nil
}

// figures are the versions' figures since the step began, of the requests
// they have answered (those still in flight are not counted, so that a
// candidate that hangs shows as slow and failing, not as fine), summed
// over the replicas, c.mu held. A replica first seen during the step is
// counted from when it was seen; one whose counts went down (it
// restarted) from zero.
func (c *Controller) figures(r *Release) *Comparison {
	var out [2]Figures
	for i, d := range []string{r.Baseline, r.Candidate} {
		if r.from[i] == nil {
			r.from[i] = map[string]Count{}
		}
		var f Figures
		var from, to dataplane.LatencySnapshot
		for replica, now := range c.counts(r.Service, d) {
			was, seen := r.from[i][replica]
			switch {
			case !seen:
				was = now
				r.from[i][replica] = now
			case now.below(was):
				was = Count{}
				r.from[i][replica] = was
			}
			f.Errors += now.Errors - was.Errors
			for b := range to {
				from[b] += was.Latency[b]
				to[b] += now.Latency[b]
			}
		}
		f.Requests = dataplane.Count(from, to)
		if f.Requests > 0 {
			f.ErrorRate = min(1, float64(f.Errors)/float64(f.Requests))
		}
		f.p99 = dataplane.Quantile(from, to, 0.99)
		f.P99 = f.p99.String()
		out[i] = f
	}
	return &Comparison{Baseline: out[0], Candidate: out[1]}
}

// below reports whether any of n's counts is below was's: the replica
// counting them started again since was.
func (n Count) below(was Count) bool {
	if n.Errors < was.Errors {
		return true
	}
	for b := range n.Latency {
		if n.Latency[b] < was.Latency[b] {
			return true
		}
	}
	return false
}

// check judges a step's figures: "" when they pass, else the failed check
// with its figures. The error checks judge once the candidate has served
// MinRequests (or has already failed more than MaxErrorRate of them);
// the latency check only at the end of the step's hold, on enough
// requests of both for a p99 (100 each).
func (r *Release) check(f *Comparison, held bool) string {
	b, cand := f.Baseline, f.Candidate
	enough := cand.Requests >= r.MinRequests
	switch {
	case (enough || float64(cand.Errors) > *r.MaxErrorRate*float64(r.MinRequests)) && cand.ErrorRate > *r.MaxErrorRate:
		return fmt.Sprintf("error rate %.2f%% over max_error_rate %.2f%% (%d of %d requests)", 100*cand.ErrorRate, 100**r.MaxErrorRate, cand.Errors, cand.Requests)
	case enough && b.Requests > 0 && cand.ErrorRate > b.ErrorRate+*r.MaxErrorRateAbove:
		return fmt.Sprintf("error rate %.2f%% over the baseline's %.2f%% by more than max_error_rate_above %.2f points", 100*cand.ErrorRate, 100*b.ErrorRate, 100**r.MaxErrorRateAbove)
	case held && enough && cand.Requests >= 100 && b.Requests >= 100 && b.p99 > 0 && float64(cand.p99) > r.MaxP99Ratio*float64(b.p99) &&
		cand.p99-b.p99 > p99Slack:
		return fmt.Sprintf("p99 %s over %g× the baseline's %s (max_p99_ratio)", cand.p99, r.MaxP99Ratio, b.p99)
	}
	return ""
}

// p99Slack is how far a candidate's p99 may be above the baseline's
// whatever their ratio: sub-millisecond p99s of a few hundred requests
// are a bucket or two of the histogram apart by chance (a 150 µs baseline
// and a 240 µs candidate would be over 1.5×).
const p99Slack = time.Millisecond

// Run drives the releases every interval until ctx ends.
func (c *Controller) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.tick(ctx)
		}
	}
}

// tick judges every running release: a failed check rolls it back at
// once; a step held long enough, with enough requests, whose checks pass,
// moves to the next; passing the step before the last promotes.
func (c *Controller) tick(ctx context.Context) {
	c.answerRequests(ctx)
	c.declared(ctx)
	c.mu.Lock()
	var running []string
	for name, r := range c.releases {
		if r.Phase == Running {
			running = append(running, name)
		}
	}
	c.mu.Unlock()
	for _, name := range running {
		c.judge(ctx, name)
	}
}

// declared starts the releases the config declares (a service's release
// block), each once per candidate: a service whose release of that
// candidate ran already (its last, or one of the maxEarlier before), or
// that has another release running, is left alone.
func (c *Controller) declared(ctx context.Context) {
	st := c.plane.Snapshot()
	if st == nil || st.Gen == c.declaredGen.Load() {
		return
	}
	c.declaredGen.Store(st.Gen)
	for name, svc := range st.Config.Services {
		d := svc.Release
		if d == nil {
			continue
		}
		cand, err := router.Pinned(svc, d.Version)
		if err != nil {
			c.log.Error("release: the config's release names no version of the service", "service", name, "version", d.Version, "error", err)
			continue
		}
		c.mu.Lock()
		r := c.releases[name]
		c.mu.Unlock()
		if r != nil && (r.Candidate == cand.Digest || slices.Contains(r.Earlier, cand.Digest) || r.Phase == Running || r.Phase == Paused) {
			continue
		}
		spec := Spec{Service: name, Version: cand.Digest, Lane: d.Lane, Steps: d.Steps, Hold: Duration(d.Hold), MinRequests: d.MinRequests,
			MaxErrorRate: d.MaxErrorRate, MaxErrorRateAbove: d.MaxErrorRateAbove, MaxP99Ratio: d.MaxP99Ratio}
		if _, err := c.Start(ctx, spec); err != nil {
			c.log.Error("release: the config's release could not start", "service", name, "version", d.Version, "error", err)
		}
	}
}

func (c *Controller) judge(ctx context.Context, service string) {
	c.move.Lock()
	defer c.move.Unlock()
	c.mu.Lock()
	r := c.releases[service]
	if r == nil || r.Phase != Running {
		c.mu.Unlock()
		return
	}
	// A reload that took out either version leaves nothing to judge.
	st := c.plane.Snapshot()
	if candidateWeight(st, r) < 0 || !hasVersion(st, r.Service, r.Baseline) {
		r.Phase = Paused
		c.event(r, "paused", "the candidate or the baseline is no longer a version of the service (the config changed)")
		c.step.WithLabelValues(r.Service).Set(float64(max(candidateWeight(st, r), 0))) // what the candidate has, not its step's
		c.saveLocked()
		c.mu.Unlock()
		return
	}
	// A weight changed outside the release (an edit of the file) would
	// have the step judged at another share than its own.
	if w := candidateWeight(st, r); w != r.Steps[r.Step] {
		if r.offStep++; r.offStep >= 2 {
			r.offStep = 0
			r.Phase = Paused
			c.event(r, "paused", fmt.Sprintf("the candidate's weight in the config is %d, its step's %d: changed outside the release (resume sets it back to %d)", w, r.Steps[r.Step], r.Steps[r.Step]))
			c.step.WithLabelValues(r.Service).Set(float64(w))
			c.saveLocked()
			c.mu.Unlock()
			return
		}
	} else {
		r.offStep = 0
	}
	f := c.figures(r)
	r.Figures = f
	held := time.Since(r.StepStarted) >= time.Duration(r.Hold)
	failed := r.check(f, held)
	if failed == "" && evictedFromLane(st, r) {
		// No request reaches it any more (weight 0, out of the lane): it
		// would wait at this step for ever.
		failed = fmt.Sprintf("lane %s's health check evicted the candidate (its error rate over the lane's evict.error_rate)", r.Lane)
	}
	enough := f.Candidate.Requests >= r.MinRequests
	last := r.Step+1 == len(r.Steps)-1 || r.Steps[r.Step] == 100
	c.mu.Unlock()
	if failed == "" && len(r.Checks) > 0 {
		var err error
		if failed, err = promChecks(ctx, r); err != nil {
			c.mu.Lock()
			r.Phase = Paused
			c.event(r, "paused", "a custom check could not be asked: "+err.Error())
			c.saveLocked()
			c.mu.Unlock()
			return
		}
	}
	switch {
	case failed != "":
		c.finish(ctx, r, RolledBack, "check failed: "+failed, f)
	case !enough || !held:
	case last:
		c.finish(ctx, r, Promoted, "every step passed", f)
	default:
		c.advance(ctx, r, f)
	}
}

// evictedFromLane reports whether r is at its lane's step with its
// candidate, the lane's version of the service, evicted from the lane.
func evictedFromLane(st *dataplane.Snapshot, r *Release) bool {
	if r.Lane == "" || r.Steps[r.Step] != 0 || st.Table == nil {
		return false
	}
	l := st.Table.Lane(r.Lane)
	if l == nil {
		return false
	}
	v := l.Version(r.Service)
	return v != nil && v.Digest == r.Candidate && l.Evicted(r.Service)
}

func hasVersion(st *dataplane.Snapshot, service, digest string) bool {
	if svc := st.Config.Services[service]; svc != nil {
		for _, v := range svc.Versions {
			if v.Digest == digest {
				return true
			}
		}
	}
	return false
}

// advance moves r to its next step; c.move is held.
func (c *Controller) advance(ctx context.Context, r *Release, f *Comparison) {
	next := r.Steps[r.Step+1]
	if _, err := c.traffic.Shift(ctx, r.Service, r.Candidate, next); err != nil {
		c.log.Error("release: the next step's weight could not be set; held at this step", "service", r.Service, "weight", next, "error", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Step++
	c.markStep(r)
	r.StepStarted = time.Now()
	c.event(r, "step", "", f)
	c.saveLocked()
}

// finish ends r, c.move held: promoted, the candidate at 100 (the others
// at 0); aborted, the split it started from put back; rolled back, that
// split with the candidate at 0 (restored). A release whose service is
// gone from the config ends without a weight to set.
func (c *Controller) finish(ctx context.Context, r *Release, phase string, reason string, f *Comparison) error {
	var err error
	switch st := c.traffic.Settled(); {
	case phase != Promoted && st != nil && st.Config.Services[r.Service] == nil:
		c.log.Warn("release: its service is gone from the config: no split to put back", "service", r.Service, "phase", phase)
	case phase == Promoted:
		_, err = c.traffic.Shift(ctx, r.Service, r.Candidate, 100)
	default:
		before := r.restored(phase)
		if _, err = c.traffic.SetWeights(ctx, r.Service, before); err != nil {
			// The split no longer adds up (a version it had was removed
			// since, or one added): the candidate's weight alone is put
			// back, the others scaled to the rest, rather than leave the
			// candidate serving with its release stuck.
			c.log.Warn("release: the split it started from could not be put back; setting the candidate's weight alone",
				"service", r.Service, "candidate", r.Candidate, "weight", before[r.Candidate], "error", err)
			_, err = c.traffic.Shift(ctx, r.Service, r.Candidate, before[r.Candidate])
		}
	}
	if err != nil {
		c.log.Error("release: the weights could not be set", "service", r.Service, "phase", phase, "error", err)
		return err
	}
	if r.Lane != "" {
		c.putLaneBack(ctx, r)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Phase = phase
	if phase == Promoted {
		r.Step = len(r.Steps) - 1
	}
	c.event(r, phase, reason, f)
	c.step.DeleteLabelValues(r.Service)
	c.saveLocked()
	return nil
}

// restored is the split a release that ends in phase (rolled back or
// aborted) puts back: the one it started from, but for a rollback, which
// takes the candidate a check failed out of service: its weight then goes
// to the baseline (its weight alone to 0, when the split started with no
// baseline weight to take it).
func (r *Release) restored(phase string) map[string]int {
	if len(r.Before) == 0 { // a state file from before Before was kept
		return map[string]int{r.Candidate: 0}
	}
	if phase != RolledBack || r.Before[r.Candidate] == 0 {
		return r.Before
	}
	split := maps.Clone(r.Before)
	if _, ok := split[r.Baseline]; ok {
		split[r.Baseline] += split[r.Candidate]
	}
	split[r.Candidate] = 0
	return split
}

// putLaneBack makes the lane's version of r's service what it was when r
// started; a failure (the lane deleted since) is logged.
func (c *Controller) putLaneBack(ctx context.Context, r *Release) {
	if err := c.traffic.SetLaneVersion(ctx, r.Lane, r.Service, r.LaneBefore); err != nil {
		c.log.Warn("release: the lane's version of the service not put back", "service", r.Service, "lane", r.Lane, "version", r.LaneBefore, "error", err)
	}
}

// event records an event of r, c.mu held: its history, the log, the
// metric, a span, the webhook.
func (c *Controller) event(r *Release, kind, reason string, f ...*Comparison) {
	e := Event{At: time.Now(), Kind: kind, Step: r.Step, Weight: r.Steps[r.Step], Reason: reason}
	if r.Lane != "" && r.Steps[r.Step] == 0 {
		e.Lane = r.Lane
	}
	if kind == RolledBack || kind == Aborted {
		e.Weight = r.restored(kind)[r.Candidate]
	}
	if len(f) > 0 {
		e.Figure = f[0]
	}
	r.History = append(r.History, e)
	c.events.WithLabelValues(r.Service, kind).Inc()
	if r.Phase == Running || r.Phase == Paused {
		c.step.WithLabelValues(r.Service).Set(float64(e.Weight))
	}
	args := []any{"service", r.Service, "candidate", modules.Short(r.Candidate), "baseline", modules.Short(r.Baseline), "step", r.Step, "weight", e.Weight}
	if e.Lane != "" {
		args = append(args, "lane", e.Lane)
	}
	if reason != "" {
		args = append(args, "reason", reason)
	}
	if e.Figure != nil {
		args = append(args, "candidate_requests", e.Figure.Candidate.Requests, "candidate_error_rate", e.Figure.Candidate.ErrorRate,
			"candidate_p99", e.Figure.Candidate.P99, "baseline_error_rate", e.Figure.Baseline.ErrorRate, "baseline_p99", e.Figure.Baseline.P99)
	}
	if kind == RolledBack {
		c.log.Warn("release "+kind, args...)
	} else {
		c.log.Info("release "+kind, args...)
	}
	// A span of its own: a release's events are no request's.
	_, span := c.tracer.Start(context.Background(), "wasmesh.release", trace.WithAttributes(
		attribute.String("wasmesh.service", r.Service), attribute.String("wasmesh.release.candidate", r.Candidate),
		attribute.String("wasmesh.release.baseline", r.Baseline)))
	span.AddEvent(kind, trace.WithAttributes(attribute.Int("wasmesh.release.step", e.Step),
		attribute.Int("wasmesh.release.weight", e.Weight), attribute.String("wasmesh.release.reason", reason)))
	span.End()
	if c.notifyEvent != nil {
		go c.notifyEvent(r.Service, e)
	}
	if r.Webhook != "" {
		go c.notify(r.Webhook, WebhookEvent{Service: r.Service, Baseline: r.Baseline, Candidate: r.Candidate, Phase: r.Phase, Event: e})
	}
}

// notify POSTs ev to url, trying again twice after a failure (a pause of
// 1 s, then 2 s), each try within 5 s; a failure is logged.
func (c *Controller) notify(url string, ev WebhookEvent) {
	body, _ := json.Marshal(ev)
	var err error
	for try := range 3 {
		if try > 0 {
			time.Sleep(time.Duration(try) * time.Second)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		var resp *http.Response
		if resp, err = webhookClient.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode < 300 {
				cancel()
				return
			}
			err = fmt.Errorf("answered %s", resp.Status)
		}
		cancel()
	}
	c.log.Warn("release: webhook not notified", "service", ev.Service, "event", ev.Kind, "webhook", url, "error", err)
}

var webhookClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Pause holds a running release at its step.
func (c *Controller) Pause(service string) (*Release, error) {
	return c.setPhase(service, Running, Paused, "paused")
}

// Resume lets a paused release go on, its step held again from then.
func (c *Controller) Resume(service string) (*Release, error) {
	return c.setPhase(service, Paused, Running, "resumed")
}

func (c *Controller) setPhase(service, from, to, kind string) (*Release, error) {
	action := map[string]string{Paused: ActionPause, Running: ActionResume}[to]
	if rel, elsewhere, err := c.atLeader(context.Background(), Request{Service: service, Action: action}); elsewhere {
		return rel, err
	}
	c.move.Lock()
	defer c.move.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.releases[service]
	if r == nil {
		return nil, fmt.Errorf("%w: no release of service %q", ErrNotFound, service)
	}
	if r.Phase != from {
		return nil, fmt.Errorf("%w: the release of service %q is %s, not %s", ErrConflict, service, r.Phase, from)
	}
	if w, want := candidateWeight(c.plane.Snapshot(), r), r.Steps[r.Step]; to == Running && w >= 0 && w != want {
		// Paused with another weight than its step's (changed by hand, or
		// a restart caught between the two): the step goes on at its own.
		ctx := c.writeCtx()
		c.mu.Unlock()
		_, err := c.traffic.Shift(ctx, service, r.Candidate, want)
		c.mu.Lock()
		if err != nil {
			return nil, fmt.Errorf("resuming the release of service %q: setting its candidate's weight to its step's %d: %w", service, want, err)
		}
		c.step.WithLabelValues(r.Service).Set(float64(want))
	}
	r.Phase = to
	if to == Running {
		r.StepStarted = time.Now()
		c.markStep(r)
	}
	c.event(r, kind, "")
	c.saveLocked()
	return r.clone(), nil
}

// Abort ends a running or paused release, the split it started from put
// back.
func (c *Controller) Abort(ctx context.Context, service string) (*Release, error) {
	return c.end(ctx, service, Aborted, "aborted by the operator")
}

// Promote ends a running or paused release at once, the candidate at 100.
func (c *Controller) Promote(ctx context.Context, service string) (*Release, error) {
	return c.end(ctx, service, Promoted, "promoted by the operator")
}

func (c *Controller) end(ctx context.Context, service, phase, reason string) (*Release, error) {
	action := map[string]string{Promoted: ActionPromote, Aborted: ActionAbort}[phase]
	if rel, elsewhere, err := c.atLeader(ctx, Request{Service: service, Action: action}); elsewhere {
		return rel, err
	}
	c.move.Lock()
	defer c.move.Unlock()
	c.mu.Lock()
	r := c.releases[service]
	over := r != nil && r.Phase != Running && r.Phase != Paused
	c.mu.Unlock()
	switch {
	case r == nil:
		return nil, fmt.Errorf("%w: no release of service %q", ErrNotFound, service)
	case over:
		return nil, fmt.Errorf("%w: the release of service %q is over (%s)", ErrConflict, service, r.Phase)
	}
	if err := c.finish(ctx, r, phase, reason, nil); err != nil {
		return nil, err
	}
	return c.Get(service)
}

// Get returns the release of service, with its figures so far (as last
// recorded, on a replica that does not lead releases).
func (c *Controller) Get(service string) (*Release, error) {
	if !c.leading.Load() {
		rec, err := c.recorded()
		if err != nil {
			return nil, err
		}
		if r := rec[service]; r != nil {
			return r, nil
		}
		return nil, fmt.Errorf("%w: no release of service %q", ErrNotFound, service)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.releases[service]
	if r == nil {
		return nil, fmt.Errorf("%w: no release of service %q", ErrNotFound, service)
	}
	if r.Phase == Running || r.Phase == Paused {
		r.Figures = c.figures(r)
	}
	return r.clone(), nil
}

// List returns every release, by service.
func (c *Controller) List() []*Release {
	if !c.leading.Load() {
		rec, err := c.recorded()
		if err != nil {
			c.log.Warn("release: the state could not be read", "error", err)
		}
		out := make([]*Release, 0, len(rec))
		for _, n := range slices.Sorted(maps.Keys(rec)) {
			out = append(out, rec[n])
		}
		return out
	}
	c.mu.Lock()
	names := make([]string, 0, len(c.releases))
	for n := range c.releases {
		names = append(names, n)
	}
	c.mu.Unlock()
	sort.Strings(names)
	out := make([]*Release, 0, len(names))
	for _, n := range names {
		if r, err := c.Get(n); err == nil {
			out = append(out, r)
		}
	}
	return out
}

func (r *Release) clone() *Release {
	cp := *r
	cp.Steps = slices.Clone(r.Steps)
	cp.History = slices.Clone(r.History)
	return &cp
}

// writeCtx is the context of a write the releases make outside a judge's
// (their state, a resume's weight): the lead's values, such as a fleet's
// fence that refuses a write once this replica's lease may be another's,
// without its end. c.mu held.
func (c *Controller) writeCtx() context.Context {
	if c.leadCtx != nil {
		return context.WithoutCancel(c.leadCtx)
	}
	return context.Background()
}

// saveLocked records the releases' state (atomically, in a file); a
// failure is logged (what it records has happened: the operation stands).
func (c *Controller) saveLocked() {
	if c.leadCtx != nil && c.leadCtx.Err() != nil {
		c.log.Warn("release: this replica no longer leads releases; state not saved (the leader's stands)")
		return
	}
	list := make([]*Release, 0, len(c.releases))
	for _, r := range c.releases {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Service < list[j].Service })
	ctx, cancel := context.WithTimeout(c.writeCtx(), 10*time.Second)
	defer cancel()
	if err := c.state.Save(ctx, list); err != nil {
		c.log.Error("release: state not saved", "state", c.state.Where(), "error", err)
	}
}
