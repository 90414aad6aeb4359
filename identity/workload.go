package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// WorkloadOptions configure NewWorkloadSource.
type WorkloadOptions struct {
	// Addr is the Workload API address: "unix:///run/spire/agent.sock",
	// "tcp://127.0.0.1:8081", or a bare socket path. Default
	// $SPIFFE_ENDPOINT_SOCKET.
	Addr string
	// Logger receives the Workload API client's messages (at debug level,
	// failures at error level). Default slog.Default().
	Logger *slog.Logger
	// OnError, when set, is also called with each failure to watch the
	// Workload API; the source keeps its last SVID and reconnects.
	OnError func(error)
}

// NewWorkloadSource returns a Source kept up to date by a SPIFFE Workload API
// (a SPIRE agent, say), through go-spiffe's workloadapi.X509Source. It blocks
// until the first SVID arrives or ctx is done, so give ctx a deadline.
//
// # Notes
//
//   - The default SVID is the first the Workload API returns.
//   - Bundles of federated trust domains are served too.
func NewWorkloadSource(ctx context.Context, opts WorkloadOptions) (*Source, error) {
	addr := opts.Addr
	if addr == "" {
		addr = os.Getenv(workloadapi.SocketEnv)
	}
	if addr == "" {
		return nil, errors.New("no Workload API address: set " + workloadapi.SocketEnv + " or give one")
	}
	if strings.HasPrefix(addr, "/") {
		addr = "unix://" + addr
	}
	if err := workloadapi.ValidateAddress(addr); err != nil {
		//lint:ignore ST1005 "Workload API" is the name the SPIFFE specification gives it
		return nil, fmt.Errorf("Workload API address %q: %w", addr, err)
	}
	s := newSource(opts.Logger, opts.OnError)
	x, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(
		workloadapi.WithAddr(addr), workloadapi.WithLogger(spiffeLogger{s})))
	if err != nil {
		if last := s.Err(); last != nil { // say why, not only "context deadline exceeded"
			err = fmt.Errorf("%w (last error: %v)", err, last)
		}
		return nil, fmt.Errorf("fetching an X.509-SVID from the Workload API at %s: %w", addr, err)
	}
	s.svids, s.bundles = x, x
	done := make(chan struct{})
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for {
			select {
			case <-x.Updated():
				s.updated()
			case <-done:
				return
			}
		}
	}()
	s.stop = func() error {
		close(done)
		<-watching
		return x.Close()
	}
	return s, nil
}

// spiffeLogger adapts go-spiffe's logger to slog, turning its errors into
// Source errors.
type spiffeLogger struct{ s *Source }

func (l spiffeLogger) Debugf(format string, args ...any) {
	l.s.log.Debug("workload API: " + fmt.Sprintf(format, args...))
}

func (l spiffeLogger) Infof(format string, args ...any) {
	l.s.log.Debug("workload API: " + fmt.Sprintf(format, args...))
}

func (l spiffeLogger) Warnf(format string, args ...any) {
	l.s.log.Warn("workload API: " + fmt.Sprintf(format, args...))
}

func (l spiffeLogger) Errorf(format string, args ...any) {
	l.s.report(fmt.Errorf("workload API: "+format, args...))
}
