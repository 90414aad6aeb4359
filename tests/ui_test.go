package tests

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/wasmesh/wasmesh/internal/rollout"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the dashboard's screenshot to docs/img/dashboard.png")

// chromium is the browser the dashboard's test drives: Debian's chromium.
// CI fails without it; elsewhere the test is skipped.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (make toolchains installs it)")
	}
	t.Skip("chromium is not installed (make toolchains installs it)")
	return ""
}

// TestDashboard: the admin listener's /ui in a real headless Chromium:
// the page loads without a console error or exception, shows the
// gateway's services with their versions (guests built from examples/),
// shows a release advancing step by step under load, and its Pause button
// pauses it (the admin API says so).
func TestDashboard(t *testing.T) {
	browser := chromium(t)
	base, _ := countingUpstream(t, "native", 0, 0)
	g := serve(t, `
services:
  hello:
    versions:
      - { path: $EX/hello/rust/hello.wasm, name: rust, weight: 100 }
      - { path: $EX/hello/zig/hello.wasm, name: zig, weight: 0 }
  users:
    versions:
      - { upstream: { endpoints: [ "`+base.URL+`" ] }, name: native, weight: 100 }
      - { path: $EX/hello/c/hello.wasm, name: wasm, weight: 0 }
routes:
  - { match: { path_prefix: /users }, service: users }
  - { match: { path_prefix: / }, service: hello }
`)
	_, bearer := adminAuth(t)
	token := strings.TrimPrefix(bearer, "Bearer ")
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	steady(t, g.url+"/x", "")
	steady(t, g.url+"/users/x", "")
	ok(t, opts{}, "release", "start", "users", "wasm", "--steps", "10,20,30,40,50,60,70,80,90,100", "--hold", "2s", "--min-requests", "5", admin)

	ctx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1280, 1100))...)
	defer cancel()
	ctx, cancel = chromedp.NewContext(ctx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var mu sync.Mutex
	var consoleErrors []string
	listen := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			what := d.Text
			if d.Exception != nil {
				what += " " + d.Exception.Description
			}
			consoleErrors = append(consoleErrors, fmt.Sprintf("exception at %d:%d: %s", d.LineNumber, d.ColumnNumber, what))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				consoleErrors = append(consoleErrors, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		}
	})
	if listen != nil {
		t.Fatalf("starting chromium: %v", listen)
	}

	const release = `.release[data-service="users"] .step`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(g.admin+"/ui#token="+token),
		chromedp.WaitVisible(chromedp.CSS(`.service[data-service="users"] tr.version`)),
		chromedp.WaitVisible(chromedp.CSS(release)),
	); err != nil {
		t.Fatalf("the dashboard did not show the services and the release: %v (console: %q)", err, consoleErrors)
	}
	services, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll(".service")].map(e => e.dataset.service + ":" + e.querySelectorAll("tr.version").length)`))
	if err != nil || strings.Join(services, " ") != "hello:2 users:2" {
		t.Errorf("the dashboard shows services %q (%v), want hello and users with their two versions each", services, err)
	}
	firstStep, err := textOf(ctx, release)
	if err != nil {
		t.Fatal(err)
	}
	// The release advances on the page.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		step, err := textOf(ctx, release)
		if err != nil {
			t.Fatal(err)
		}
		if step != firstStep && strings.HasPrefix(step, "step ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the release shown did not advance from %q", firstStep)
		}
	}
	// Its checks, with how the step's figures stand on each.
	checks, err := textOf(ctx, `.release[data-service="users"] .checks`)
	if err != nil || !strings.Contains(checks, "error rate") || !strings.Contains(checks, "p99") {
		t.Errorf("the release's checks shown: %q (%v), want the error rate and p99 checks", checks, err)
	}
	time.Sleep(1500 * time.Millisecond) // a few points on the charts
	if *updateScreenshot {
		time.Sleep(10 * time.Second) // more of them
	}
	// The page re-renders the release on each poll, so a node found by a
	// query can be gone when the click reaches it: the click is tried again
	// on the node that replaced it.
	var clicked error
	for try := 0; try < 5; try++ {
		if clicked = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.release[data-service="users"] button[data-action="pause"]`))); clicked == nil {
			break
		}
	}
	if clicked != nil {
		t.Fatalf("clicking the Pause button: %v", clicked)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`.release[data-service="users"] .phase.paused`))); err != nil {
		t.Fatalf("pausing from the dashboard: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if rel := releaseOf(t, g, "users"); rel.Phase != rollout.Paused {
		t.Errorf("after the Pause button the release is %s", rel.Phase)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(consoleErrors) > 0 {
		t.Errorf("the dashboard logged errors: %q", consoleErrors)
	}
	if *updateScreenshot {
		if err := os.WriteFile(repoPath("docs", "img", "dashboard.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// textOf is the text of the first element matching css, read in one script
// evaluation: the page re-renders its parts on each poll, and reading a
// node found by an earlier query fails when the node has been replaced.
func textOf(ctx context.Context, css string) (string, error) {
	q, err := json.Marshal(css)
	if err != nil {
		return "", err
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[*string](`(e => e ? e.innerText : null)(document.querySelector(`+string(q)+`))`))
	if err != nil {
		return "", err
	}
	if text == nil {
		return "", fmt.Errorf("no element matches %s", css)
	}
	return *text, nil
}
