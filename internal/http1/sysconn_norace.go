//go:build !race && unix

package http1

func raceRelease() {}
func raceAcquire() {}
