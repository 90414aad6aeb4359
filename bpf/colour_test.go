package bpf

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestMark(t *testing.T) {
	for _, tc := range []struct {
		mask            uint32
		c               Colour
		value, wantMask uint32
		max             Colour
	}{
		{0, 5, 0x05000000, 0xff000000, 255},
		{0, 255, 0xff000000, 0xff000000, 255},
		{0x0000fff0, 7, 0x00000070, 0x0000fff0, 4095},
		{0x00ff0000, 0x57, 0x00570000, 0x00ff0000, 255},
		{0x0000000f, 3, 0x3, 0xf, 15},
		{0xffffffff, 0xffff, 0xffff, 0xffffffff, 0xffff},
	} {
		o := Options{MarkMask: tc.mask}
		if v, m := o.Mark(tc.c); v != tc.value || m != tc.wantMask {
			t.Errorf("mask %#x: Mark(%d) = %#x, %#x; want %#x, %#x", tc.mask, tc.c, v, m, tc.value, tc.wantMask)
		}
		if got := o.MaxColour(); got != tc.max {
			t.Errorf("mask %#x: MaxColour() = %d, want %d", tc.mask, got, tc.max)
		}
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"unknown mode", Options{Mode: "on"}, `mode "on"`},
		{"holes in the mask", Options{Mode: ModeOff, MarkMask: 0x00ff00ff}, "not contiguous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%+v) = %v, want an error with %q", tc.opts, err, tc.want)
			}
		})
	}
}

func TestSetColourRejects(t *testing.T) {
	col, err := New(Options{Mode: ModeOff, MarkMask: 0x0000000f})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	for _, tc := range []struct {
		c    Colour
		dscp int
		want string
	}{
		{16, -1, "colour 16: above 15"},
		{1, 64, "dscp 64"},
		{1, -2, "dscp -2"},
	} {
		if err := col.SetColour(nil, tc.c, tc.dscp); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetColour(%d, %d) = %v, want an error with %q", tc.c, tc.dscp, err, tc.want)
		}
	}
}

func TestFallbackCounts(t *testing.T) {
	col, err := New(Options{Mode: ModeOff})
	if err != nil {
		t.Fatal(err)
	}
	if col.Mode() != ModeFallback || col.Reason() == "" {
		t.Errorf("Mode() = %q, Reason() = %q", col.Mode(), col.Reason())
	}
	col.Count(3, Egress, 100)
	col.Count(3, Egress, 50)
	col.Count(3, Ingress, 7)
	col.Count(4, Ingress, 1)
	col.Count(0, Egress, 1000)       // uncoloured: not counted
	col.Count(3, Direction(9), 1000) // no such direction
	got, err := col.Counters()
	if err != nil {
		t.Fatal(err)
	}
	want := map[Colour]Counter{
		3: {EgressPackets: 2, EgressBytes: 150, IngressPackets: 1, IngressBytes: 7},
		4: {IngressPackets: 1, IngressBytes: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Counters() = %+v, want %+v", got, want)
	}
	if err := col.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := col.Counters(); !errors.Is(err, ErrClosed) {
		t.Errorf("Counters after Close: %v, want ErrClosed", err)
	}
	if err := col.SetColour(nil, 1, -1); !errors.Is(err, ErrClosed) {
		t.Errorf("SetColour after Close: %v, want ErrClosed", err)
	}
}
