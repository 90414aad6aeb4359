package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"

	adminapi "github.com/wasmesh/wasmesh/internal/admin"
	"github.com/wasmesh/wasmesh/modules"
)

// laneCmd manages a running gateway's traffic lanes; every change is
// written back to its config file, like deploy.
func laneCmd(ctx context.Context, args []string, stdout io.Writer) error {
	subs := map[string]func(context.Context, []string, io.Writer) error{
		"list": laneList, "show": laneShow, "create": laneCreate, "update": laneUpdate, "delete": laneDelete, "admit": laneAdmit,
	}
	return subcommands(ctx, "lane", "", []string{"list", "show", "create", "update", "delete", "admit"}, subs, args, stdout)
}

func laneList(ctx context.Context, args []string, stdout io.Writer) error {
	c, output, err := readerCmd("lane list", args)
	if err != nil {
		return err
	}
	var lanes []adminapi.LaneStatus
	if err := c.do(ctx, "GET", "/v1/lanes", "", nil, &lanes); err != nil {
		return err
	}
	if output == "json" {
		return writeJSON(stdout, lanes)
	}
	return printLanes(stdout, lanes)
}

// printLanes writes one line per lane and service: the lane's version
// there and whether it is evicted, with the lane's mode and entry rules.
func printLanes(w io.Writer, lanes []adminapi.LaneStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LANE\tMODE\tSERVICE\tVERSION\tSTATE\tENTRY")
	for _, l := range lanes {
		entry := dash(describeEntry(l.Entry))
		if len(l.Services) == 0 { // a lane only entered here, its versions elsewhere
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t%s\n", l.Name, l.Mode, entry)
		}
		for _, s := range l.Services {
			state := "in"
			if s.Evicted {
				state = "EVICTED"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s sha256:%s\t%s\t%s\n", l.Name, l.Mode, s.Service, l.Versions[s.Service], modules.Short(s.Version), state, entry)
			entry = ""
		}
	}
	return tw.Flush()
}

func describeEntry(es []adminapi.LaneEntrySpec) string {
	var parts []string
	for _, e := range es {
		switch {
		case e.Header != "":
			parts = append(parts, "header "+e.Header)
		case e.Cookie != "":
			parts = append(parts, "cookie "+e.Cookie)
		default:
			parts = append(parts, fmt.Sprintf("%g%% of %s", e.Share, e.Key))
		}
	}
	return strings.Join(parts, ", ")
}

func laneShow(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("lane show", "LANE [-o json]")
	admin := adminFlag(fs)
	output := outputFlag(fs, "table", "json")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("want: wasmesh lane show LANE")
	}
	c, err := admin.client()
	if err != nil {
		return err
	}
	var l adminapi.LaneStatus
	if err := c.do(ctx, "GET", "/v1/lanes/"+pos[0], "", nil, &l); err != nil {
		return err
	}
	if *output == "json" {
		return writeJSON(stdout, l)
	}
	return printLanes(stdout, []adminapi.LaneStatus{l})
}

// laneFlags are the flags that describe a lane for create and update.
type laneFlags struct {
	fs                         *flag.FlagSet
	versions, entries, cookies repeated
	mode, share, evict         *string
}

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

func newLaneFlags(name string) *laneFlags {
	args := "LANE --version SERVICE=VERSION... [flags]"
	if name == "lane update" {
		args = "LANE [flags]" // a lane's versions stay unless given
	}
	f := &laneFlags{fs: newFlags(name, args)}
	f.fs.Var(&f.versions, "version", "SERVICE=VERSION: the lane's version of a service, by name or digest prefix (repeat; with update, SERVICE= removes the service)")
	f.fs.Var(&f.entries, "header", "NAME=VALUE: requests with this header enter the lane (repeat)")
	f.fs.Var(&f.cookies, "cookie", "NAME=VALUE: requests with this cookie enter the lane (repeat)")
	f.mode = f.fs.String("mode", "", `"permissive" (default for create: a service without a version in the lane serves its baseline) or "strict" (it answers 503)`)
	f.share = f.fs.String("share", "", "PERCENT:header:NAME or PERCENT:cookie:NAME: that share of the key's values enters the lane, the same on every replica")
	f.evict = f.fs.String("evict", "", `"off", or ERROR_RATE,WINDOW,MIN_REQUESTS (e.g. 20%,30s,20): when the lane's version is taken out for failing`)
	return f
}

