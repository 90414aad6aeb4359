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
	case err != nil && refused(err):
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
	cg := testCgroup(t)
	col, err := New(Options{Mode: ModeRequire, CgroupPath: cg})
	requireBPF(t, err)
	t.Log(col.Reason())
	if !strings.Contains(col.Reason(), cg) {
		t.Errorf("Reason() = %q, want it to name %s", col.Reason(), cg)
	}
	progs := checkAttached(t, cg)
	out := bpftoolCgroup(t, cg)
	for _, name := range []string{"colour_egress", "colour_ingress"} {
		if !strings.Contains(out, name) {
			t.Errorf("bpftool cgroup show %s does not list %s:\n%s", cg, name, out)
		}
	}
	maps := []ebpf.MapID{mapID(t, col.(*ebpfColourer).objs.SockColours), mapID(t, col.(*ebpfColourer).objs.Counters)}

	if err := col.Close(); err != nil {
		t.Fatal(err)
	}
	if err := col.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	checkNothingLeft(t, cg, progs, maps)
	if _, err := col.Counters(); !errors.Is(err, ErrClosed) {
		t.Errorf("Counters after Close: %v, want ErrClosed", err)
	}
}

// TestKilledHolderDetaches attaches from a helper process, SIGKILLs it and
// checks that the kernel detached everything: bpf_link, no pins.
func TestKilledHolderDetaches(t *testing.T) {
	cg := testCgroup(t)
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
		skipRefusal(t, "the kernel refuses eBPF here: "+rest)
	default:
		t.Fatalf("helper: %q", line)
	}
	progs := checkAttached(t, cg)

	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	checkNothingLeft(t, cg, progs, nil)
}

// checkAttached checks that exactly our two programs are attached to the
// cgroup and returns their IDs.
func checkAttached(t *testing.T, cg string) []ebpf.ProgramID {
	t.Helper()
	var ids []ebpf.ProgramID
	got := attached(t, cg)
	for dir := range attachTypes {
		if len(got[dir]) != 1 {
			t.Fatalf("%s programs on %s: %v, want one", dir, cg, got[dir])
		}
		if name, err := programName(got[dir][0]); err != nil || name != "colour_"+dir {
			t.Errorf("%s program %d is %q (%v), want %q", dir, got[dir][0], name, err, "colour_"+dir)
		}
		ids = append(ids, got[dir][0])
	}
	return ids
}

// checkNothingLeft waits for the cgroup to have no program and for the
// programs and maps to be freed.
func checkNothingLeft(t *testing.T, cg string, progs []ebpf.ProgramID, maps []ebpf.MapID) {
	t.Helper()
	eventually(t, "programs attached to "+cg, func() error {
		if got := attached(t, cg); len(got) > 0 {
			return fmt.Errorf("%v", got)
		}
		return nil
	})
	if out := bpftoolCgroup(t, cg); strings.Contains(out, "colour_") {
		t.Errorf("bpftool cgroup show %s still lists:\n%s", cg, out)
	}
	for _, id := range progs {
		eventually(t, fmt.Sprintf("program %d", id), func() error {
			if _, err := programName(id); !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("exists (%v)", err)
			}
			return nil
		})
	}
	for _, id := range maps {
		eventually(t, fmt.Sprintf("map %d", id), func() error {
			m, err := ebpf.NewMapFromID(id)
			if err == nil {
				m.Close()
				return errors.New("exists")
			}
			if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		})
	}
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
	cgroup2Mount(t)
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
