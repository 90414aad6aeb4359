package logbuf

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// writes records what a Writer writes beneath it, one entry a write.
type writes struct {
	mu sync.Mutex
	w  []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.w = append(w.w, string(p))
	return len(p), nil
}

func (w *writes) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.w...)
}

// TestWriter: a line alone is written at once; lines close behind it are
// written together once the delay passes, in order; a line after a quiet
// spell is written at once again; Flush writes what is held.
func TestWriter(t *testing.T) {
	const delay = 500 * time.Millisecond // a stall between two writes that should be held together is far shorter
	var under writes
	b := New(&under, delay)
	b.Write([]byte("a\n"))
	if got := under.all(); len(got) != 1 || got[0] != "a\n" {
		t.Fatalf("first line: writes %q, want [a]", got)
	}
	b.Write([]byte("b\n"))
	b.Write([]byte("c\n"))
	if got := under.all(); len(got) != 1 {
		t.Fatalf("lines right behind the first written at once: %q", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(under.all()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := under.all(); len(got) != 2 || got[1] != "b\nc\n" {
		t.Fatalf("after the delay: writes %q, want [a b+c]", got)
	}
	time.Sleep(2 * delay)
	b.Write([]byte("d\n"))
	if got := under.all(); len(got) != 3 || got[2] != "d\n" {
		t.Fatalf("a line after a quiet spell: writes %q, want it at once", got)
	}
	b.Write([]byte("e\n"))
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := under.all(); len(got) != 4 || got[3] != "e\n" {
		t.Fatalf("after Flush: writes %q, want e written", got)
	}
}

// TestWriterNoDelay: with no delay, every line is its own write.
func TestWriterNoDelay(t *testing.T) {
	var under writes
	b := New(&under, 0)
	for i := range 5 {
		fmt.Fprintf(b, "%d\n", i)
	}
	if got := under.all(); len(got) != 5 {
		t.Fatalf("%d writes, want 5", len(got))
	}
}

// TestWriterConcurrent: lines from many goroutines all come out whole,
// none lost, in fewer writes than lines; more than maxBuffered held is
// written without waiting.
func TestWriterConcurrent(t *testing.T) {
	var under writes
	b := New(&under, time.Hour) // nothing but the bound and Flush writes
	line := strings.Repeat("x", 99) + "\n"
	var wg sync.WaitGroup
	const n, each = 8, 200
	for range n {
		wg.Go(func() {
			for range each {
				b.Write([]byte(line))
			}
		})
	}
	wg.Wait()
	if got := under.all(); len(got) < 2 {
		t.Fatalf("%d writes of %d KiB held with a bound of %d KiB", len(got), n*each*len(line)>>10, maxBuffered>>10)
	}
	b.Flush()
	all := strings.Join(under.all(), "")
	if len(all) != n*each*len(line) || strings.Count(all, line) != n*each {
		t.Fatalf("%d bytes written, want %d whole lines", len(all), n*each)
	}
	if w := len(under.all()); w >= n*each {
		t.Fatalf("%d writes for %d lines", w, n*each)
	}
	if !bytes.HasSuffix([]byte(all), []byte("\n")) {
		t.Fatal("does not end with a whole line")
	}
}
