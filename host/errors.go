package host

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrDeadline is wrapped by the error of a run stopped at its deadline.
	ErrDeadline = errors.New("deadline exceeded")
	// ErrCanceled is wrapped by the error of a run whose context was canceled.
	ErrCanceled = errors.New("canceled")
	// ErrOutputLimit is wrapped by the error of a run that wrote more than it may.
	ErrOutputLimit = errors.New("output limit exceeded")
	// ErrMemoryLimit is wrapped by the error of a module whose initial memory
	// exceeds the memory limit.
	ErrMemoryLimit = errors.New("memory limit exceeded")
	// ErrNoStart is wrapped by the error of running a module that exports
	// neither _start nor ReactorEntry.
	ErrNoStart = errors.New("module exports neither _start nor " + ReactorEntry)
)

// TrapError is a guest that trapped: the WebAssembly program executed an
// instruction it could not complete.
type TrapError struct {
	// Cause is wazero's name for the trap, e.g. "unreachable",
	// "out of bounds memory access", "integer divide by zero", "stack overflow".
	Cause string
	// Stack is the guest's stack trace, one frame a line.
	Stack string
}

func (e *TrapError) Error() string { return "guest trapped: " + e.Cause }

// trapFrom turns an error from a guest call into a *TrapError when it is a
// WebAssembly trap. wazero formats those as
// "wasm error: <cause>\nwasm stack trace:\n\t<frames>" (a stack overflow
// bare, as "stack overflow") and keeps the cause in an internal package, so
// the message is the only stable handle.
func trapFrom(err error) error {
	msg := err.Error()
	if msg == "stack overflow" { // returned bare, without unwinding a trace
		return &TrapError{Cause: msg}
	}
	i := strings.Index(msg, "wasm error: ")
	if i < 0 {
		return err
	}
	cause, stack, _ := strings.Cut(msg[i+len("wasm error: "):], "\n")
	_, stack, _ = strings.Cut(stack, "wasm stack trace:\n")
	return &TrapError{Cause: cause, Stack: strings.TrimSpace(stack)}
}

// OutputError reports which stream overflowed and its cap.
type outputError struct {
	stream string
	limit  int64
}

func (e *outputError) Error() string {
	return fmt.Sprintf("guest wrote more than %d bytes to %s: %s", e.limit, e.stream, ErrOutputLimit)
}

func (e *outputError) Unwrap() error { return ErrOutputLimit }
