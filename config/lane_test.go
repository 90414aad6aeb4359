package config

import (
	"strings"
	"testing"
	"time"
)

const laneServices = `services:
  users:
    versions:
      - { path: a.wasm, weight: 100 }
      - { path: b.wasm, name: v2, weight: 0 }
  orders:
    versions: [ { module: "sha256:0123456789abcdef", weight: 100 } ]
`

func TestLanes(t *testing.T) {
	cfg := mustParse(t, laneServices+`lanes:
  v2:
    mode: strict
    versions: { users: v2, orders: "sha256:01234567" }
    entry:
      - header: X-Lane=v2
      - cookie: "lane = v2"
      - { share: 5%, key: "header:X-User" }
    evict: { error_rate: 30%, window: 10s, min_requests: 5 }
  quiet:
    versions: { users: v2 }
    evict: off
`)
	v2 := cfg.Lanes["v2"]
	if v2 == nil || !v2.Strict || v2.Versions["users"] != "v2" || v2.Versions["orders"] != "sha256:01234567" || v2.Line != 9 {
		t.Fatalf("lane v2: %+v", v2)
	}
	wantEntry := []LaneEntry{
		{Kind: "header", Name: "X-Lane", Value: "v2"},
		{Kind: "cookie", Name: "lane", Value: "v2"},
		{Kind: "share", Share: 5, Key: Sticky{Kind: "header", Name: "X-User"}},
	}
	if len(v2.Entry) != len(wantEntry) {
		t.Fatalf("entry: %+v", v2.Entry)
	}
	for i, e := range wantEntry {
		if v2.Entry[i] != e {
			t.Errorf("entry[%d] = %+v, want %+v", i, v2.Entry[i], e)
		}
	}
	if want := (Evict{ErrorRate: 0.3, Window: 10 * time.Second, MinRequests: 5}); v2.Evict != want {
		t.Errorf("evict = %+v, want %+v", v2.Evict, want)
	}
	quiet := cfg.Lanes["quiet"]
	if quiet.Strict || !quiet.Evict.Off || len(quiet.Entry) != 0 {
		t.Errorf("lane quiet: %+v", quiet)
	}
	if got := cfg.LaneNames(); strings.Join(got, ",") != "quiet,v2" {
		t.Errorf("LaneNames = %v", got)
	}
	d := mustParse(t, laneServices+"lanes:\n  x: { versions: { users: v2 } }\n").Lanes["x"].Evict
	if d != (Evict{ErrorRate: DefaultEvictErrorRate, Window: DefaultEvictWindow, MinRequests: DefaultEvictMinRequests}) {
		t.Errorf("default evict = %+v", d)
	}
}

func TestLaneErrors(t *testing.T) {
	tests := []struct {
		name, lanes string
		want        []string
	}{
		{"unknown service", "lanes:\n  v2: { versions: { userz: v2 } }\n",
			[]string{`wasmesh.yaml:9:28: lanes.v2.versions.userz: unknown service "userz" (did you mean "users"?)`}},
		{"unknown version", "lanes:\n  v2: { versions: { users: v3 } }\n",
			[]string{`wasmesh.yaml:9:28: lanes.v2.versions.users: service "users" has no version "v3": a lane names a version by its name or a digest prefix of its module (did you mean "v2"?)`}},
		{"unknown digest", "lanes:\n  v2: { versions: { orders: \"sha256:ffffffff\" } }\n",
			[]string{`lanes.v2.versions.orders: service "orders" has no version "sha256:ffffffff"`}},
		{"bad mode", "lanes:\n  v2: { mode: lax, versions: { users: v2 } }\n",
			[]string{`wasmesh.yaml:9:15: lanes.v2.mode: must be "permissive" or "strict", got "lax"`}},
		{"bad name", "lanes:\n  \"v 2\": { versions: { users: v2 } }\n",
			[]string{`lanes: invalid lane name "v 2"`}},
		{"header without value", "lanes:\n  v2: { versions: { users: v2 }, entry: [ { header: X-Lane } ] }\n",
			[]string{`lanes.v2.entry[0].header: must be NAME=VALUE, got "X-Lane"`}},
		{"share out of range", "lanes:\n  v2: { versions: { users: v2 }, entry: [ { share: 0, key: \"header:X\" } ] }\n",
			[]string{`lanes.v2.entry[0].share: must be a percentage above 0 and at most 100, got "0"`}},
		{"share without key", "lanes:\n  v2: { versions: { users: v2 }, entry: [ { share: 5 } ] }\n",
			[]string{`lanes.v2.entry[0]: share needs a key`}},
		{"key without share", "lanes:\n  v2: { versions: { users: v2 }, entry: [ { header: a=b, key: \"header:X\" } ] }\n",
			[]string{`lanes.v2.entry[0].key: goes with share only`}},
		{"two rules in one", "lanes:\n  v2: { versions: { users: v2 }, entry: [ { header: a=b, cookie: c=d } ] }\n",
			[]string{`lanes.v2.entry[0]: set exactly one of header, cookie or share`}},
		{"bad key", "lanes:\n  v2: { versions: { users: v2 }, entry: [ { share: 5, key: \"query:x\" } ] }\n",
			[]string{`lanes.v2.entry[0].key: must be "header:<name>" or "cookie:<name>", got "query:x"`}},
		{"bad evict", "lanes:\n  v2: { versions: { users: v2 }, evict: sometimes }\n",
			[]string{`lanes.v2.evict: must be "off" or a mapping`}},
		{"bad error rate", "lanes:\n  v2: { versions: { users: v2 }, evict: { error_rate: 150% } }\n",
			[]string{`lanes.v2.evict.error_rate: must be a fraction in (0, 1] or a percentage ("20%"), got "150%"`}},
		{"short window", "lanes:\n  v2: { versions: { users: v2 }, evict: { window: 10ms } }\n",
			[]string{`lanes.v2.evict.window: must be at least 1s, got 10ms`}},
		{"lane_peers without tls", "lane_peers: [ \"spiffe://example.org/gw\" ]\n",
			[]string{`wasmesh.yaml:8:13: lane_peers: needs a tls block`}},
		{"bad lane peer", "lane_peers: [ \"http://gw\" ]\n",
			[]string{`lane_peers: needs a tls block`, `lane_peers[0]:`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("wasmesh.yaml", []byte(laneServices+tt.lanes))
			if err == nil {
				t.Fatalf("Parse succeeded, want %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) < len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d is\n%s\nwant it to contain\n%s", i, lines[i], w)
				}
			}
		})
	}
}

