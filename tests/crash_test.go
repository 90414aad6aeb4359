package tests

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/modules"
)

// TestCrashSafety kills the gateway (kill -9) at random points of a deploy
// (the upload, the store write, the config rewrite, the reload) or of a
// promote, and the CLI in the middle of a store write, many times over.
// After each kill: the store verifies (no half-written entry), the config
// file parses and every version it names is in the store (no lost
// version), and a gateway restarted on it serves every version it names.
func TestCrashSafety(t *testing.T) {
	g := serve(t, `
drain_delay: 0s
services:
  hello: { versions: [ { path: $EX/hello/rust/hello.wasm, weight: 100 } ] }
routes:
  - { match: { path_prefix: / }, service: hello }
`)
	path := g.config
	langs := []string{"zig", "c", "go", "rust"}
	rounds := 24
	if testing.Short() {
		rounds = 4
	}
	cut := 0 // operations the kill interrupted (the others finished first)
	for i := range rounds {
		admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
		op := []string{"deploy", "hello", hello(langs[i%len(langs)]), "--weight", "20"}
		if i%4 == 3 {
			op = []string{"promote", "hello", modules.DigestOf(mustRead(t, hello(langs[(i-1)%len(langs)])))}
		}
		p := start(t, opts{}, append(op, admin)...)
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		g.p.cmd.Process.Signal(syscall.SIGKILL)
		g.p.cmd.Wait()
		if r := p.wait(t); r.code != 0 {
			cut++ // the gateway died under it (or a promote named a deploy that was cut)
		}
		// And the CLI killed while it writes a module into the store.
		w := start(t, opts{}, "artifact", "push", hello(langs[(i+1)%len(langs)]))
		time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
		w.cmd.Process.Signal(syscall.SIGKILL)
		w.cmd.Wait()

		checkConsistent(t, i, path)
		g = serveFile(t, path)
		if code, body, _ := get(t, g.url+"/x"); code != 200 || !strings.Contains(body, "hello from") {
			t.Fatalf("round %d: the restarted gateway answered %d %q", i, code, body)
		}
	}
	t.Logf("%d of %d operations cut short by the kill", cut, rounds)
}

// checkConsistent checks the store and the config at path after a kill.
func checkConsistent(t *testing.T, round int, path string) {
	t.Helper()
	if r := wasmesh(t, opts{}, "artifact", "verify"); r.code != 0 {
		t.Fatalf("round %d: the store does not verify: %s%s", round, r.stdout, r.stderr)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("round %d: the config does not load: %v", round, err)
	}
	s, err := modules.Open(filepath.Join(home(t), "store"), modules.Options{}) // the gateway's: WASMESH_HOME's
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range cfg.Services["hello"].Versions {
		if v.Module != "" {
			if _, _, err := s.Get(v.Module); err != nil {
				t.Fatalf("round %d: the config names %s, which the store lacks: %v", round, v.Module, err)
			}
		}
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
