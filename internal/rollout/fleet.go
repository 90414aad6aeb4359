package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wasmesh/wasmesh/internal/atomicfile"
	"github.com/wasmesh/wasmesh/internal/dataplane"
)

// State keeps the releases' state where the controller that leads them
// next finds it: the store's directory for one gateway (the default), the
// services' status in the cluster for replicas (internal/kube).
type State interface {
	// Load reads every release recorded; none is no error.
	Load(ctx context.Context) ([]*Release, error)
	// Save records the releases, by service.
	Save(ctx context.Context, releases []*Release) error
	// Where names where the state is kept, for errors and logs.
	Where() string
}

// Count is what one replica has served of a version since it started:
// its errors and its latency histogram (the request count is the
// histogram's).
type Count struct {
	Errors  int64                     `json:"errors"`
	Latency dataplane.LatencySnapshot `json:"latency"`
}

// Fleet makes a controller one of several gateway replicas serving the
// same services (the cluster mode). Only the replica leading releases
// (Controller.Lead) changes them; the others answer their state from
// where it is kept and refuse to change it, naming the leader.
type Fleet struct {
	// State keeps the releases' state where every replica reads it.
	// Required.
	State State
	// Counts gives what each replica has served of a service's version,
	// by replica: the figures a step is judged on are their sum. Default:
	// this replica's own.
	Counts func(service, digest string) map[string]Count
	// Leader names the replica leading releases now ("" when none does).
	// Required.
	Leader func() string
	// Event, when set, is told each event of a release (after it is
	// recorded, apart from the release's own work). Default nil.
	Event func(service string, e Event)
	// Ask, when set, takes an operation on a service's release that a
	// replica not leading was asked for to the leader (a Request), and
	// returns the release as the leader left it, or the leader's error.
	// Default nil: such a replica refuses the operation, naming the
	// leader.
	Ask func(ctx context.Context, r Request) (*Release, error)
	// Requests gives the operations asked of the leader and not yet
	// answered; Answer records the leader's answer to one. Both with
	// Ask.
	Requests func() []Request
	Answer   func(ctx context.Context, r Request, err error)
}

// Request is an operation on a service's release, asked of the leader by
// another replica.
type Request struct {
	// ID tells one request from another.
	ID      string `json:"id"`
	Service string `json:"service"`
	// Action is start (with Spec), pause, resume, abort or promote.
	Action string `json:"action"`
	Spec   *Spec  `json:"spec,omitempty"`
	// By names the replica that asked.
	By string `json:"by,omitempty"`
}

// Actions of a Request.
const (
	ActionStart   = "start"
	ActionPause   = "pause"
	ActionResume  = "resume"
	ActionAbort   = "abort"
	ActionPromote = "promote"
)

// JoinFleet makes c one of a fleet's replicas: it leads releases only
// while Lead runs. Call it before LoadState, Lead or Run.
func (c *Controller) JoinFleet(f Fleet) {
	c.state = f.State
	if f.Counts != nil {
		c.counts = f.Counts
	}
	c.leader = f.Leader
	c.notifyEvent = f.Event
	c.fleet = f
	c.leading.Store(false)
	c.leadingGauge.Set(0)
}

