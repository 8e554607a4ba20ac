package sim

// Targets are the benchmark's claims about the spark policy, checked on one day's results.
type Targets struct {
	// BeatsCPU: cheaper than cpu and a lower p95 bounded slowdown, at once.
	BeatsCPU bool `json:"beatsCPU"`
	// CheaperThanStatic with a p95 bounded slowdown within 1.2× of static's.
	CheaperThanStatic bool `json:"cheaperThanStaticWithin1_2xSlowdown"`
	// NoBusyRemovals: the spark policy removed no worker that was running anything.
	NoBusyRemovals bool `json:"noBusyRemovals"`
	// NearLowerBound: at most 1.5× the lower bound, with a p95 bounded slowdown of at most 3.
	NearLowerBound bool `json:"within1_5xLowerBoundAndSlowdown3"`
}

// Check evaluates the targets on results that include spark, cpu and static; a comparison whose
// policy is missing counts as not met.
func Check(results []*Result) Targets {
	by := map[string]*Result{}
	for _, r := range results {
		by[r.Policy] = r
	}
	s, c, st := by["spark"], by["cpu"], by["static"]
	var t Targets
	if s == nil {
		return t
	}
	t.NoBusyRemovals = s.BusyRemovals == 0
	t.NearLowerBound = s.CostRatio() <= 1.5 && s.BoundedSlow.P95 <= 3
	if c != nil {
		t.BeatsCPU = s.CostUSD < c.CostUSD && s.BoundedSlow.P95 < c.BoundedSlow.P95
	}
	if st != nil {
		t.CheaperThanStatic = s.CostUSD < st.CostUSD && s.BoundedSlow.P95 <= 1.2*st.BoundedSlow.P95
	}
	return t
}