// TestSetLane: a lane written by SetLane parses back to the same lane, an
// update replaces it, DeleteLane removes it, and an edit that would make
// the config invalid is refused with the reason.
func TestSetLane(t *testing.T) {
	src := []byte(laneServices + "# the routes\nroutes:\n  - { match: { path_prefix: / }, service: users }\n")
	lane := &Lane{Name: "v2", Strict: true, Versions: map[string]string{"users": "v2", "orders": "sha256:01234567"},
		Entry: []LaneEntry{{Kind: "header", Name: "X-Lane", Value: "v2"}, {Kind: "share", Share: 2.5, Key: Sticky{Kind: "cookie", Name: "uid"}}},
		Evict: Evict{ErrorRate: 0.3, Window: time.Minute, MinRequests: 50}}
	out, err := SetLane(src, lane)
	if err != nil {
		t.Fatal(err)
	}
	got := mustParse(t, string(out)).Lanes["v2"]
	if got == nil || !got.Strict || len(got.Versions) != 2 || got.Versions["orders"] != "sha256:01234567" ||
		len(got.Entry) != 2 || got.Entry[1] != lane.Entry[1] || got.Evict != lane.Evict {
		t.Fatalf("parsed back: %+v\n%s", got, out)
	}
	if !strings.Contains(string(out), "# the routes") {
		t.Errorf("the comment was lost:\n%s", out)
	}
	update := &Lane{Name: "v2", Versions: map[string]string{"users": "v2"}, Evict: Evict{Off: true}}
	if out, err = SetLane(out, update); err != nil {
		t.Fatal(err)
	}
	if got := mustParse(t, string(out)).Lanes["v2"]; got.Strict || len(got.Versions) != 1 || len(got.Entry) != 0 || !got.Evict.Off {
		t.Fatalf("after the update: %+v\n%s", got, out)
	}
	if _, err := SetLane(out, &Lane{Name: "bad", Versions: map[string]string{"users": "v9"}}); err == nil ||
		!strings.Contains(err.Error(), `lanes.bad.versions.users: service "users" has no version "v9"`) {
		t.Errorf("an unknown version: %v", err)
	}
	if out, err = DeleteLane(out, "v2"); err != nil {
		t.Fatal(err)
	}
	if cfg := mustParse(t, string(out)); len(cfg.Lanes) != 0 || strings.Contains(string(out), "lanes:") {
		t.Errorf("after DeleteLane of the last lane: %v\n%s", cfg.LaneNames(), out)
	}
	if _, err := DeleteLane(out, "v2"); err == nil || !strings.Contains(err.Error(), `no lane "v2"`) {
		t.Errorf("deleting a lane twice: %v", err)
	}
}
