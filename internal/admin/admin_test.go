package admin

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wasmesh/wasmesh/internal/rollout"
)

// TestReadJSONEmpty: a call whose body is missing is told so, with the
// fields it takes, not "EOF"; an error's text is written as is (no
// \u003c for a <).
func TestReadJSONEmpty(t *testing.T) {
	var body struct {
		Module string `json:"module"`
		Weight int    `json:"weight,omitempty"`
		Name   string `json:"name"`
	}
	w := httptest.NewRecorder()
	if readJSON(w, httptest.NewRequest("POST", "/v1/services/x/deploy", strings.NewReader(" \n")), &body) {
		t.Fatal("an empty body was taken")
	}
	if got := w.Body.String(); w.Code != 400 || !strings.Contains(got, "the body is empty: want a JSON object (fields module, weight, name)") {
		t.Errorf("%d %s", w.Code, got)
	}
	w = httptest.NewRecorder()
	writeError(w, 401, errString("Authorization: Bearer <token>"))
	if got := w.Body.String(); !strings.Contains(got, "Bearer <token>") {
		t.Errorf("the error written as %s", got)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// TestReadJSONWrongType: a field of the wrong type is named, with what it
// must be (a release's hold, a duration, among them).
func TestReadJSONWrongType(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"service":"s","version":"v","hold":"30"}`, `hold: "30" is not a duration such as "30s"`},
		{`{"service":"s","version":"v","hold":30}`, `hold: 30 is not a duration such as "30s"`},
		{`{"service":"s","version":"v","min_requests":"many"}`, `min_requests: string is not a whole number in range`},
		{`{"service":"s","version":"v","max_error_rate":true}`, `max_error_rate: bool is not a number`},
		{`{"service":"s","version":"v","steps":5}`, `steps: number is not a list`},
		{`{"service":"s","version":"v","checks":[{"name":1}]}`, `checks.name: number is not a string`},
	} {
		var spec rollout.Spec
		w := httptest.NewRecorder()
		if readJSON(w, httptest.NewRequest("POST", "/v1/releases", strings.NewReader(c.body)), &spec) {
			t.Errorf("%s was taken", c.body)
			continue
		}
		var got struct{ Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 400 || got.Error != c.want {
			t.Errorf("%s: %d %s, want 400 with %q", c.body, w.Code, w.Body, c.want)
		}
	}
}
