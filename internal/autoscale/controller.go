package autoscale

import (
	"slices"
	"sort"
	"time"
)

// Controller keeps what the policies need to remember between observations: how long each worker
// has been idle, the utilisation periods, when the policy last acted, measured launch latencies,
// and instance types to avoid after capacity errors. It is not safe for concurrent use; its owner
// (the master's agent, or the simulator) calls it from one goroutine.
type Controller struct {
	cfg Config

	idleSince map[string]time.Time
	idleSeen  map[string]int

	lastOut, lastIn time.Time

	periodStart time.Time
	periodLast  time.Time
	periodSum   float64 // utilisation × seconds in the current period
	periodLen   float64
	lastUtil    float64
	samples     []Sample

	latencies   []time.Duration
	unavailable map[string]time.Time // type → until
	taskSeconds float64              // moving average of applications' mean task times
}

// NewController returns a controller for cfg (with defaults filled).
func NewController(cfg Config) *Controller {
	return &Controller{cfg: cfg.Defaults(), idleSince: map[string]time.Time{}, idleSeen: map[string]int{}, unavailable: map[string]time.Time{}}
}

// Config is the controller's configuration, defaults filled.
func (c *Controller) Config() Config { return c.cfg }

// LaunchObserved records how long a worker took from being asked for to being registered.
func (c *Controller) LaunchObserved(d time.Duration) {
	c.latencies = append(c.latencies, d)
	if len(c.latencies) > 20 {
		c.latencies = c.latencies[len(c.latencies)-20:]
	}
}

// LaunchLatency is the estimate the policies use: the 75th percentile of the last launches (a
// pessimistic middle: a keep-alive a little long costs less than a cold start), or the default.
func (c *Controller) LaunchLatency() time.Duration {
	if len(c.latencies) == 0 {
		return c.cfg.DefaultLaunchLatency
	}
	s := slices.Clone(c.latencies)
	slices.Sort(s)
	return s[(len(s)*3)/4]
}

// CapacityError records that a type could not be launched; it is skipped for CapacityBackoff.
func (c *Controller) CapacityError(instanceType string, now time.Time) {
	c.unavailable[instanceType] = now.Add(c.cfg.CapacityBackoff)
}

// utilization is busy cores over cores of the workers Spark has.
func utilization(ws []Worker) float64 {
	cores, used := 0, 0
	for _, w := range ws {
		if w.Draining {
			continue
		}
		cores += w.Cores
		used += w.BusyCores
	}
	if cores == 0 {
		return 0
	}
	return float64(used) / float64(cores)
}

// accumulate folds the utilisation seen since the last observation into the current period and
// closes periods that ended.
func (c *Controller) accumulate(now time.Time, util float64) {
	if c.periodStart.IsZero() {
		c.periodStart, c.periodLast, c.lastUtil = now, now, util
		return
	}
	p := c.cfg.CPUPeriod
	for !now.Before(c.periodStart.Add(p)) {
		end := c.periodStart.Add(p)
		dt := end.Sub(c.periodLast).Seconds()
		c.periodSum += c.lastUtil * dt
		c.periodLen += dt
		avg := c.lastUtil
		if c.periodLen > 0 {
			avg = c.periodSum / c.periodLen
		}
		c.samples = append(c.samples, Sample{End: end, Utilization: avg})
		if len(c.samples) > 10 {
			c.samples = c.samples[len(c.samples)-10:]
		}
		c.periodStart, c.periodLast, c.periodSum, c.periodLen = end, end, 0, 0
	}
	dt := now.Sub(c.periodLast).Seconds()
	c.periodSum += c.lastUtil * dt
	c.periodLen += dt
	c.periodLast, c.lastUtil = now, util
}

// Decide records the observation and returns the policy's decision.
func (c *Controller) Decide(obs Observation) Decision {
	now := obs.Now
	seen := map[string]bool{}
	for _, w := range obs.Workers {
		seen[w.ID] = true
		if w.Idle() && !w.Draining {
			if _, ok := c.idleSince[w.ID]; !ok {
				c.idleSince[w.ID] = now
			}
			c.idleSeen[w.ID]++
		} else {
			delete(c.idleSince, w.ID)
			delete(c.idleSeen, w.ID)
		}
	}
	for id := range c.idleSince {
		if !seen[id] {
			delete(c.idleSince, id)
			delete(c.idleSeen, id)
		}
	}
	c.accumulate(now, utilization(obs.Workers))
	for _, a := range obs.Apps {
		if a.TaskSeconds > 0 {
			if c.taskSeconds == 0 {
				c.taskSeconds = a.TaskSeconds
			} else {
				c.taskSeconds = 0.9*c.taskSeconds + 0.1*a.TaskSeconds
			}
		}
	}

	in := Input{Observation: obs, IdleFor: map[string]time.Duration{}, IdleSeen: map[string]int{},
		LaunchLatency: c.LaunchLatency(), LastScaleOut: c.lastOut, LastScaleIn: c.lastIn,
		CPU: slices.Clone(c.samples), Unavailable: map[string]bool{}, TypicalTaskSeconds: c.taskSeconds}
	for id, t := range c.idleSince {
		in.IdleFor[id] = now.Sub(t)
		in.IdleSeen[id] = c.idleSeen[id]
	}
	for t, until := range c.unavailable {
		if now.Before(until) {
			in.Unavailable[t] = true
		} else {
			delete(c.unavailable, t)
		}
	}
	d := Decide(c.cfg, in)
	if d.Adds() > 0 {
		c.lastOut = now
	}
	if len(d.Remove) > 0 {
		c.lastIn = now
		sort.Strings(d.Remove)
	}
	return d
}
