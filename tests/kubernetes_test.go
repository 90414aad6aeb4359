package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// What deploy/kubernetes relies on, shown with real processes on loopback:
// replicas that share nothing but their config split sticky traffic
// identically, and a ConfigMap update (the kubelet's symlink swap) reloads
// each replica once.

// stickyKeys is how many distinct x-user-id keys go to every gateway.
const stickyKeys = 10_000

// TestStickyAcrossGateways: three gateway processes with the same config
// (each its own store and ports) send each of 10,000 sticky keys to the same
// version, the one the documented rendezvous formula picks, and the split
// follows the weights.
func TestStickyAcrossGateways(t *testing.T) {
	weights := map[string]int{"rust": 50, "zig": 30, "typescript": 20}
	config := loopbackConfig(`
store: store   # next to each gateway's own copy of this file
services:
  hello:
    sticky: header:x-user-id
    versions:
      - { path: $EX/hello/rust/hello.wasm, weight: 50 }
      - { path: $EX/hello/zig/hello.wasm, weight: 30 }
      - { path: $EX/hello/typescript/hello.wasm, weight: 20 }
routes:
  - { match: { path_prefix: / }, service: hello }
`)
	var gws []*gateway
	for range 3 {
		path := filepath.Join(t.TempDir(), "wasmesh.yaml")
		if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		gws = append(gws, serveFile(t, path))
	}
	lang := map[string]string{} // digest -> language
	for l := range weights {
		lang[fileDigest(t, hello(l))] = l
	}

	started := time.Now()
	var got [3][]string // per gateway, per key: the digest that answered
	var wg sync.WaitGroup
	for i, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = stickyVersions(t, g.url, stickyKeys)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d requests to %d gateways in %s", stickyKeys*len(gws), len(gws), time.Since(started).Round(time.Millisecond))

	counts := map[string]int{}
	for k := range stickyKeys {
		want := rendezvous(userKey(k), weights, lang)
		for i := range gws {
			if got[i][k] != want {
				t.Fatalf("key %q: gateway %d answered from %s (%s), want %s (%s) as the rendezvous formula says; gateway 0 said %s",
					userKey(k), i, got[i][k], lang[got[i][k]], want, lang[want], got[0][k])
			}
		}
		counts[lang[want]]++
	}
	for l, w := range weights {
		// A sanity bound, 5 points either side: the binomial standard
		// deviation of a share of 10,000 keys is at most 0.5 points.
		share := 100 * float64(counts[l]) / stickyKeys
		if math.Abs(share-float64(w)) > 5 {
			t.Errorf("%s got %.1f%% of the keys, its weight is %d%%", l, share, w)
		}
	}
	t.Logf("split over %d keys: %v (weights %v)", stickyKeys, counts, weights)
}

func userKey(k int) string { return fmt.Sprintf("user-%05d", k) }

// stickyVersions sends one request per key to url, on kept-alive
// connections from 8 workers, and returns each key's X-Wasmesh-Version.
func stickyVersions(t *testing.T, url string, n int) []string {
	const workers = 8
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	out := make([]string, n)
	keys := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	fail := func(format string, args ...any) { once.Do(func() { t.Errorf(format, args...) }) }
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				req, _ := http.NewRequest("GET", url+"/", nil)
				req.Header.Set("x-user-id", userKey(k))
				resp, err := client.Do(req)
				if err != nil {
					fail("GET %s as %s: %v", url, userKey(k), err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					fail("GET %s as %s: status %d", url, userKey(k), resp.StatusCode)
				}
				out[k] = resp.Header.Get("X-Wasmesh-Version")
			}
		}()
	}
	for k := range n {
		keys <- k
	}
	close(keys)
	wg.Wait()
	return out
}

// rendezvous is the sticky choice as docs/config.md#version-selection
// writes it, independently of package router: the digest whose
// -ln(u)/weight is lowest.
func rendezvous(key string, weights map[string]int, lang map[string]string) string {
	best, bestScore := "", math.Inf(1)
	for digest, l := range lang {
		h := uint64(14695981039346656037)
		for _, c := range []byte(key + "\x00" + digest) {
			h = (h ^ uint64(c)) * 1099511628211
		}
		h += 0x9e3779b97f4a7c15
		h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
		h = (h ^ h>>27) * 0x94d049bb133111eb
		h ^= h >> 31
		u := (float64(h>>11) + 0.5) / (1 << 53)
		if score := -math.Log(u) / float64(weights[l]); score < bestScore {
			best, bestScore = digest, score
		}
	}
	return best
}

// configMapDir is a directory laid out as the kubelet's atomic writer lays
// out a ConfigMap volume: wasmesh.yaml -> ..data/wasmesh.yaml, ..data -> a
// ..<timestamp> directory holding the files.
type configMapDir struct {
	dir     string
	current string // the ..<timestamp> directory ..data points to
	seq     int
}