// Lead drives the releases until ctx ends, as the fleet's leader: their
// state is read again (each running release goes on at the step it was
// at, saying that this replica took it over; a state that cannot be read
// is tried again every interval, no release judged meanwhile), then judged
// every interval. When ctx ends this replica stops leading at once: it
// refuses operations, saves no state, and forgets the releases (the next
// leader reads them from the state). Calls must not overlap.
func (c *Controller) Lead(ctx context.Context, interval time.Duration) {
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	c.leadCtx = ctx
	c.mu.Unlock()
	c.leading.Store(true)
	c.leadingGauge.Set(1)
	stop := context.AfterFunc(ctx, func() { c.leading.Store(false); c.leadingGauge.Set(0) })
	defer func() {
		stop()
		c.leading.Store(false)
		c.leadingGauge.Set(0)
		c.move.Lock()
		c.mu.Lock()
		c.releases = map[string]*Release{}
		c.mu.Unlock()
		c.move.Unlock()
	}()
	c.declaredGen.Store(0) // the declared releases looked at again
	for {
		err := c.load(ctx, "taken over by this replica, now leading releases")
		if err == nil {
			break
		}
		c.log.Error("release: the state could not be read; releases wait for it", "state", c.state.Where(), "error", err, "retry", interval)
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
	c.Run(ctx, interval)
}

// follower is nil when c may change releases, else the error that says
// which replica may.
func (c *Controller) follower() error {
	if c.leading.Load() {
		return nil
	}
	who := "none now (a replica takes the lead within the lease's duration)"
	if c.leader != nil {
		if l := c.leader(); l != "" {
			who = "replica " + l
		}
	}
	return fmt.Errorf("%w: this replica does not lead releases; the leader is %s: ask it, or declare the release in the service's release block", ErrConflict, who)
}

// atLeader takes r to the leader when this replica does not lead:
// elsewhere, with the leader's answer, or with the error that names the
// leader when the fleet cannot ask it.
func (c *Controller) atLeader(ctx context.Context, r Request) (rel *Release, elsewhere bool, err error) {
	switch {
	case c.leading.Load():
		return nil, false, nil
	case c.fleet.Ask != nil:
		rel, err = c.fleet.Ask(ctx, r)
		return rel, true, err
	default:
		return nil, true, c.follower()
	}
}

// answerRequests does, as the leader, what the other replicas were asked,
// and records each answer.
func (c *Controller) answerRequests(ctx context.Context) {
	if c.fleet.Requests == nil {
		return
	}
	for _, r := range c.fleet.Requests() {
		var err error
		switch r.Action {
		case ActionStart:
			if r.Spec == nil {
				err = fmt.Errorf("%w: start without a spec", ErrInvalid)
				break
			}
			spec := *r.Spec
			spec.Service = r.Service
			_, err = c.Start(ctx, spec)
		case ActionPause:
			_, err = c.Pause(r.Service)
		case ActionResume:
			_, err = c.Resume(r.Service)
		case ActionAbort:
			_, err = c.Abort(ctx, r.Service)
		case ActionPromote:
			_, err = c.Promote(ctx, r.Service)
		default:
			err = fmt.Errorf("%w: unknown action %q", ErrInvalid, r.Action)
		}
		c.log.Info("release: request answered", "service", r.Service, "action", r.Action, "by", r.By, "error", err)
		c.fleet.Answer(ctx, r, err)
	}
}

// recorded is the releases' state as recorded, by service: what a replica
// that does not lead them answers with.
func (c *Controller) recorded() (map[string]*Release, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := c.state.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("the releases' state (%s) could not be read: %w", c.state.Where(), err)
	}
	out := map[string]*Release{}
	for _, r := range list {
		out[r.Service] = r
	}
	return out, nil
}

// Count is what this replica has served of a service's version since it
// started.
func (c *Controller) Count(service, digest string) Count {
	s := c.plane.Stats(service, digest)
	return Count{Errors: s.Errors.Load(), Latency: s.Latency.Snapshot()}
}

// localCounts are this replica's own counts of a version, alone.
func (c *Controller) localCounts(service, digest string) map[string]Count {
	return map[string]Count{"": c.Count(service, digest)}
}

// fileState keeps the releases in StateFile beside the store of the
// config being served.
type fileState struct{ plane *dataplane.Plane }

func (f fileState) file() (string, error) {
	st := f.plane.Snapshot()
	if st == nil {
		return "", errors.New("no config loaded")
	}
	return filepath.Join(filepath.Dir(filepath.Clean(st.Config.Store)), StateFile), nil
}

func (f fileState) Where() string {
	file, err := f.file()
	if err != nil {
		return StateFile
	}
	return file
}

func (f fileState) Load(context.Context) ([]*Release, error) {
	file, err := f.file()
	if err != nil {
		return nil, nil // no store yet: nothing to resume
	}
	data, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var saved []*Release
	if err := json.Unmarshal(data, &saved); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return saved, nil
}

func (f fileState) Save(_ context.Context, releases []*Release) error {
	data, err := json.MarshalIndent(releases, "", "  ")
	if err != nil {
		return err
	}
	file, err := f.file()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(file, data, 0o644, "")
}
