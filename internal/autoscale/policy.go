package autoscale

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// decideSpark scales on Spark's own demand. Out: as many workers as the unmet demand needs, at
// once, within workers.max, but not ones that would arrive after the queued work is done. In:
// only workers with nothing of Spark's on them, idle for a keep-alive derived from the launch
// latency and seen idle over several observations, fewest cached bytes first, a few at a time,
// never below workers.min. Interrupted spot workers are drained and replaced at once.
func decideSpark(c Config, in Input) Decision {
	latency := in.LaunchLatency
	if latency <= 0 {
		latency = c.DefaultLaunchLatency
	}
	cpw := c.Types[0].Cores

	var live, interrupted []Worker
	draining := 0
	for _, w := range in.Workers {
		switch {
		case w.Draining:
			draining++
		case w.Interrupted:
			interrupted = append(interrupted, w)
		default:
			live = append(live, w)
		}
	}
	capacity := 0
	for _, w := range live {
		capacity += w.Cores
	}
	for _, p := range in.Pending {
		capacity += p.Cores
	}

	// Demand, in cores.
	demand, waiting, unknown := 0, 0, 0
	for _, a := range in.Apps {
		switch {
		case a.CoresWanted >= 0:
			demand += a.CoresWanted
			if a.CoresWanted > a.CoresGranted {
				waiting += max(1, a.Count)
			}
		case a.Waiting:
			demand += cpw * max(1, a.Count) // at least an executor's worth
			waiting += max(1, a.Count)
			unknown += max(1, a.Count)
		default:
			demand += a.CoresGranted // it keeps what it has
		}
	}
	driverNeed := 0
	for _, d := range in.WaitingDrivers {
		driverNeed += d.Cores
	}
	demand += driverNeed
	target := demand + c.Headroom
	for _, w := range live {
		demand += driverCores(w)
	}

	var d Decision
	var reasons []string
	count := len(live) + len(in.Pending) // what counts against workers.max after this decision

	// Interrupted spot workers: drain them now and replace them at once.
	for _, w := range interrupted {
		d.Remove = append(d.Remove, w.ID)
	}
	if len(interrupted) > 0 {
		n := min(len(interrupted), c.Max-count)
		d.Launch = append(d.Launch, chooseLaunches(c, in, live, n)...)
		count += d.Adds()
		reasons = append(reasons, fmt.Sprintf("%d spot interruption(s): drain and replace", len(interrupted)))
		cause(&d, CauseInterruption)
	}

	// Never below workers.min.
	if count < c.Min {
		n := c.Min - count
		d.Launch = mergeLaunches(d.Launch, chooseLaunches(c, in, live, n))
		count += n
		capacity += n * cpw
		reasons = append(reasons, fmt.Sprintf("below workers.min %d", c.Min))
		cause(&d, CauseMin)
	}

	unmet := demand - capacity
	if short := target - capacity; short > 0 && unmet <= 0 && count < c.Max && d.Adds() == 0 {
		// Demand is met, but the warm headroom is not.
		n := min((short+cpw-1)/cpw, c.Max-count)
		d.Launch = mergeLaunches(d.Launch, chooseLaunches(c, in, live, n))
		count += n
		capacity += n * cpw
		reasons = append(reasons, fmt.Sprintf("keep %d cores of headroom", c.Headroom))
		cause(&d, CauseHeadroom)
	}
	if unmet > 0 && count < c.Max {
		want := (unmet + cpw - 1) / cpw
		// A worker is worth buying only if it will spend at least MinEfficiency of its paid time
		// working. What it is paid for without working: its boot, the executor idle release after
		// its last task, and the keep-alive. The work left when it arrives (after one launch
		// latency on the capacity at hand), shared over all cores then, must therefore last at
		// least waste × e/(1-e). Without any task time known, buy what demand says. The rule
		// covers applications' work only: a waiting driver runs for as long as it runs; and
		// priced workers only.
		keep := c.keepAlive(latency)
		waste := (latency + c.ExecutorIdleTimeout + keep).Seconds() * c.MinEfficiency / (1 - c.MinEfficiency)
		// Workers that cost nothing (on this machine) are worth any work they take over.
		free := true
		for _, t := range c.Types {
			free = free && t.OnDemand == 0 && t.Spot == 0
		}
		if rem, known := remainingWork(in.Apps, in.TypicalTaskSeconds); known && capacity > 0 && !free {
			left := rem - float64(capacity)*latency.Seconds()
			useful := int(math.Floor((left/waste - float64(capacity)) / float64(cpw)))
			useful = max(useful, 0) + (driverNeed+cpw-1)/cpw
			want = min(want, useful)
		}
		want = min(want, c.Max-count)
		if want > 0 {
			d.Launch = mergeLaunches(d.Launch, chooseLaunches(c, in, live, want))
			reasons = append(reasons, demandReason(waiting, unmet, len(in.WaitingDrivers), unknown))
			cause(&d, CauseDemand)
		} else if d.Empty() {
			reasons = append(reasons, fmt.Sprintf("%d cores wanted, but the queued work ends before new workers could start", unmet))
		}
	} else if unmet > 0 && d.Empty() {
		reasons = append(reasons, fmt.Sprintf("%d cores wanted, at workers.max %d", unmet, c.Max))
	}

	// Scale in: idle workers past the keep-alive, while demand is met.
	if unmet <= 0 && d.Adds() == 0 {
		keep := c.keepAlive(latency)
		var cands []Worker
		for _, w := range live {
			if w.Idle() && in.IdleFor[w.ID] >= keep && in.IdleSeen[w.ID] >= c.ConfirmIdle {
				cands = append(cands, w)
			}
		}
		onDemand := 0
		for _, w := range live {
			if w.Market != Spot {
				onDemand++
			}
		}
		sort.SliceStable(cands, func(i, j int) bool {
			a, b := cands[i], cands[j]
			if a.CachedBytes != b.CachedBytes {
				return a.CachedBytes < b.CachedBytes
			}
			if (a.Market == Spot) != (b.Market == Spot) {
				return a.Market != Spot // on-demand costs more: it goes first, above the base
			}
			return in.IdleFor[a.ID] > in.IdleFor[b.ID]
		})
		budget := c.DisruptionBudget - draining - len(d.Remove)
		spare := capacity - target
		for _, w := range cands {
			if budget <= 0 || len(live)-removedOf(d.Remove, live) <= c.Min || spare < w.Cores {
				break
			}
			if w.Market != Spot && c.Spot && onDemand <= c.OnDemandBase {
				continue // keep the on-demand base for drivers
			}
			d.Remove = append(d.Remove, w.ID)
			budget--
			spare -= w.Cores
			if w.Market != Spot {
				onDemand--
			}
		}
		if n := len(d.Remove) - len(interrupted); n > 0 {
			reasons = append(reasons, fmt.Sprintf("%d worker(s) idle for over %s", n, keep.Round(time.Second)))
			cause(&d, CauseIdle)
		}
	}
	if len(reasons) == 0 {
		reasons = append(reasons, fmt.Sprintf("demand %d cores, capacity %d", demand, capacity))
	}
	d.Reason = strings.Join(reasons, "; ")
	return d
}

