// Command wasmesh runs polyglot WebAssembly (WASI preview 1) microservices.
//
// Exit status: 0 on success; for `run`, the guest's own exit code; 1 when an
// operation fails or a guest fails at run time (trap, output cap); 2 for a
// usage error or a module that cannot be loaded (missing, not WebAssembly,
// invalid, no _start, unknown imports); 124 when a guest hits its --timeout;
// 130 when interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/wasmesh/wasmesh/modules"
)

// exitError carries an exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is a command-line mistake: exit status 2.
// subcommands runs the subcommand of cmd that args[0] names (one of names,
// in subs), its error prefixed by prefix and the subcommand's name. With
// -h, --help or help it lists them on stdout (exit status 0); with none or
// one it does not know, the list is a usage error (2).
func subcommands(ctx context.Context, cmd, prefix string, names []string, subs map[string]func(context.Context, []string, io.Writer) error, args []string, stdout io.Writer) error {
	list := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	if len(names) == 1 {
		list = names[0]
	}
	switch {
	case len(args) > 0 && slices.Contains([]string{"-h", "-help", "--help", "help"}, args[0]):
		fmt.Fprintf(stdout, "usage: wasmesh %s %s [ARGS]\n\nRun 'wasmesh %s SUBCOMMAND -h' for a subcommand's flags.\n", cmd, strings.Join(names, "|"), cmd)
		return nil
	case len(args) == 0:
		return usageError("want a subcommand: %s", list)
	case subs[args[0]] == nil:
		return usageError("unknown subcommand %q: want a subcommand: %s", args[0], list)
	}
	if err := subs[args[0]](ctx, args[1:], stdout); err != nil {
		return fmt.Errorf("%s%s: %w", prefix, args[0], err)
	}
	return nil
}

func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// exitWith wraps err with an exit status; a nil err stays nil.
func exitWith(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "[flags] FILE.wasm|DIGEST [ARGS...]", "run a WASI command module or wasi:cli component", runCmd},
		{"serve", "--config FILE", "serve the services of a config file (the gateway)", serveCmd},
		{"check", "--config FILE", "load a config file as serve would, serving nothing: exit 0 when it would load", checkCmd},
		{"routes", "--config FILE", "print the resolved route table of a config file", routesCmd},
		{"deploy", "SERVICE FILE.wasm|DIGEST|oci://REF [--weight N]", "add a version to a running gateway's service", deployCmd},
		{"promote", "SERVICE DIGEST|NAME", "send all of a service's traffic to one version", promoteCmd},
		{"rollback", "SERVICE", "restore a service's previous split", rollbackCmd},
		{"status", "", "show a running gateway's services, versions and traffic", statusCmd},
		{"colours", "", "show a running gateway's packet colours and counters", coloursCmd},
		{"lane", "list|show|create|update|delete|admit", "manage a running gateway's traffic lanes", laneCmd},
		{"release", "start|status|pause|resume|abort|promote", "run a progressive release of a service on a running gateway", releaseCmd},
		{"inspect", "FILE.wasm [-o json]", "say whether a file is a module or a component, and what it imports and exports", inspectCmd},
		{"artifact", "push|pull|ls|inspect|rm|verify|sign|policy", "manage the content-addressed store, OCI registries", artifactCmd},
		{"key", "gen --out NAME", "generate an ed25519 signing key pair", keyCmd},
		{"ca", "init|issue ...", "run the development SPIFFE CA: create it, issue SVIDs", caCmd},
		{"identity", "[--spiffe-socket ADDR | --svid F --key F ...]", "show the current SPIFFE identity and its bundle", identityCmd},
		{"version", "", "print the versions of wasmesh and wazero", versionCmd},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: wasmesh COMMAND [ARGS]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %-48s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'wasmesh COMMAND -h' for a command's flags.")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout)
		var exit *exitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &exit):
			if exit.err != nil && exit.err.Error() != "" {
				fmt.Fprintf(stderr, "wasmesh %s: %v\n", c.name, err)
			}
			return exit.code
		case errors.Is(err, modules.ErrInvalidDigest):
			fmt.Fprintf(stderr, "wasmesh %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "wasmesh %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "wasmesh: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}
