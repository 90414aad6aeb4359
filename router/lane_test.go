package router

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
)

const laneConfig = `services:
  users:
    sticky: header:X-User
    versions:
      - { module: "sha256:4f9c0a1b", weight: 100, name: stable }
      - { path: users-v2.wasm, weight: 0, name: v2 }
  orders:
    versions:
      - { path: orders.wasm, weight: 100, name: stable }
      - { path: orders-v2.wasm, weight: 0, name: v2 }
  billing:
    versions: [ { path: billing.wasm, name: stable } ]
lanes:
  v2:
    versions: { users: v2, orders: v2 }
    entry:
      - header: X-Lane=v2
      - cookie: lane=v2
      - { share: 5, key: "header:X-User" }
  strict:
    mode: strict
    versions: { users: v2 }
    entry: [ { header: X-Lane=strict } ]
`

// TestSelectLane: the selection order is pin, lane, sticky, weighted; a
// permissive lane without a version of the service, or with its version
// evicted, falls back to the baseline, a strict one refuses.
func TestSelectLane(t *testing.T) {
	tab := mustTable(t, laneConfig)
	cfg := tab.Config()
	users, orders := cfg.Services["users"], cfg.Services["orders"]
	v2, strict := tab.Lane("v2"), tab.Lane("strict")
	tests := []struct {
		name    string
		svc     string
		lane    string
		headers []string
		want    string // version name, or "refused"
	}{
		{"no lane: weights", "users", "", nil, "stable"},
		{"no lane: sticky", "users", "", []string{"X-User: 42"}, "stable"},
		{"lane version", "users", "v2", nil, "v2"},
		{"lane before sticky", "users", "v2", []string{"X-User: 42"}, "v2"},
		{"pin before lane", "users", "v2", []string{"X-Wasmesh-Version: stable"}, "stable"},
		{"lane of another service", "orders", "v2", nil, "v2"},
		{"permissive, no version", "billing", "v2", nil, "stable"},
		{"strict, no version", "orders", "strict", nil, "refused"},
		{"strict, pinned", "orders", "strict", []string{"X-Wasmesh-Version: stable"}, "stable"},
		{"strict, version", "users", "strict", nil, "v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cfg.Services[tt.svc]
			var lane *Lane
			switch tt.lane {
			case "v2":
				lane = v2
			case "strict":
				lane = strict
			}
			v, err := Select(s, request("GET", "/", tt.headers...), lane)
			got := "refused"
			if err == nil {
				got = v.Name
			} else if !errors.Is(err, ErrLaneRefused) {
				t.Fatalf("Select: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %s, want %s (err %v)", got, tt.want, err)
			}
		})
	}

	// Evicted: the permissive lane falls back, the strict one refuses.
	if !v2.SetEvicted("users", true) || !strict.SetEvicted("users", true) {
		t.Fatal("SetEvicted: the lanes have a version of users")
	}
	if v, err := Select(users, request("GET", "/"), v2); err != nil || v.Name != "stable" {
		t.Errorf("evicted, permissive: %v, %v", v, err)
	}
	if _, err := Select(users, request("GET", "/"), strict); !errors.Is(err, ErrLaneRefused) {
		t.Errorf("evicted, strict: %v, want ErrLaneRefused", err)
	}
	if v, err := Select(orders, request("GET", "/"), v2); err != nil || v.Name != "v2" {
		t.Errorf("orders' lane version is not evicted: %v, %v", v, err)
	}
	if v2.SetEvicted("billing", true) {
		t.Error("SetEvicted of a service the lane has no version of reported true")
	}

	// A table that shares the flag of a lane version sees its eviction.
	next := mustTable(t, laneConfig)
	var flag atomic.Bool
	if !next.Lane("v2").UseEviction("users", &flag) || next.Lane("v2").UseEviction("billing", &flag) {
		t.Fatal("UseEviction: the lane has a version of users, and none of billing")
	}
	flag.Store(true)
	if !next.Lane("v2").Evicted("users") || next.Lane("v2").Evicted("orders") {
		t.Errorf("shared flag: users %v, orders %v", next.Lane("v2").Evicted("users"), next.Lane("v2").Evicted("orders"))
	}
	v2.SetEvicted("users", false)
	if v, _ := Select(users, request("GET", "/"), v2); v.Name != "v2" {
		t.Errorf("admitted again: %s", v.Name)
	}
}

func TestEnter(t *testing.T) {
	tab := mustTable(t, laneConfig)
	tests := []struct {
		headers []string
		want    string
	}{
		{nil, ""},
		{[]string{"X-Lane: v2"}, "v2"},
		{[]string{"X-Lane: strict"}, "strict"},
		{[]string{"X-Lane: v3"}, ""},
		{[]string{"Cookie: a=b; lane=v2"}, "v2"},
		{[]string{"Cookie: lane=v3"}, ""},
		{[]string{"X-Lane: other", "X-Lane: v2"}, "v2"},
	}
	for _, tt := range tests {
		got := ""
		if l := tab.Enter(request("GET", "/", tt.headers...)); l != nil {
			got = l.Name
		}
		if got != tt.want {
			t.Errorf("Enter(%q) = %q, want %q", tt.headers, got, tt.want)
		}
	}
	if tab := mustTable(t, svc); tab.Enter(request("GET", "/", "X-Lane: v2")) != nil {
		t.Error("a config without lanes entered one")
	}
}

// TestEnterShare: of 10,000 distinct keys, the share entering the lane is
// within ±1% of the configured 5%, and every key enters the same lane in a
// table built apart (another replica, or after a restart).
func TestEnterShare(t *testing.T) {
	a, b := mustTable(t, laneConfig), mustTable(t, laneConfig)
	const n = 10000
	in := 0
	for i := range n {
		key := fmt.Sprintf("X-User: user-%d", i)
		la, lb := a.Enter(request("GET", "/", key)), b.Enter(request("GET", "/", key))
		if (la == nil) != (lb == nil) {
			t.Fatalf("key %d: lane %v on one table, %v on the other", i, la, lb)
		}
		if la != nil {
			in++
		}
	}
	if share := 100 * float64(in) / n; math.Abs(share-5) > 1 {
		t.Errorf("%.2f%% of keys entered the lane, want 5%% ± 1%%", share)
	}
	// Raising the share keeps the keys that were in: they only join.
	wider := mustTable(t, strings.Replace(laneConfig, "share: 5,", "share: 20,", 1))
	for i := range n {
		r := request("GET", "/", fmt.Sprintf("X-User: user-%d", i))
		if a.Enter(r) != nil && wider.Enter(r) == nil {
			t.Fatalf("key %d left the lane when its share grew", i)
		}
	}
}
