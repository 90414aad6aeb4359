package control

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/wasmesh/wasmesh/config"
)

// SetLane writes lane into the config file, adding it (create) or
// replacing the lane of that name (not create), and reloads: the change
// swaps atomically with the rest of the config. An unknown lane for an
// update, or a lane that exists for a create, is an error wrapping
// ErrNotFound or ErrExists.
func (c *Controller) SetLane(ctx context.Context, lane *config.Lane, create bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.plane.Snapshot()
	if st == nil {
		return errors.New("no config loaded")
	}
	_, exists := st.Config.Lanes[lane.Name]
	switch {
	case create && exists:
		return fmt.Errorf("%w: lane %q (update it instead)", ErrExists, lane.Name)
	case !create && !exists:
		return fmt.Errorf("%w: lane %q", ErrNotFound, lane.Name)
	}
	if err := c.laneGuardedLocked(lane.Name); err != nil {
		return err
	}
	if err := c.refusedEditLocked(); err != nil {
		return err
	}
	data, err := config.SetLane(st.Config.Raw, lane)
	if err != nil {
		return err
	}
	if err := c.commitLocked(ctx, st, data); err != nil {
		return err
	}
	c.log.Info("lane set", "lane", lane.Name, "versions", lane.Versions, "generation", c.plane.Snapshot().Gen)
	return nil
}

// laneGuardedLocked is the lane guard's error for an edit of lane, c.mu
// held.
func (c *Controller) laneGuardedLocked(lane string) error {
	if c.laneGuardLocked == nil {
		return nil
	}
	return c.laneGuardLocked(lane)
}

// DeleteLane removes a lane from the config file and reloads.
func (c *Controller) DeleteLane(ctx context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.plane.Snapshot()
	if st == nil {
		return errors.New("no config loaded")
	}
	if _, ok := st.Config.Lanes[name]; !ok {
		return fmt.Errorf("%w: lane %q", ErrNotFound, name)
	}
	if err := c.laneGuardedLocked(name); err != nil {
		return err
	}
	if err := c.refusedEditLocked(); err != nil {
		return err
	}
	data, err := config.DeleteLane(st.Config.Raw, name)
	if err != nil {
		return err
	}
	if err := c.commitLocked(ctx, st, data); err != nil {
		return err
	}
	c.log.Info("lane deleted", "lane", name, "generation", c.plane.Snapshot().Gen)
	return nil
}

// SetLaneVersion makes ref (a version's name or digest prefix) the lane's
// version of service, or takes the service out of the lane when ref is
// "", and reloads; the rest of the lane is kept. An unknown lane is an
// error wrapping ErrNotFound.
func (c *Controller) SetLaneVersion(ctx context.Context, lane, service, ref string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.plane.Snapshot()
	if st == nil {
		return errors.New("no config loaded")
	}
	cur := st.Config.Lanes[lane]
	if cur == nil {
		return fmt.Errorf("%w: lane %q", ErrNotFound, lane)
	}
	if cur.Versions[service] == ref {
		return nil
	}
	l := *cur
	l.Versions = maps.Clone(cur.Versions)
	if l.Versions == nil {
		l.Versions = map[string]string{}
	}
	if ref == "" {
		delete(l.Versions, service)
	} else {
		l.Versions[service] = ref
	}
	data, err := config.SetLane(st.Config.Raw, &l)
	if err != nil {
		return err
	}
	if err := c.commitLocked(ctx, st, data); err != nil {
		return err
	}
	c.log.Info("lane set", "lane", lane, "service", service, "version", ref, "generation", c.plane.Snapshot().Gen)
	return nil
}
