package dataplane

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wasmesh/wasmesh/bpf"
)

// connectWatch is a Colourer that notes, for each socket it colours,
// whether the socket had connected yet.
type connectWatch struct {
	bpf.Colourer
	mu                     sync.Mutex
	unconnected, connected int
	colours                []bpf.Colour
}

func (w *connectWatch) SetColour(conn syscall.Conn, c bpf.Colour, dscp int) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	_ = rc.Control(func(fd uintptr) {
		_, err := unix.Getpeername(int(fd))
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			w.unconnected++
		} else {
			w.connected++
		}
		w.colours = append(w.colours, c)
	})
	return w.Colourer.SetColour(conn, c, dscp)
}

// TestOutboundColouredBeforeConnect: the connections of a version's
// http_calls (clientFor) and of its upstream pools (colouringDialer) are
// coloured before they connect, so that the SYN carries the version's
// colour and DSCP as the rest does (bpf's TestColourBeforeConnect checks
// the wire); a dial while the colour is 0 colours nothing.
func TestOutboundColouredBeforeConnect(t *testing.T) {
	col, err := bpf.New(bpf.Options{Mode: bpf.ModeOff})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	w := &connectWatch{Colourer: col}
	p := &Plane{opts: Options{Colourer: w}}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()

	cl, err := p.clientFor(3, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	colour := bpf.Colour(0)
	d := p.colouringDialer(time.Second, func() (bpf.Colour, int) { return colour, 20 })
	for _, c := range []bpf.Colour{0, 4} {
		colour = c
		conn, err := d.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.connected != 0 || w.unconnected != 2 || len(w.colours) != 2 || w.colours[0] != 3 || w.colours[1] != 4 {
		t.Fatalf("coloured %d sockets before they connected, %d after, with colours %v; want 2 before, with 3 then 4", w.unconnected, w.connected, w.colours)
	}
}
