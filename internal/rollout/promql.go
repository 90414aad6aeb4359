package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wasmesh/wasmesh/modules"
)

// PromCheck is a custom check of a release: a PromQL query asked of the
// Prometheus server that scrapes the fleet (every replica), so that a
// release judges on the fleet's figures, not on one replica's. The check
// fails when the query's value (the largest of a vector's) is above Max;
// a query without data yet does not judge.
type PromCheck struct {
	Name string `json:"name"`
	// Query is PromQL, with $service, $candidate and $baseline replaced by
	// the service's name and the versions' short digests, as the metrics
	// label them.
	Query string  `json:"query"`
	Max   float64 `json:"max"`
}

// query is c's query for r.
func (c PromCheck) query(r *Release) string {
	return strings.NewReplacer("$service", r.Service, "$candidate", modules.Short(r.Candidate), "$baseline", modules.Short(r.Baseline)).Replace(c.Query)
}

var promClient = &http.Client{Timeout: 5 * time.Second}

// promQuery asks server for the instant value of query: the largest value
// of a vector, a scalar's, and false when there is no data. An error says
// what Prometheus said (a bad query, an unreachable server).
func promQuery(ctx context.Context, server, query string) (float64, bool, error) {
	u := strings.TrimSuffix(server, "/") + "/api/v1/query?query=" + url.QueryEscape(query)
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := promClient.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("prometheus at %s: %w", server, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body); err != nil {
		return 0, false, fmt.Errorf("prometheus at %s answered %s, not its API's JSON: %w", server, resp.Status, err)
	}
	if body.Status != "success" {
		return 0, false, fmt.Errorf("prometheus: %s", body.Error)
	}
	var values []string
	switch body.Data.ResultType {
	case "vector":
		var samples []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &samples); err != nil {
			return 0, false, err
		}
		for _, s := range samples {
			if v, ok := s.Value[1].(string); ok {
				values = append(values, v)
			}
		}
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(body.Data.Result, &s); err != nil {
			return 0, false, err
		}
		if v, ok := s[1].(string); ok {
			values = append(values, v)
		}
	default:
		return 0, false, fmt.Errorf("prometheus: the query gives a %s; a check wants a vector or a scalar", body.Data.ResultType)
	}
	found, max := false, 0.0
	for _, v := range values {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f != f { // NaN: 0/0, no traffic
			continue
		}
		if !found || f > max {
			found, max = true, f
		}
	}
	return max, found, nil
}

// promChecks asks r's custom checks: "" when they pass (or have no data),
// else the one that failed with its value; an error when one could not be
// asked.
func promChecks(ctx context.Context, r *Release) (string, error) {
	for _, c := range r.Checks {
		v, ok, err := promQuery(ctx, r.Prometheus, c.query(r))
		if err != nil {
			return "", fmt.Errorf("check %s: %w", c.Name, err)
		}
		if ok && v > c.Max {
			return fmt.Sprintf("check %s: %g over %g (%s)", c.Name, v, c.Max, c.query(r)), nil
		}
	}
	return "", nil
}
