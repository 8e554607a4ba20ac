// Package autoscale decides how many workers a cluster should have. Policies are pure functions
// of an Input (what the cluster looks like now, and the little history a policy needs) and a
// Config; they return a Decision. A Controller keeps that history between observations; the
// master's agent and the simulator both drive the same Controller, so what is benchmarked is what
// runs.
package autoscale

import (
	"fmt"
	"time"
)

// Markets a worker can be bought on.
const (
	OnDemand = "on-demand"
	Spot     = "spot"
)

// Worker is one worker Spark has registered.
type Worker struct {
	ID           string
	InstanceType string
	Market       string
	Zone         string
	Cores        int
	CoresUsed    int // held by executors and drivers (Spark's coresused)
	// BusyCores are cores running tasks: what the cpu policy's utilisation counts, as host CPU
	// would. Observers that cannot tell it from CoresUsed set it to CoresUsed.
	BusyCores   int
	Drivers     int // drivers running on it
	Executors   int // executors on it
	CachedBytes int64
	Registered  time.Time
	Interrupted bool // a spot interruption or rebalance notice arrived for it
	Draining    bool // being decommissioned
}

// Idle reports whether nothing of Spark's runs on the worker.
func (w Worker) Idle() bool { return w.CoresUsed == 0 && w.Drivers == 0 && w.Executors == 0 }

// Pending is a worker asked for and not yet registered with Spark.
type Pending struct {
	ID           string
	InstanceType string
	Market       string
	Cores        int
	Requested    time.Time
}

// App is one active application's demand.
type App struct {
	ID           string
	CoresGranted int
	// CoresWanted is how many cores the application could use now: the running and pending
	// tasks of its active stages (from its own REST API) times spark.task.cpus. -1 when unknown.
	CoresWanted int
	// TasksLeft counts the unfinished tasks of its running jobs, later stages included;
	// TaskSeconds is the mean run time of its finished tasks. 0 when unknown.
	TasksLeft   int
	TaskSeconds float64
	Waiting     bool // Spark's WAITING state: registered, no executor yet
	// Count is how many alike applications the entry stands for, when more than one: the
	// simulator folds its queue of applications that have had no task yet into one entry.
	Count int
}

// Driver is a cluster-mode driver waiting for a worker.
type Driver struct {
	ID    string
	Cores int
}

// Observation is the cluster at one moment.
type Observation struct {
	Now            time.Time
	Workers        []Worker
	Pending        []Pending
	Apps           []App
	WaitingDrivers []Driver
}

// Sample is the cluster's utilisation over one period: busy cores over cores.
type Sample struct {
	End         time.Time
	Utilization float64
}

// Input is an observation with the history policies need. The Controller computes it.
type Input struct {
	Observation
	// IdleFor is, per worker id, how long it has been idle, and IdleSeen how many consecutive
	// observations saw it idle.
	IdleFor  map[string]time.Duration
	IdleSeen map[string]int
	// LaunchLatency is the measured time from asking for a worker to Spark registering it.
	LaunchLatency time.Duration
	// TypicalTaskSeconds is the mean task time recently seen across applications, used for an
	// application that has not finished a task yet. 0 when nothing has been seen.
	TypicalTaskSeconds float64
	// LastScaleOut and LastScaleIn are when the policy last acted.
	LastScaleOut, LastScaleIn time.Time
	// CPU holds the completed utilisation periods, oldest first.
	CPU []Sample
	// Unavailable lists instance types (with zone, "type/zone" or "type") to avoid for now
	// after capacity errors.
	Unavailable map[string]bool
}

// Launch asks for Count workers of a type on a market.
type Launch struct {
	InstanceType string
	Market       string
	Count        int
}

// Causes of decisions, a bounded set (a metric label): the first one that applied.
const (
	CauseDemand       = "demand"
	CauseMin          = "min"
	CauseInterruption = "spot-interruption"
	CauseHeadroom     = "headroom"
	CauseIdle         = "idle"
	CauseCPUHigh      = "cpu-high"
	CauseCPULow       = "cpu-low"
)

// Decision is what a policy wants done.
type Decision struct {
	Launch []Launch
	Remove []string // worker ids, to decommission and then remove
	Reason string   // for people
	Cause  string   // for metrics: one of the Cause constants, or "" when nothing changes
}

// Adds is the number of workers the decision launches.
func (d Decision) Adds() int {
	n := 0
	for _, l := range d.Launch {
		n += l.Count
	}
	return n
}

// Empty reports whether the decision changes nothing.
func (d Decision) Empty() bool { return d.Adds() == 0 && len(d.Remove) == 0 }

func (d Decision) String() string {
	switch {
	case d.Empty():
		return "no change: " + d.Reason
	case len(d.Remove) == 0:
		return fmt.Sprintf("scale out +%d: %s", d.Adds(), d.Reason)
	case d.Adds() == 0:
		return fmt.Sprintf("scale in -%d: %s", len(d.Remove), d.Reason)
	}
	return fmt.Sprintf("+%d -%d: %s", d.Adds(), len(d.Remove), d.Reason)
}

