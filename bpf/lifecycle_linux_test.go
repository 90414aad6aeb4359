package bpf

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/wasmesh/wasmesh/internal/netlab"
)

// holderEnv makes the test binary a helper process that attaches to the
// cgroup it names, says "attached", and waits to be killed.
const holderEnv = "WASMESH_BPF_HOLDER"

func TestMain(m *testing.M) {
	if cg := os.Getenv(holderEnv); cg != "" {
		holdAttached(cg)
	}
	os.Exit(m.Run())
}

func holdAttached(cgroup string) {
	col, err := New(Options{Mode: ModeRequire, CgroupPath: cgroup})
	switch {
	case err != nil && netlab.Refused(err):
		fmt.Printf("refused %v\n", err)
	case err != nil:
		fmt.Printf("error %v\n", err)
	default:
		fmt.Printf("attached %s\n", col.Reason())
	}
	os.Stdout.Sync()
	select {} // until SIGKILL
}

func TestCloseDetaches(t *testing.T) {
	cg := netlab.Cgroup(t)
	col, err := New(Options{Mode: ModeRequire, CgroupPath: cg})
	requireBPF(t, err)
	t.Log(col.Reason())
	if !strings.Contains(col.Reason(), cg) {
		t.Errorf("Reason() = %q, want it to name %s", col.Reason(), cg)
	}
	progs := netlab.CheckAttached(t, cg)
	maps := []ebpf.MapID{mapID(t, col.(*ebpfColourer).objs.SockColours), mapID(t, col.(*ebpfColourer).objs.Counters)}

	if err := col.Close(); err != nil {
		t.Fatal(err)
	}
	if err := col.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	netlab.CheckNothingLeft(t, cg, progs, maps)
	if _, err := col.Counters(); !errors.Is(err, ErrClosed) {
		t.Errorf("Counters after Close: %v, want ErrClosed", err)
	}
}

// TestKilledHolderDetaches attaches from a helper process, SIGKILLs it and
// checks that the kernel detached everything: bpf_link, no pins.
func TestKilledHolderDetaches(t *testing.T) {
	cg := netlab.Cgroup(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderEnv+"="+cg)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatal("helper said nothing in 30s")
	}
	switch verb, rest, _ := strings.Cut(line, " "); verb {
	case "attached":
		t.Logf("helper: %s", rest)
	case "refused":
		netlab.SkipRefusal(t, "the kernel refuses eBPF here: "+rest)
	default:
		t.Fatalf("helper: %q", line)
	}
	progs := netlab.CheckAttached(t, cg)

	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	netlab.CheckNothingLeft(t, cg, progs, nil)
}

func mapID(t *testing.T, m *ebpf.Map) ebpf.MapID {
	t.Helper()
	info, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Fatal("map info has no ID")
	}
	return id
}

// TestAutoFallsBack gives a directory that is not a cgroup: ModeAuto must
// fall back and say why, ModeRequire must fail.
func TestAutoFallsBack(t *testing.T) {
	notCgroup := t.TempDir()
	col, err := New(Options{CgroupPath: notCgroup})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	t.Log(col.Reason())
	if col.Mode() != ModeFallback || !strings.HasPrefix(col.Reason(), "fallback: eBPF refused: ") {
		t.Errorf("Mode() = %q, Reason() = %q; want the fallback and why", col.Mode(), col.Reason())
	}
	// Where the kernel takes eBPF, the refusal must be about the directory.
	if haveKernelSupport() == nil && !strings.Contains(col.Reason(), notCgroup+": not in a cgroup v2 file system") {
		t.Errorf("Reason() = %q, want it to say %s is no cgroup", col.Reason(), notCgroup)
	}
	if _, err := New(Options{Mode: ModeRequire, CgroupPath: notCgroup}); err == nil {
		t.Error("ModeRequire with no cgroup: no error")
	}
}

func TestOwnCgroup(t *testing.T) {
	netlab.Cgroup2Mount(t)
	dir, err := ownCgroup()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir + "/cgroup.procs"); err != nil || fi.IsDir() {
		t.Fatalf("own cgroup %s: no cgroup.procs (%v)", dir, err)
	}
	procs, err := os.ReadFile(dir + "/cgroup.procs")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains("\n"+string(procs), fmt.Sprintf("\n%d\n", os.Getpid())) {
		t.Errorf("own cgroup %s does not list pid %d", dir, os.Getpid())
	}
}
