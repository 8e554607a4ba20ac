package autoscale

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func m5(spot bool) Config {
	return Config{Policy: PolicySpark, Min: 0, Max: 10, Spot: spot,
		Types: []InstanceType{{Name: "m5.xlarge", Cores: 4, OnDemand: 0.192, Spot: 0.07}, {Name: "m5a.xlarge", Cores: 4, OnDemand: 0.172, Spot: 0.07}}}.Defaults()
}

func workers(n, coresUsed int) []Worker {
	var ws []Worker
	for i := 0; i < n; i++ {
		ws = append(ws, Worker{ID: fmt.Sprintf("w%d", i+1), Cores: 4, CoresUsed: coresUsed, BusyCores: coresUsed, Executors: min(coresUsed, 1), Market: OnDemand, Registered: t0})
	}
	return ws
}

func idleInput(ws []Worker, idleFor time.Duration, seen int) Input {
	in := Input{Observation: Observation{Now: t0, Workers: ws}, IdleFor: map[string]time.Duration{}, IdleSeen: map[string]int{}, LaunchLatency: 90 * time.Second}
	for _, w := range ws {
		if w.Idle() {
			in.IdleFor[w.ID], in.IdleSeen[w.ID] = idleFor, seen
		}
	}
	return in
}

func TestSparkPolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		in     Input
		adds   int
		remove []string
		reason string
	}{
		{
			name: "waiting apps get workers at once, no fixed step",
			cfg:  m5(false),
			in: Input{Observation: Observation{Now: t0, Workers: workers(1, 4), Apps: []App{
				{ID: "a", CoresGranted: 4, CoresWanted: 20}, {ID: "b", CoresWanted: 16}, {ID: "c", CoresWanted: 12}}}},
			adds: 9, reason: "scale out +9: 3 app(s) waiting for 44 more cores",
		},
		{
			name: "capped at workers.max",
			cfg:  m5(false),
			in:   Input{Observation: Observation{Now: t0, Workers: workers(8, 4), Apps: []App{{ID: "a", CoresGranted: 32, CoresWanted: 200}}}},
			adds: 2,
		},
		{
			name: "pending workers count as capacity",
			cfg:  m5(false),
			in: Input{Observation: Observation{Now: t0, Workers: workers(1, 4), Pending: []Pending{{ID: "p1", Cores: 4}, {ID: "p2", Cores: 4}},
				Apps: []App{{ID: "a", CoresGranted: 4, CoresWanted: 12}}}},
			adds: 0,
		},
		{
			name: "an app whose demand is unknown but waits gets one worker",
			cfg:  m5(false),
			in:   Input{Observation: Observation{Now: t0, Apps: []App{{ID: "a", CoresWanted: -1, Waiting: true}}}},
			adds: 1,
		},
		{
			name: "waiting drivers count",
			cfg:  m5(false),
			in: Input{Observation: Observation{Now: t0, Workers: workers(1, 4), Apps: []App{{ID: "a", CoresGranted: 4, CoresWanted: 4}},
				WaitingDrivers: []Driver{{ID: "d", Cores: 1}}}},
			adds: 1, reason: "1 driver(s) waiting for 1 more cores",
		},
		{
			name: "no worker that would arrive after the work is done",
			cfg:  m5(false),
			// 20 tasks of 2 s wanted on 4 busy cores: 40 core-seconds, done long before a 90 s launch.
			in:   Input{Observation: Observation{Now: t0, Workers: workers(1, 4), Apps: []App{{ID: "a", CoresGranted: 4, CoresWanted: 20, TasksLeft: 20, TaskSeconds: 2}}}, LaunchLatency: 90 * time.Second},
			adds: 0, reason: "queued work ends before new workers could start",
		},
		{
			name: "workers that cost nothing take over any queued work",
			cfg:  func() Config { c := m5(false); c.Types = []InstanceType{{Name: "local", Cores: 4}}; return c }(),
			// 36 tasks of 4 s on 4 busy cores, 2 s launches: a priced worker would idle too long
			// for its price; one on this machine costs nothing.
			in: Input{Observation: Observation{Now: t0, Workers: workers(1, 4), Apps: []App{{ID: "a", CoresGranted: 4, CoresWanted: 36, TasksLeft: 36, TaskSeconds: 4}}},
				LaunchLatency: 2 * time.Second},
			adds: 8, reason: "scale out +8: 1 app(s) waiting for 32 more cores",
		},
		{
			// 8000 core-seconds; 7640 left when new workers arrive. Each new worker must work at
			// least half as long as it waits: (90 s boot + 60 s executor release + 90 s keep-alive)
			// / 2 = 120 s: 7640/120 ≈ 63 cores' worth, less the 4 there: 14 workers, capped at the
			// 9 the demand asks for.
			name: "a long job gets as many workers as will be kept busy",
			cfg:  m5(false),
			in:   Input{Observation: Observation{Now: t0, Workers: workers(1, 4), Apps: []App{{ID: "a", CoresGranted: 4, CoresWanted: 40, TasksLeft: 4000, TaskSeconds: 2}}}, LaunchLatency: 90 * time.Second},
			adds: 9,
		},
		{
			// The same job at 1000 tasks: 2000 core-seconds, 1640 left on arrival: 13 cores' worth,
			// less the 4 there: 2 workers.
			name: "a shorter job gets fewer",
			cfg:  m5(false),
			in:   Input{Observation: Observation{Now: t0, Workers: workers(1, 4), Apps: []App{{ID: "a", CoresGranted: 4, CoresWanted: 40, TasksLeft: 1000, TaskSeconds: 2}}}, LaunchLatency: 90 * time.Second},
			adds: 2,
		},
		{
			name: "idle workers past the keep-alive go, fewest cached bytes first, within the disruption budget",
			cfg:  func() Config { c := m5(false); c.DisruptionBudget = 2; return c }(),
			in: func() Input {
				ws := workers(4, 0)
				ws[0].CachedBytes, ws[1].CachedBytes = 500, 100
				return idleInput(ws, 4*time.Minute, 5)
			}(),
			remove: []string{"w3", "w4"},
		},
		{
			name:   "not before the keep-alive (one launch latency)",
			cfg:    m5(false),
			in:     idleInput(workers(2, 0), 80*time.Second, 5),
			remove: nil,
		},
		{
			name:   "not before enough idle observations",
			cfg:    m5(false),
			in:     idleInput(workers(2, 0), time.Hour, 2),
			remove: nil,
		},
		{
			name:   "never below workers.min",
			cfg:    func() Config { c := m5(false); c.Min = 2; return c }(),
			in:     idleInput(workers(3, 0), time.Hour, 10),
			remove: []string{"w1"},
		},
		{
			name:   "below workers.min: launch",
			cfg:    func() Config { c := m5(false); c.Min = 2; return c }(),
			in:     Input{Observation: Observation{Now: t0}},
			adds:   2,
			reason: "below workers.min 2",
		},
		{
			name:   "busy workers stay",
			cfg:    m5(false),
			in:     idleInput(append(workers(1, 0), Worker{ID: "busy", Cores: 4, CoresUsed: 0, Drivers: 1}), time.Hour, 10),
			remove: []string{"w1"},
		},
		{
			name: "a spot interruption is drained and replaced at once",
			cfg:  m5(true),
			in: Input{Observation: Observation{Now: t0, Workers: []Worker{
				{ID: "od", Cores: 4, CoresUsed: 4, Executors: 1, Market: OnDemand}, {ID: "s1", Cores: 4, CoresUsed: 4, Executors: 1, Market: Spot, Interrupted: true}}}},
			adds: 1, remove: []string{"s1"}, reason: "1 spot interruption(s): drain and replace",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.IdleFor == nil {
				tc.in.IdleFor, tc.in.IdleSeen = map[string]time.Duration{}, map[string]int{}
			}
			d := Decide(tc.cfg, tc.in)
			if d.Adds() != tc.adds {
				t.Errorf("adds %d, want %d (%s)", d.Adds(), tc.adds, d)
			}
			if strings.Join(d.Remove, ",") != strings.Join(tc.remove, ",") {
				t.Errorf("remove %v, want %v (%s)", d.Remove, tc.remove, d)
			}
			if tc.reason != "" && !strings.Contains(d.String(), tc.reason) {
				t.Errorf("reason %q lacks %q", d.String(), tc.reason)
			}
		})
	}
}

