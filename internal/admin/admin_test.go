package admin

import (
	"net/http/httptest"
	"strings"
	"testing"
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
