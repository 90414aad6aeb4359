package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Release declares a progressive release of a service (internal/rollout,
// docs/admin-api.md): the gateway starts it when it loads the config, once
// per candidate version, as `wasmesh release start` would. Zero fields
// take the release's defaults.
type Release struct {
	// Version is the candidate: a version's name or digest prefix.
	Version           string
	Steps             []int
	Hold              time.Duration
	MinRequests       int64
	MaxErrorRate      *float64
	MaxErrorRateAbove *float64
	MaxP99Ratio       float64
	// Lane, when set, is the lane (of the config's lanes) whose requests
	// the candidate serves first, before any weight. Default none.
	Lane string

	lane pos // where Lane is, for checkLanes
}

var releaseFields = []string{"version", "lane", "steps", "hold", "min_requests", "max_error_rate", "max_error_rate_above", "max_p99_ratio"}

// CheckSteps checks a release's steps: weights from 1 to 100, increasing,
// the last 100.
func CheckSteps(steps []int) error {
	for i, w := range steps {
		switch {
		case w < 1 || w > 100:
			return fmt.Errorf("steps[%d] is %d: a step is a weight from 1 to 100", i, w)
		case i > 0 && w <= steps[i-1]:
			return fmt.Errorf("steps must increase: steps[%d] is %d after %d", i, w, steps[i-1])
		}
	}
	if n := len(steps); n > 0 && steps[n-1] != 100 {
		return fmt.Errorf("the last step must be 100, got %d", steps[n-1])
	}
	return nil
}

// release decodes a service's release block; its version is checked
// against the service's versions once they are known.
func (d *decoder) release(n *yaml.Node, path string) *Release {
	r := &Release{}
	d.fields(n, path, releaseFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "version":
			r.Version, _ = d.str(v, f)
		case "lane":
			if l, ok := d.str(v, f); ok && d.check(!ValidName(l), v, f, "%q is not a lane name", l) {
				r.Lane, r.lane = l, posOf(v)
			}
		case "steps":
			items, _ := d.list(v, f)
			for i, item := range items {
				if w, ok := d.integer(item, fmt.Sprintf("%s[%d]", f, i)); ok {
					r.Steps = append(r.Steps, w)
				}
			}
			err := CheckSteps(r.Steps)
			d.check(err != nil, v, f, "%v", err)
		case "hold":
			d.durationAtLeast(v, f, 100*time.Millisecond, &r.Hold)
		case "min_requests":
			if m, ok := d.integer(v, f); ok && d.check(m < 1, v, f, "must be at least 1, got %d", m) {
				r.MinRequests = int64(m)
			}
		case "max_error_rate", "max_error_rate_above":
			if s, ok := d.str(v, f); ok {
				x, err := ParseFraction(s)
				if d.check(err != nil || x < 0 || x > 1, v, f, `must be a fraction from 0 to 1 or a percentage ("5%%"), got %q`, s) {
					if key == "max_error_rate" {
						r.MaxErrorRate = &x
					} else {
						r.MaxErrorRateAbove = &x
					}
				}
			}
		case "max_p99_ratio":
			if s, ok := d.str(v, f); ok {
				x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
				if d.check(err != nil || x < 1, v, f, "must be a number, at least 1, got %q", s) {
					r.MaxP99Ratio = x
				}
			}
		}
	})
	if r.Version == "" {
		d.errorf(n, path, `missing field "version"`)
	}
	return r
}

// releaseVersion checks that a service's release names one of its
// versions, by name or by digest prefix (resolved later, for a module not
// yet in the store).
func (d *decoder) releaseVersion(s *Service, n *yaml.Node, path string) {
	if s.Release == nil || s.Release.Version == "" {
		return
	}
	for _, v := range s.Versions {
		if v.Name == s.Release.Version {
			return
		}
	}
	hex := strings.TrimPrefix(s.Release.Version, "sha256:")
	d.check(len(hex) < 8 || strings.Trim(strings.ToLower(hex), "0123456789abcdef") != "", n, join(path, "version"),
		"%q is not the name of a version of the service (or a digest prefix of 8 hex digits or more)", s.Release.Version)
}
