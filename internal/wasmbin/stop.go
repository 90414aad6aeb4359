package wasmbin

import "context"

// ArmStop calls set, which sets an instance's stop global(s) (Pristine.Stop,
// Snapshot.Stop), once ctx is done: its deadline, or its caller gone. The
// returned release disarms it, waiting for a set under way, so that no
// stop is set once it returns (the instance may then be reset or closed);
// call it once.
func ArmStop(ctx context.Context, set func()) (release func()) {
	done := make(chan struct{})
	disarm := context.AfterFunc(ctx, func() {
		set()
		close(done)
	})
	return func() {
		if !disarm() {
			<-done
		}
	}
}
