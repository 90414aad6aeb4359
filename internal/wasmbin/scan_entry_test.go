package wasmbin

import (
	"slices"
	"testing"
)

// TestRecursionChecks: the calls before which the stop global is checked
// are those every cycle of calls passes through.
func TestRecursionChecks(t *testing.T) {
	call := func(at int, target uint32) callSite { return callSite{at, target} }
	tests := []struct {
		name     string
		imported int
		bodies   []funcBody
		want     [][]int
	}{
		{"a chain", 0, []funcBody{{calls: []callSite{call(1, 1)}}, {calls: []callSite{call(2, 2)}}, {}}, [][]int{nil, nil, nil}},
		{"calls itself", 0, []funcBody{{calls: []callSite{call(1, 1)}}, {calls: []callSite{call(5, 1), call(9, 0)}}, {}},
			[][]int{{1}, {5, 9}, nil}},
		{"a cycle of three, and one into it", 0,
			[]funcBody{{calls: []callSite{call(1, 1)}}, {calls: []callSite{call(2, 2)}}, {calls: []callSite{call(3, 3)}}, {calls: []callSite{call(4, 1)}}},
			[][]int{nil, {2}, {3}, {4}}},
		{"calls an import (index 0), and a call_indirect", 1,
			[]funcBody{{calls: []callSite{call(7, 0), call(3, 2)}, indirect: []int{5}}, {}},
			[][]int{{5, 7}, nil}},
		{"a call past the module's functions", 0, []funcBody{{calls: []callSite{call(1, 7)}}}, [][]int{nil}},
		{"a tree: each calls the next twice", 0,
			[]funcBody{{calls: []callSite{call(1, 1), call(2, 1)}}, {calls: []callSite{call(3, 2), call(4, 2)}}, {}},
			[][]int{nil, nil, nil}},
	}
	// The bodies that check at their entry: those that make two calls or
	// more that pass no check.
	fanOut := map[string][]bool{
		"calls itself":                                   {false, false, false},
		"a tree: each calls the next twice":              {true, true, false},
		"calls an import (index 0), and a call_indirect": {false, false},
	}
	for _, tt := range tests {
		recursionChecks(tt.bodies, tt.imported)
		for i, fb := range tt.bodies {
			if !slices.Equal(fb.sites, tt.want[i]) {
				t.Errorf("%s: body %d sites = %v, want %v", tt.name, i, fb.sites, tt.want[i])
			}
			if want, ok := fanOut[tt.name]; ok && fb.fanOut != want[i] {
				t.Errorf("%s: body %d checks at its entry %v, want %v", tt.name, i, fb.fanOut, want[i])
			}
		}
	}
}