func TestSpotLaunches(t *testing.T) {
	c := m5(true)
	c.OnDemandBase = 1
	in := Input{Observation: Observation{Now: t0, Apps: []App{{ID: "a", CoresWanted: 20, Waiting: true}}}, Unavailable: map[string]bool{}}
	d := Decide(c, in)
	want := "m5.xlarge/on-demand×1 m5.xlarge/spot×2 m5a.xlarge/spot×2"
	if got := launches(d); got != want {
		t.Errorf("diversified with an on-demand base: %s, want %s", got, want)
	}
	in.Unavailable["m5.xlarge"] = true
	if got := launches(Decide(c, in)); got != "m5a.xlarge/on-demand×1 m5a.xlarge/spot×4" {
		t.Errorf("after a capacity error on m5.xlarge: %s", got)
	}
	in.Unavailable["m5a.xlarge"] = true
	if got := launches(Decide(c, in)); got != "m5.xlarge/on-demand×5" {
		t.Errorf("with no spot type left, on-demand: %s", got)
	}
}

func launches(d Decision) string {
	var parts []string
	for _, l := range d.Launch {
		parts = append(parts, fmt.Sprintf("%s/%s×%d", l.InstanceType, l.Market, l.Count))
	}
	return strings.Join(parts, " ")
}

