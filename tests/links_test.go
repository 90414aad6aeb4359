package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/modules"
)

// linksConfig is a C wasi:http component (front) whose imports of
// example:crypto/hash are served by the crypto service's versions ($CRYPTO).
const linksConfig = `
services:
  front:
    pin_header: false # the pin is the linked service's
    versions: [ { path: $EX/links/c/client.wasm } ]
    links: { "example:crypto/hash": crypto }
  front-ts:
    pin_header: false
    versions: [ { path: $EX/links/typescript/client.wasm } ]
    links: { "example:crypto/hash@0.1.0": crypto }
  crypto:
    pin_header: true
    limits: { memory: 64MiB, timeout: 2s }
    versions:
$CRYPTO
routes:
  - { match: { path_prefix: /ts/ }, service: front-ts }
  - { match: { path_prefix: / }, service: front }
`

func linksWith(versions ...string) string {
	return strings.Replace(linksConfig, "$CRYPTO", "      - "+strings.Join(versions, "\n      - "), 1)
}

// withSection is a copy of the component at src with a custom section
// added: the same code under another digest.
func withSection(t *testing.T, src, name string) string {
	t.Helper()
	wasm, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	wasm = append(wasm, 0, byte(1+len(name)+1), byte(len(name)))
	wasm = append(append(wasm, name...), 'x')
	out := filepath.Join(t.TempDir(), name+".wasm")
	if err := os.WriteFile(out, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func post(t *testing.T, client *http.Client, url, body string, header ...string) (int, string) {
	t.Helper()
	return sendWith(t, client, "POST", url, body, header...)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// linkCalls sums wasmesh_link_calls_total's series whose labels include
// each of labels (`version="…"`, `result="ok"`).
func linkCalls(t *testing.T, g *gateway, labels ...string) int {
	t.Helper()
	_, body, _ := get(t, g.admin+"/metrics")
	total := 0
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, "wasmesh_link_calls_total{")
		if !ok {
			continue
		}
		series, value, _ := strings.Cut(rest, "} ")
		match := true
		for _, l := range labels {
			match = match && strings.Contains(series, l)
		}
		if n, err := strconv.Atoi(value); match && err == nil {
			total += n
		}
	}
	return total
}

// TestLinks: a C component's and a TypeScript component's typed calls of
// example:crypto/hash served by a Zig component, in-process: the digest is
// right; a 90/10 split of the
// exporter splits the link calls 90/10 (±3% over 2,000), a pin reaches the
// canary, and so does a lane whose version of the exporter it is; a callee that traps, loops or eats memory fails only its
// caller's request, and is counted against its own version.
func TestLinks(t *testing.T) {
	zig := repoPath("examples", "links", "zig", "hasher.wasm")
	canary := withSection(t, zig, "canary")
	g := serve(t, linksWith("{ path: "+zig+", name: stable, weight: 90 }", "{ path: "+canary+", name: canary, weight: 10 }")+`
lanes:
  hashing: { versions: { crypto: canary }, entry: [ { header: X-Lane=hashing } ] }
`)
	client := &http.Client{Timeout: 20 * time.Second}

	for _, body := range []string{"hello", strings.Repeat("wasmesh ", 4096)} {
		if code, got := post(t, client, g.url+"/", body); code != 200 || got != sha256Hex(body)+"\n" {
			t.Fatalf("POST %d bytes: %d %q, want the sha256 %s", len(body), code, got, sha256Hex(body))
		}
	}
	if code, got, _ := get(t, g.url+"/some/path?q=1"); code != 200 || got != sha256Hex("/some/path?q=1")+"\n" {
		t.Fatalf("GET: %d %q", code, got)
	}
	// A TypeScript component (componentize-js) calls the same Zig hasher.
	if code, got := post(t, client, g.url+"/ts/", "hello"); code != 200 || got != "ts "+sha256Hex("hello")+"\n" {
		t.Fatalf("POST to the TypeScript client: %d %q", code, got)
	}

	stable, canaryShort := shortDigest(t, zig), shortDigest(t, canary)
	before := [2]int{linkCalls(t, g, `version="`+stable+`"`), linkCalls(t, g, `version="`+canaryShort+`"`)}
	const n = 2000
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				body := fmt.Sprint("call ", i)
				if code, got := post(t, client, g.url+"/", body); code != 200 || got != sha256Hex(body)+"\n" {
					errs <- fmt.Sprintf("%d %q", code, got)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("a call of the split failed: %s", e)
	}
	s := linkCalls(t, g, `version="`+stable+`"`, `result="ok"`) - before[0]
	c := linkCalls(t, g, `version="`+canaryShort+`"`, `result="ok"`) - before[1]
	if s+c != 2*n || c < 2*n*7/100 || c > 2*n*13/100 {
		t.Errorf("link calls: stable %d, canary %d of %d (two per request), want 10%% ± 3%% on the canary", s, c, 2*n)
	}
	before[1] = linkCalls(t, g, `version="`+canaryShort+`"`)
	for i := range 20 {
		if code, _ := post(t, client, g.url+"/", fmt.Sprint("pinned ", i), "X-Wasmesh-Version", "canary"); code != 200 {
			t.Fatalf("pinned: %d", code)
		}
	}
	if got := linkCalls(t, g, `version="`+canaryShort+`"`) - before[1]; got != 40 {
		t.Errorf("pinned to the canary: %d of its link calls, want 40", got)
	}
	before[1] = linkCalls(t, g, `version="`+canaryShort+`"`)
	for i := range 20 {
		if code, _ := post(t, client, g.url+"/", fmt.Sprint("in the lane ", i), "X-Lane", "hashing"); code != 200 {
			t.Fatalf("in the lane: %d", code)
		}
	}
	if got := linkCalls(t, g, `version="`+canaryShort+`"`) - before[1]; got != 40 {
		t.Errorf("in the lane whose version of crypto is the canary: %d of its link calls, want 40", got)
	}
}

func shortDigest(t *testing.T, path string) string {
	t.Helper()
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return modules.Short(modules.DigestOf(wasm))
}

// TestLinkCalleeFaults: a callee that traps, loops past its timeout, or
// allocates past its memory limit fails the request whose call it served,
// nothing else: requests before, after and beside it get their answers,
// and the failures count against the callee's version.
func TestLinkCalleeFaults(t *testing.T) {
	bad := repoPath("examples", "links", "c", "bad-hasher.wasm")
	g := serve(t, linksWith("{ path: "+bad+", name: bad }"))
	client := &http.Client{Timeout: 20 * time.Second}
	zeros := strings.Repeat("00", 32) + "\n"
	for _, c := range []struct {
		name, body string
		status     int
	}{{"trap", "t", 502}, {"endless loop", "l", 504}, {"memory bomb", "m", 502}} {
		done := make(chan struct{})
		go func() { // a request beside the faulty one
			defer close(done)
			if code, got := post(t, client, g.url+"/", "fine"); code != 200 || got != zeros {
				t.Errorf("%s: the request beside it: %d %q", c.name, code, got)
			}
		}()
		start := time.Now()
		if code, got := post(t, client, g.url+"/", c.body); code != c.status {
			t.Errorf("%s in the callee: the caller's request got %d %q, want %d", c.name, code, got, c.status)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("%s: the failed request took %s", c.name, took)
		}
		<-done
		if code, got := post(t, client, g.url+"/", "after"); code != 200 || got != zeros {
			t.Fatalf("%s: the request after it: %d %q", c.name, code, got)
		}
	}
	version := `version="` + shortDigest(t, bad) + `"`
	if n := linkCalls(t, g, version, `result="trap"`); n < 2 {
		t.Errorf("link calls failed by a trap: %d, want the trap's and the memory bomb's", n)
	}
	if n := linkCalls(t, g, version, `result="timeout"`); n != 1 {
		t.Errorf("link calls failed by the deadline: %d, want the loop's", n)
	}
}

// TestLinkTypesChecked: a config whose linked service has a version that
// exports the interface with other types (sha256 taking a string) is
// refused at load, with both sides' types; the config before keeps
// serving. So is one whose importer's interface no link names.
func TestLinkTypesChecked(t *testing.T) {
	zig := repoPath("examples", "links", "zig", "hasher.wasm")
	g := serve(t, linksWith("{ path: "+zig+", name: zig }"))
	mismatch := repoPath("tests", "testdata", "links", "mismatch.wasm")
	k, v := adminAuth(t)
	for _, c := range []struct{ config, want string }{
		{linksWith("{ path: "+zig+", name: zig, weight: 90 }", "{ path: "+mismatch+", name: other, weight: 10 }"),
			"services.front: version " + shortDigest(t, repoPath("examples", "links", "c", "client.wasm")) +
				" imports example:crypto/hash@0.1, linked to service crypto: the types of sha256 differ: the import is sha256 func(data: list<u8>) -> list<u8>, version other exports sha256 func(data: string) -> list<u8>"},
		{strings.Replace(linksWith("{ path: "+zig+", name: zig }"), `links: { "example:crypto/hash": crypto }`, "", 1),
			`imports example:crypto/hash@0.1, which the service's links do not name (links: { "example:crypto/hash": SERVICE })`},
		{linksWith("{ path: " + repoPath("examples", "components", "zig", "hello.wasm") + ", name: hello }"),
			"linked to service crypto: its version hello does not export example:crypto/hash@0.1"},
		{strings.Replace(linksWith("{ path: "+zig+", name: zig }"), "service: front }", "service: crypto }", 1),
			"leads to service crypto, whose version zig is a library (it exports example:crypto/hash@0.1, no wasi:http/incoming-handler): only links reach it"},
		{strings.Replace(linksWith("{ path: "+zig+", name: zig }"), `"example:crypto/hash": crypto`, `"example:crypto/hash@0.2": crypto`, 1),
			"imports example:crypto/hash@0.1, which the service's links do not name"},
	} {
		if err := os.WriteFile(g.config, []byte(loopbackConfig(c.config)), 0o644); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", g.admin+"/v1/config/reload", nil)
		req.Header.Set(k, v)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var refused struct{ Error string }
		err = json.NewDecoder(resp.Body).Decode(&refused)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnprocessableEntity || err != nil || !strings.Contains(refused.Error, c.want) {
			t.Errorf("reload: %d %q (%v)\nwant 422 with %q", resp.StatusCode, refused.Error, err, c.want)
		}
		if code, got := post(t, http.DefaultClient, g.url+"/", "still"); code != 200 || got != sha256Hex("still")+"\n" {
			t.Fatalf("after the refused config: %d %q", code, got)
		}
	}
}

// TestLinkEveryType: a C component calls a Zig component's echo of every
// WIT value type (integers at their extremes, floats bit for bit, chars
// beside the surrogates, strings, lists, records, tuples, variants, enums,
// flags, options, results, and functions whose parameters and results go
// through memory), each lifted from one instance's memory and lowered into
// the other's and back; the client checks what came back is what it sent.
func TestLinkEveryType(t *testing.T) {
	dir := repoPath("tests", "testdata", "links")
	g := serve(t, `
services:
  client:
    versions: [ { path: `+filepath.Join(dir, "echo-client.wasm")+` } ]
    links: { "example:types/echo@0.1.0": echoer }
  echoer:
    versions: [ { path: `+filepath.Join(dir, "echoer.wasm")+` } ]
routes:
  - { match: { path_prefix: / }, service: client }
`)
	for range 3 { // and again, on reset instances
		if code, body, _ := get(t, g.url+"/"); code != 200 || body != "ok 79\n" {
			t.Fatalf("the round trip of every type: %d\n%s", code, body)
		}
	}
}

// TestLinkSpans: a typed call is a wasmesh.link client span of the
// caller's guest span and a wasmesh.link.serve span under it, in the
// client's trace, the callee's version in the same form as a request's
// (the full digest).
func TestLinkSpans(t *testing.T) {
	recv := newOTLPReceiver(t)
	zig := repoPath("examples", "links", "zig", "hasher.wasm")
	g := serve(t, linksWith("{ path: "+zig+" }"), recv.env()...)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, err := http.NewRequest("POST", g.url+"/", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var spans []span
	poll(t, "the link's spans exported", func() bool { spans = recv.trace(traceID); return len(spans) >= 4 })
	byName := map[string]span{}
	for _, s := range spans {
		byName[s.name] = s
	}
	link, serve, guest := byName["wasmesh.link"], byName["wasmesh.link.serve"], byName["wasmesh.guest"]
	switch {
	case link.parentID != guest.spanID || serve.parentID != link.spanID:
		t.Errorf("link %s <- %s, serve %s <- %s, guest %s: want guest <- link <- serve", link.spanID, link.parentID, serve.spanID, serve.parentID, guest.spanID)
	case serve.attrs["wasmesh.version"] != modules.DigestOf(mustRead(t, zig)) || serve.attrs["wasmesh.service"] != "crypto":
		t.Errorf("wasmesh.link.serve's service %q, version %q; want crypto, %s", serve.attrs["wasmesh.service"], serve.attrs["wasmesh.version"], modules.DigestOf(mustRead(t, zig)))
	}
}