// cause records the first cause of a decision.
func cause(d *Decision, c string) {
	if d.Cause == "" {
		d.Cause = c
	}
}

func removedOf(ids []string, ws []Worker) int {
	n := 0
	for _, w := range ws {
		for _, id := range ids {
			if w.ID == id {
				n++
			}
		}
	}
	return n
}

// driverCores is what the drivers running on a worker hold; drivers are not in any
// application's task count.
func driverCores(w Worker) int {
	if w.Drivers == 0 {
		return 0
	}
	return min(w.Drivers, w.CoresUsed) // one core each by default (spark.driver.cores)
}

// remainingWork is the core-seconds of work left in the applications' running jobs. An
// application that has finished no task yet is assumed to take the typical task time. It is
// unknown when an application's demand is unknown, or when no task time is known at all.
func remainingWork(apps []App, typical float64) (float64, bool) {
	sum := 0.0
	for _, a := range apps {
		if a.CoresWanted < 0 || a.TasksLeft <= 0 && a.CoresWanted > a.CoresGranted {
			return 0, false
		}
		secs := a.TaskSeconds
		if secs <= 0 {
			secs = typical
		}
		if secs <= 0 && a.CoresWanted > a.CoresGranted {
			return 0, false
		}
		sum += float64(a.TasksLeft) * secs
	}
	return sum, true
}

func demandReason(waiting, unmet, drivers, unknown int) string {
	var parts []string
	if waiting > 0 {
		parts = append(parts, fmt.Sprintf("%d app(s) waiting", waiting))
	}
	if drivers > 0 {
		parts = append(parts, fmt.Sprintf("%d driver(s) waiting", drivers))
	}
	s := strings.Join(parts, " and ")
	if s == "" {
		s = "demand"
	}
	return fmt.Sprintf("%s for %d more cores", s, unmet)
}