func TestCPUPolicyNeedsAWorker(t *testing.T) {
	c := Config{Policy: PolicyCPU, Min: 0, Max: 10, Types: []InstanceType{{Name: "m5.xlarge", Cores: 4}}}.Defaults()
	// With no worker there is no utilisation to read: like an autoscaling group whose CPU alarm
	// has no data, the rule could never scale out again, so it keeps one.
	if d := Decide(c, Input{Observation: Observation{Now: t0}}); d.Adds() != 1 {
		t.Errorf("from zero: %s", d)
	}
	if d := Decide(c, Input{Observation: Observation{Now: t0, Workers: workers(1, 0)}, CPU: []Sample{{}, {}}}); len(d.Remove) != 0 {
		t.Errorf("the last worker went: %s", d)
	}
}

func TestCPUPolicy(t *testing.T) {
	c := Config{Policy: PolicyCPU, Min: 1, Max: 10, Types: []InstanceType{{Name: "m5.xlarge", Cores: 4}}}.Defaults()
	hot := []Sample{{Utilization: 0.9}, {Utilization: 0.95}}
	cold := []Sample{{Utilization: 0.1}, {Utilization: 0.05}}
	mixed := []Sample{{Utilization: 0.9}, {Utilization: 0.5}}
	ws := workers(4, 4)
	ws[2].Registered = t0.Add(-time.Hour) // oldest
	ws[3].Registered = t0.Add(-30 * time.Minute)
	for _, tc := range []struct {
		name     string
		cpu      []Sample
		last     time.Time
		adds     int
		remove   string
		contains string
	}{
		{"two hot periods add two", hot, time.Time{}, 2, "", "above 85% for 2 periods of 2m0s"},
		{"two cold periods remove the two oldest, busy or not", cold, time.Time{}, 0, "w3,w4", "below 20%"},
		{"one hot period is not enough", mixed, time.Time{}, 0, "", "utilisation 50%"},
		{"cooldown", hot, t0.Add(-4 * time.Minute), 0, "", "cooldown"},
		{"after the cooldown", hot, t0.Add(-6 * time.Minute), 2, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(c, Input{Observation: Observation{Now: t0, Workers: ws}, CPU: tc.cpu, LastScaleOut: tc.last})
			if d.Adds() != tc.adds || strings.Join(d.Remove, ",") != tc.remove || !strings.Contains(d.Reason, tc.contains) {
				t.Errorf("got %s (remove %v)", d, d.Remove)
			}
		})
	}
}