func newConfigMapDir(t *testing.T, content string) *configMapDir {
	t.Helper()
	c := &configMapDir{dir: t.TempDir()}
	c.current = c.writeVersion(t, content)
	if err := os.Symlink(c.current, filepath.Join(c.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "wasmesh.yaml"), c.path()); err != nil {
		t.Fatal(err)
	}
	return c
}

// path is the config file's path, as --config names it.
func (c *configMapDir) path() string { return filepath.Join(c.dir, "wasmesh.yaml") }

// writeVersion writes content into a new ..<timestamp> directory and
// returns its name.
func (c *configMapDir) writeVersion(t *testing.T, content string) string {
	t.Helper()
	c.seq++
	name := fmt.Sprintf("..%s.%09d", time.Now().UTC().Format("2006_01_02_15_04_05"), c.seq)
	if err := os.Mkdir(filepath.Join(c.dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, name, "wasmesh.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// update is the kubelet's update: write the new version's directory, point
// ..data_tmp at it, rename ..data_tmp over ..data (the atomic step), then
// remove the old version's directory.
func (c *configMapDir) update(t *testing.T, content string) {
	t.Helper()
	next := c.writeVersion(t, content)
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(next, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(c.dir, c.current)); err != nil {
		t.Fatal(err)
	}
	c.current = next
}

// reloads is what a gateway says about its config loads.
type reloads struct {
	generation      int
	success, errors int // wasmesh_config_reload_total by result
	lastError       string
}

func readReloads(t testing.TB, g *gateway) reloads {
	t.Helper()
	k, v := adminAuth(t)
	_, body, _ := get(t, g.admin+"/v1/config", k, v)
	var st struct {
		Generation int    `json:"generation"`
		LastError  string `json:"last_error"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("GET /v1/config: %v: %q", err, body)
	}
	return reloads{
		generation: st.Generation,
		success:    counter(t, g, `wasmesh_config_reload_total{result="success"}`),
		errors:     counter(t, g, `wasmesh_config_reload_total{result="error"}`),
		lastError:  st.LastError,
	}
}

// counter reads a counter from g's metrics; 0 when the series is absent.
func counter(t testing.TB, g *gateway, series string) int {
	t.Helper()
	v := metric(t, g, series)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s = %q: %v", series, v, err)
	}
	return n
}

// debounceMargin is how long a test watches for a second reload after the
// first: ten times the watcher's 100ms debounce.
const debounceMargin = time.Second

// staysAt fails t unless g's reloads stay at want throughout d, polling.
func staysAt(t *testing.T, g *gateway, what string, d time.Duration, want reloads) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if got := readReloads(t, g); got != want {
			t.Fatalf("%s: reloads moved to %+v, want them to stay at %+v", what, got, want)
		}
	}
}

// TestConfigMapSwap: against the running binary, each ConfigMap-style
// update (the kubelet's ..data symlink swap) reloads the config exactly
// once and the new config serves; a bad config is refused and the old one
// keeps serving.
func TestConfigMapSwap(t *testing.T) {
	configFor := func(lang string) string {
		return loopbackConfig(fmt.Sprintf(`
services:
  hello: { versions: [ { path: $EX/hello/%s/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: hello }
`, lang))
	}
	cm := newConfigMapDir(t, configFor("rust"))
	g := serveFile(t, cm.path())
	serves := func(lang string) bool {
		_, body, _ := get(t, g.url+"/x")
		return body == fmt.Sprintf("hello from %s: GET /x 0 bytes\n", lang)
	}
	if !serves("rust") {
		t.Fatal("the first config does not serve")
	}
	if r := readReloads(t, g); r.generation != 1 || r.success != 1 || r.errors != 0 {
		t.Fatalf("at start: %+v, want generation 1 after one successful load", r)
	}

	for i, lang := range []string{"zig", "typescript"} {
		gen := 2 + i
		cm.update(t, configFor(lang))
		poll(t, fmt.Sprintf("generation %d after swap %d", gen, i+1), func() bool { return readReloads(t, g).generation >= gen })
		if !serves(lang) {
			t.Fatalf("after swap %d the gateway does not serve %s", i+1, lang)
		}
		want := reloads{generation: gen, success: gen}
		staysAt(t, g, fmt.Sprintf("swap %d", i+1), debounceMargin, want)
	}

	// A config the gateway refuses: counted, reported, and the previous
	// config keeps serving.
	cm.update(t, configFor("typescript")+"  - { match: { path_prefix: /x }, service: nope }\n")
	poll(t, "the bad config to be refused", func() bool { return readReloads(t, g).errors == 1 })
	r := readReloads(t, g)
	if r.generation != 3 || r.success != 3 || !strings.Contains(r.lastError, `unknown service "nope"`) {
		t.Fatalf("after a bad config: %+v, want generation 3, 3 successes and the error", r)
	}
	staysAt(t, g, "the bad swap", debounceMargin, r)
	if !serves("typescript") {
		t.Fatal("after a refused config the previous one does not serve")
	}
}