// chooseLaunches picks types and markets for n new workers: the on-demand base first, then spot
// (when configured) spread over the available types, falling back to on-demand when no spot type
// is available.
func chooseLaunches(c Config, in Input, live []Worker, n int) []Launch {
	if n <= 0 {
		return nil
	}
	onDemand := 0
	for _, w := range live {
		if w.Market != Spot {
			onDemand++
		}
	}
	for _, p := range in.Pending {
		if p.Market != Spot {
			onDemand++
		}
	}
	var out []Launch
	var avail []string
	for _, t := range c.Types {
		if !in.Unavailable[t.Name] {
			avail = append(avail, t.Name)
		}
	}
	first := c.Types[0].Name
	if len(avail) > 0 {
		first = avail[0]
	}
	needOD := 0
	if c.Spot {
		needOD = max(0, c.OnDemandBase-onDemand)
	} else {
		needOD = n
	}
	needOD = min(needOD, n)
	if needOD > 0 {
		out = append(out, Launch{InstanceType: first, Market: OnDemand, Count: needOD})
	}
	rest := n - needOD
	if rest > 0 {
		if len(avail) == 0 {
			// Every spot type hit capacity errors: on-demand keeps the cluster going.
			out = append(out, Launch{InstanceType: c.Types[0].Name, Market: OnDemand, Count: rest})
		} else {
			counts := map[string]int{}
			for i := 0; i < rest; i++ {
				counts[avail[i%len(avail)]]++
			}
			for _, t := range avail {
				if counts[t] > 0 {
					out = append(out, Launch{InstanceType: t, Market: Spot, Count: counts[t]})
				}
			}
		}
	}
	return out
}

func mergeLaunches(a, b []Launch) []Launch {
	for _, l := range b {
		merged := false
		for i := range a {
			if a[i].InstanceType == l.InstanceType && a[i].Market == l.Market {
				a[i].Count += l.Count
				merged = true
			}
		}
		if !merged {
			a = append(a, l)
		}
	}
	return a
}

// decideCPU is seed 001's rule: when the group's average utilisation stays above CPUHigh for
// CPUPeriods periods, add CPUStep workers; below CPULow, remove CPUStep; nothing within
// CPUCooldown of the last change. Like an autoscaling group's default termination policy, it
// removes the oldest workers, busy or not.
func decideCPU(c Config, in Input) Decision {
	// With no worker there is no utilisation to act on (a CPU alarm without data never fires):
	// the rule keeps at least one.
	c.Min = max(c.Min, 1)
	count := 0
	var live []Worker
	for _, w := range in.Workers {
		if !w.Draining {
			live = append(live, w)
		}
	}
	count = len(live) + len(in.Pending)
	if count < c.Min {
		return Decision{Launch: chooseLaunches(c, in, live, c.Min-count), Reason: fmt.Sprintf("below workers.min %d", c.Min), Cause: CauseMin}
	}
	last := in.LastScaleOut
	if in.LastScaleIn.After(last) {
		last = in.LastScaleIn
	}
	if !last.IsZero() && in.Now.Sub(last) < c.CPUCooldown {
		return Decision{Reason: "cooldown"}
	}
	if len(in.CPU) < c.CPUPeriods {
		return Decision{Reason: "not enough utilisation periods yet"}
	}
	recent := in.CPU[len(in.CPU)-c.CPUPeriods:]
	above, below := true, true
	for _, s := range recent {
		above = above && s.Utilization > c.CPUHigh
		below = below && s.Utilization < c.CPULow
	}
	switch {
	case above && count < c.Max:
		n := min(c.CPUStep, c.Max-count)
		return Decision{Launch: chooseLaunches(c, in, live, n), Cause: CauseCPUHigh,
			Reason: fmt.Sprintf("utilisation above %.0f%% for %d periods of %s", c.CPUHigh*100, c.CPUPeriods, c.CPUPeriod)}
	case below && len(live) > c.Min:
		n := min(c.CPUStep, len(live)-c.Min)
		oldest := append([]Worker(nil), live...)
		sort.SliceStable(oldest, func(i, j int) bool { return oldest[i].Registered.Before(oldest[j].Registered) })
		var ids []string
		for _, w := range oldest[:n] {
			ids = append(ids, w.ID)
		}
		return Decision{Remove: ids, Cause: CauseCPULow, Reason: fmt.Sprintf("utilisation below %.0f%% for %d periods of %s", c.CPULow*100, c.CPUPeriods, c.CPUPeriod)}
	}
	return Decision{Reason: fmt.Sprintf("utilisation %.0f%%", recent[len(recent)-1].Utilization*100)}
}