// Properties over random clusters: within [min, max], and the spark policy removes only idle
// workers.
func TestPolicyProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		cfg := m5(rng.IntN(2) == 0)
		cfg.Min = rng.IntN(4)
		cfg.Max = cfg.Min + 1 + rng.IntN(12)
		cfg.DisruptionBudget = 1 + rng.IntN(4)
		if rng.IntN(2) == 0 {
			cfg.Policy = PolicyCPU
		}
		in := Input{Observation: Observation{Now: t0}, IdleFor: map[string]time.Duration{}, IdleSeen: map[string]int{}, LaunchLatency: time.Duration(rng.IntN(300)) * time.Second}
		nw := rng.IntN(cfg.Max + 1)
		for j := 0; j < nw; j++ {
			w := Worker{ID: fmt.Sprintf("w%d", j), Cores: 4, Registered: t0.Add(-time.Duration(rng.IntN(3600)) * time.Second), Market: OnDemand}
			if rng.IntN(2) == 0 {
				w.Market = Spot
			}
			switch rng.IntN(4) {
			case 0:
				w.CoresUsed, w.Executors = rng.IntN(5), 1
			case 1:
				w.Drivers, w.CoresUsed = 1, 1
			case 2:
				w.Draining = rng.IntN(3) == 0
				w.Interrupted = rng.IntN(5) == 0
			}
			if w.Idle() {
				in.IdleFor[w.ID], in.IdleSeen[w.ID] = time.Duration(rng.IntN(3600))*time.Second, rng.IntN(6)
			}
			in.Workers = append(in.Workers, w)
		}
		for j := 0; j < rng.IntN(3); j++ {
			in.Pending = append(in.Pending, Pending{ID: fmt.Sprintf("p%d", j), Cores: 4})
		}
		for j := 0; j < rng.IntN(4); j++ {
			in.Apps = append(in.Apps, App{ID: fmt.Sprint(j), CoresGranted: rng.IntN(8), CoresWanted: rng.IntN(60) - 1, Waiting: rng.IntN(3) == 0,
				TasksLeft: rng.IntN(1000), TaskSeconds: float64(rng.IntN(5))})
		}
		for j := 0; j < 3; j++ {
			in.CPU = append(in.CPU, Sample{Utilization: rng.Float64()})
		}
		d := Decide(cfg, in)
		if d.Empty() != (d.Cause == "") {
			t.Fatalf("case %d: a decision that changes something has a cause, and only then: %+v", i, d)
		}

		live, busy := 0, map[string]bool{}
		for _, w := range in.Workers {
			if !w.Draining && !w.Interrupted {
				live++
			}
			if !w.Idle() {
				busy[w.ID] = true
			}
		}
		liveAfter, removedLive := live, 0
		for _, id := range d.Remove {
			for _, w := range in.Workers {
				if w.ID == id && !w.Draining && !w.Interrupted {
					liveAfter--
					removedLive++
				}
			}
		}
		if total := liveAfter + len(in.Pending) + d.Adds(); total > cfg.Max && d.Adds() > 0 {
			t.Fatalf("case %d: %d workers after %s, above max %d\n%+v", i, total, d, cfg.Max, in)
		}
		if cfg.Policy == PolicyCPU {
			// An autoscaling group does not know of interruptions: every worker not draining counts.
			liveAfter, removedLive = 0, len(d.Remove)
			for _, w := range in.Workers {
				if !w.Draining {
					liveAfter++
				}
			}
			liveAfter -= removedLive
		}
		if removedLive > 0 && liveAfter < cfg.Min {
			t.Fatalf("case %d: %d live workers after %s, below min %d", i, liveAfter, d, cfg.Min)
		}
		if cfg.Policy == PolicySpark {
			for _, id := range d.Remove {
				for _, w := range in.Workers {
					if w.ID == id && busy[id] && !w.Interrupted {
						t.Fatalf("case %d: the spark policy removes busy worker %+v", i, w)
					}
				}
			}
		}
	}
}

func TestControllerHistory(t *testing.T) {
	c := NewController(Config{Policy: PolicySpark, Max: 5, Types: []InstanceType{{Name: "x", Cores: 4}}})
	ws := workers(2, 0)
	now := t0
	var d Decision
	for i := 0; i < 20; i++ { // 20 observations 10 s apart: 190 s idle
		d = c.Decide(Observation{Now: now, Workers: ws})
		now = now.Add(10 * time.Second)
	}
	if len(d.Remove) != 1 {
		t.Errorf("after 190 s idle (keep-alive 90 s), one at a time (disruption budget 1): %s", d)
	}
	// A measured launch latency lengthens the keep-alive.
	c2 := NewController(Config{Policy: PolicySpark, Max: 5, Types: []InstanceType{{Name: "x", Cores: 4}}})
	for i := 0; i < 5; i++ {
		c2.LaunchObserved(5 * time.Minute)
	}
	now = t0
	for i := 0; i < 25; i++ { // 240 s idle
		d = c2.Decide(Observation{Now: now, Workers: ws})
		now = now.Add(10 * time.Second)
	}
	if len(d.Remove) != 0 || c2.LaunchLatency() != 5*time.Minute {
		t.Errorf("with 5 min launches the keep-alive is 5 min, not over after 240 s: %s", d)
	}
	// Utilisation periods close every CPUPeriod.
	c3 := NewController(Config{Policy: PolicyCPU, Min: 1, Max: 10, Types: []InstanceType{{Name: "x", Cores: 4}}})
	now = t0
	for i := 0; i <= 24; i++ { // 4 minutes at 100%
		d = c3.Decide(Observation{Now: now, Workers: workers(2, 4)})
		now = now.Add(10 * time.Second)
	}
	if d.Adds() != 2 {
		t.Errorf("two full periods at 100%%: %s", d)
	}
	c3.CapacityError("x", now)
	if !c3.Decide(Observation{Now: now}).Empty() && c3.unavailable["x"].IsZero() {
		t.Error("capacity error not recorded")
	}
}
