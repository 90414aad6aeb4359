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
	}
	for _, tt := range tests {
		recursionChecks(tt.bodies, tt.imported)
		for i, fb := range tt.bodies {
			if !slices.Equal(fb.sites, tt.want[i]) {
				t.Errorf("%s: body %d sites = %v, want %v", tt.name, i, fb.sites, tt.want[i])
			}
		}
	}
}