// apply sets on spec what the flags say; entry flags replace all the rules.
func (f *laneFlags) apply(spec *adminapi.LaneSpec) error {
	if spec.Versions == nil {
		spec.Versions = map[string]string{}
	}
	for _, v := range f.versions {
		svc, ver, ok := strings.Cut(v, "=")
		if !ok || svc == "" {
			return usageError("--version %q: want SERVICE=VERSION", v)
		}
		if ver == "" {
			delete(spec.Versions, svc)
		} else {
			spec.Versions[svc] = ver
		}
	}
	if *f.mode != "" {
		spec.Mode = *f.mode
	}
	if len(f.entries)+len(f.cookies) > 0 || *f.share != "" {
		spec.Entry = nil
		for _, h := range f.entries {
			if !strings.Contains(h, "=") {
				return usageError("--header %q: want NAME=VALUE", h)
			}
			spec.Entry = append(spec.Entry, adminapi.LaneEntrySpec{Header: h})
		}
		for _, c := range f.cookies {
			if !strings.Contains(c, "=") {
				return usageError("--cookie %q: want NAME=VALUE", c)
			}
			spec.Entry = append(spec.Entry, adminapi.LaneEntrySpec{Cookie: c})
		}
		if *f.share != "" {
			pct, key, ok := strings.Cut(*f.share, ":")
			var share float64
			if _, err := fmt.Sscanf(strings.TrimSuffix(pct, "%"), "%g", &share); err != nil || !ok {
				return usageError("--share %q: want PERCENT:header:NAME or PERCENT:cookie:NAME", *f.share)
			}
			if share == 0 {
				return usageError("--share %q: the percentage must be above 0", *f.share)
			}
			spec.Entry = append(spec.Entry, adminapi.LaneEntrySpec{Share: share, Key: key})
		}
	}
	switch ev := *f.evict; {
	case ev == "off":
		spec.Evict = &adminapi.EvictSpec{Off: true}
	case ev != "":
		parts := strings.Split(ev, ",")
		if len(parts) != 3 {
			return usageError(`--evict %q: want "off" or ERROR_RATE,WINDOW,MIN_REQUESTS`, ev)
		}
		e := &adminapi.EvictSpec{Window: parts[1]}
		rate := strings.TrimSuffix(parts[0], "%")
		if _, err := fmt.Sscanf(rate, "%g", &e.ErrorRate); err != nil {
			return usageError("--evict: error rate %q: %v", parts[0], err)
		}
		if strings.HasSuffix(parts[0], "%") {
			e.ErrorRate /= 100
		}
		if _, err := fmt.Sscanf(parts[2], "%d", &e.MinRequests); err != nil {
			return usageError("--evict: min requests %q: %v", parts[2], err)
		}
		// Zero is each one's default when left out of the spec, which the
		// server cannot tell from a 0 given here.
		switch {
		case e.ErrorRate == 0:
			return usageError("--evict: error rate %q: must be above 0", parts[0])
		case e.MinRequests == 0:
			return usageError("--evict: min requests %q: must be at least 1", parts[2])
		}
		spec.Evict = e
	}
	return nil
}

func laneCreate(ctx context.Context, args []string, stdout io.Writer) error {
	f := newLaneFlags("lane create")
	admin := adminFlag(f.fs)
	pos, err := parse(f.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("want: wasmesh lane create LANE --version SERVICE=VERSION...")
	}
	spec := adminapi.LaneSpec{Name: pos[0]}
	if err := f.apply(&spec); err != nil {
		return err
	}
	c, err := admin.client()
	if err != nil {
		return err
	}
	return c.sendLane(ctx, "POST", "/v1/lanes", spec, stdout)
}

// laneUpdate changes what its flags say of an existing lane and keeps the
// rest.
func laneUpdate(ctx context.Context, args []string, stdout io.Writer) error {
	f := newLaneFlags("lane update")
	admin := adminFlag(f.fs)
	pos, err := parse(f.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("want: wasmesh lane update LANE [--version SERVICE=VERSION...] [flags]")
	}
	c, err := admin.client()
	if err != nil {
		return err
	}
	var cur adminapi.LaneStatus
	if err := c.do(ctx, "GET", "/v1/lanes/"+pos[0], "", nil, &cur); err != nil {
		return err
	}
	spec := cur.LaneSpec
	spec.Versions = maps.Clone(spec.Versions)
	spec.Entry = slices.Clone(spec.Entry)
	if err := f.apply(&spec); err != nil {
		return err
	}
	return c.sendLane(ctx, "PUT", "/v1/lanes/"+pos[0], spec, stdout)
}

func (c *adminClient) sendLane(ctx context.Context, method, path string, spec adminapi.LaneSpec, stdout io.Writer) error {
	body, _ := json.Marshal(spec)
	var l adminapi.LaneStatus
	if err := c.do(ctx, method, path, "application/json", bytes.NewReader(body), &l); err != nil {
		return err
	}
	return printLanes(stdout, []adminapi.LaneStatus{l})
}

func laneDelete(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("lane delete", "LANE")
	admin := adminFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("want: wasmesh lane delete LANE")
	}
	c, err := admin.client()
	if err != nil {
		return err
	}
	if err := c.do(ctx, "DELETE", "/v1/lanes/"+pos[0], "", http.NoBody, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deleted lane %s\n", pos[0])
	return nil
}

// laneAdmit puts a lane's evicted version of a service back in the lane.
func laneAdmit(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("lane admit", "LANE SERVICE")
	admin := adminFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("want: wasmesh lane admit LANE SERVICE")
	}
	c, err := admin.client()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(adminapi.AdmitRequest{Service: pos[1]})
	var l adminapi.LaneStatus
	if err := c.do(ctx, "POST", "/v1/lanes/"+pos[0]+"/admit", "application/json", bytes.NewReader(body), &l); err != nil {
		return err
	}
	return printLanes(stdout, []adminapi.LaneStatus{l})
}
