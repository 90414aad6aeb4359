package dataplane

// SetFigures turns the versions' figures (VersionStats: what release
// checks and the dashboard read) on or off, for BenchmarkReleaseFigures.
func SetFigures(p *Plane, on bool) { p.noFigures = !on }