// InstanceType is a kind of worker: its cores and what an hour of it costs.
type InstanceType struct {
	Name     string
	Cores    int
	OnDemand float64 // $ per hour
	Spot     float64 // $ per hour; 0 when spot is not offered
}

// Price returns the hourly price on a market.
func (t InstanceType) Price(market string) float64 {
	if market == Spot && t.Spot > 0 {
		return t.Spot
	}
	return t.OnDemand
}

// Config is what a policy works within.
type Config struct {
	Policy string // spark | cpu | off
	Min    int
	Max    int
	// Types are the worker kinds in order of preference (a diversified list for spot). The first
	// type sizes demand into workers.
	Types []InstanceType
	// Spot buys workers on the spot market, keeping OnDemandBase of them on demand.
	Spot         bool
	OnDemandBase int

	// spark policy.
	// An idle worker is kept KeepAlive, or else KeepAliveFactor times the launch latency but
	// never less than MinKeepAlive.
	KeepAlive       time.Duration
	KeepAliveFactor float64
	MinKeepAlive    time.Duration
	// ConfirmIdle is how many consecutive observations must see a worker idle before it goes.
	ConfirmIdle int
	// DisruptionBudget bounds how many workers may be draining at once.
	DisruptionBudget int
	// Headroom is idle capacity, in cores, kept beyond the current demand so that jobs that
	// arrive find cores without waiting for a launch. 0 keeps none.
	Headroom int
	// MinEfficiency is the least share of its paid time a new worker must be expected to spend
	// working for the policy to buy it (below 1). Higher is cheaper and slower.
	MinEfficiency float64
	// DefaultLaunchLatency is assumed until a launch has been measured.
	DefaultLaunchLatency time.Duration
	// ExecutorIdleTimeout is how long an executor stays on a worker after its last task
	// (spark.dynamicAllocation.executorIdleTimeout, 60 s by default): part of what a worker is
	// paid for without working.
	ExecutorIdleTimeout time.Duration

	// cpu policy: seed 001's rule.
	CPUHigh     float64 // scale out above this average utilisation
	CPULow      float64 // scale in below it
	CPUStep     int
	CPUPeriod   time.Duration
	CPUPeriods  int // consecutive periods beyond a threshold
	CPUCooldown time.Duration

	// CapacityBackoff is how long a type that hit a capacity error is skipped.
	CapacityBackoff time.Duration
}

// Defaults fills what is left zero. The numbers are stated, with their sources, in
// docs/autoscaling.md.
func (c Config) Defaults() Config {
	set := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.KeepAliveFactor == 0 {
		// Ski rental: keeping an idle worker for one launch latency costs what relaunching it
		// costs in billed boot time; waiting that long, then letting go, is never worse than twice
		// the best choice made in hindsight.
		c.KeepAliveFactor = 1
	}
	set(&c.MinKeepAlive, time.Minute)
	if c.ConfirmIdle == 0 {
		c.ConfirmIdle = 3
	}
	if c.DisruptionBudget == 0 {
		c.DisruptionBudget = max(1, c.Max/4)
	}
	set(&c.DefaultLaunchLatency, 90*time.Second)
	set(&c.ExecutorIdleTimeout, 60*time.Second)
	if c.MinEfficiency <= 0 || c.MinEfficiency >= 1 {
		// A third: a new worker works at least half as long as it waits. Chosen over a half
		// (cheaper, but the median job then waits behind backlogs) and a quarter (no longer
		// cheaper than the cpu rule when launches are fast); see docs/autoscaling.md.
		c.MinEfficiency = 1.0 / 3
	}
	if c.CPUHigh == 0 {
		c.CPUHigh = 0.85
	}
	if c.CPULow == 0 {
		c.CPULow = 0.20
	}
	if c.CPUStep == 0 {
		c.CPUStep = 2
	}
	set(&c.CPUPeriod, 120*time.Second)
	if c.CPUPeriods == 0 {
		c.CPUPeriods = 2
	}
	set(&c.CPUCooldown, 300*time.Second)
	set(&c.CapacityBackoff, 10*time.Minute)
	if len(c.Types) == 0 {
		c.Types = []InstanceType{{Name: "worker", Cores: 1}}
	}
	if c.Spot && c.OnDemandBase == 0 && c.Min > 0 {
		c.OnDemandBase = 1
	}
	return c
}

// keepAlive is how long an idle worker is kept given the launch latency.
func (c Config) keepAlive(latency time.Duration) time.Duration {
	if c.KeepAlive > 0 {
		return c.KeepAlive
	}
	return max(c.MinKeepAlive, time.Duration(c.KeepAliveFactor*float64(latency)))
}

// Policies by name.
const (
	PolicySpark = "spark"
	PolicyCPU   = "cpu"
	PolicyOff   = "off"
)

// Decide runs the configured policy.
func Decide(c Config, in Input) Decision {
	switch c.Policy {
	case PolicySpark:
		return decideSpark(c, in)
	case PolicyCPU:
		return decideCPU(c, in)
	default:
		return Decision{Reason: "autoscaling is off"}
	}
}
