package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparkplane/sparkplane/internal/autoscale"
	"github.com/sparkplane/sparkplane/internal/autoscale/sim"
	"github.com/sparkplane/sparkplane/internal/spec"
)

type simulateOptions struct {
	spec               specFlags
	trace, format, svg string
	policies           []string
	days, staticSize   int
	types              []string
	rate               float64
	launch             string
	interrupt          float64
	interruptSet       bool // --interrupt-rate was given
	appCores           int
	seed               uint64
	output             string
}

func newSimulateCmd(f *Factory) *cobra.Command {
	o := &simulateOptions{}
	cmd := &cobra.Command{
		Use:   "simulate -f SPEC --trace FILE [flags]",
		Short: "Compare autoscaling policies on a trace of jobs",
		Long: `Replay a day of job arrivals on a model of a Spark standalone cluster under each autoscaling
policy, and compare them: cost, instance-hours, job completion time and bounded slowdown
((wait + run) / max(run alone, 10 s)) at the 50th, 95th and 99th percentiles, busy workers
removed, spot interruptions. The spec gives workers.min, workers.max, workers.instanceTypes
(prices from a built-in us-east-1 catalogue, or --type) and workers.spot. The policies are the
ones the master's agent runs; the model's numbers are in docs/autoscaling.md.

Traces: SWIM (tab separated: name, submit seconds, gap, input, shuffle, output bytes), like the
Facebook day in internal/autoscale/sim/testdata, or CSV (submit seconds, tasks, seconds per task).`,
		Example: `  sparkplane simulate -f examples/fb-day.yaml --trace internal/autoscale/sim/testdata/FB-2009_samples_24_times_1hr_0.tsv
  sparkplane simulate -f examples/fb-day.yaml --trace jobs.csv --policy spark,static --svg day.svg
  sparkplane simulate -f examples/fb-day.yaml --trace day.tsv --days 10 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.interruptSet = cmd.Flags().Changed("interrupt-rate")
			return runSimulate(cmd.Context(), f, o)
		},
	}
	o.spec.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&o.trace, "trace", "", "the trace of jobs to replay")
	fl.StringVar(&o.format, "format", "auto", "trace format: swim, csv, or auto (by file name)")
	fl.StringSliceVar(&o.policies, "policy", sim.Policies, "policies to compare")
	fl.StringVar(&o.svg, "svg", "", "write a chart of workers and waiting tasks over time to this file")
	fl.IntVar(&o.days, "days", 0, "also simulate this many other days of the same kind (the trace's hours resampled) and summarise them")
	fl.IntVar(&o.staticSize, "static-size", 0, "workers of the static cluster (default: enough for the day's 95th-percentile demand)")
	fl.StringArrayVar(&o.types, "type", nil, "an instance type the catalogue lacks, or your own prices: name:cores:on-demand[:spot] $/h (repeatable)")
	fl.Float64Var(&o.rate, "rate", 0, "MiB/s one core processes (default 64)")
	fl.StringVar(&o.launch, "launch", "", "launch latency range, e.g. 60s-150s (default)")
	fl.Float64Var(&o.interrupt, "interrupt-rate", sim.DefaultModel().InterruptRate, "spot interruptions per spot instance-hour")
	fl.IntVar(&o.appCores, "app-cores", 0, "cores one application may hold, like spark.deploy.defaultCores (default: no cap, Spark's default)")
	fl.Uint64Var(&o.seed, "seed", 1, "random seed (launch latencies, interruptions, capacity errors)")
	addOutputFlag(cmd, &o.output)
	cmd.MarkFlagRequired("trace")
	return cmd
}

// simConfig turns the spec into the autoscaler's configuration, with instance types priced.
func simConfig(c *spec.Cluster, extra []string) (autoscale.Config, []string, error) {
	var warnings []string
	custom := map[string]autoscale.InstanceType{}
	for _, s := range extra {
		t, err := autoscale.ParseType(s)
		if err != nil {
			return autoscale.Config{}, nil, usagef("--type %v", err)
		}
		custom[t.Name] = t
	}
	names := c.Workers.InstanceTypes
	if len(names) == 0 {
		names = []string{"m5.xlarge"}
		warnings = append(warnings, "the spec names no workers.instanceTypes: simulating m5.xlarge workers")
	}
	cfg := autoscale.Config{Min: c.Workers.Min, Max: c.Workers.Max, Spot: c.Workers.Spot, Headroom: c.Autoscale.Headroom}
	for i, n := range names {
		t, ok := custom[n]
		if !ok {
			if t, ok = autoscale.LookupType(n); !ok {
				return cfg, nil, c.Origin.Errorf(fmt.Sprintf("workers.instanceTypes[%d]", i),
					fmt.Sprintf("give its cores and prices with --type %s:CORES:ON-DEMAND[:SPOT]", n), "the simulator has no price for %q", n)
			}
		}
		cfg.Types = append(cfg.Types, t)
	}
	return cfg, warnings, nil
}

func (o *simulateOptions) model() (sim.Model, error) {
	m := sim.DefaultModel()
	m.Seed = o.seed
	// Numbers outside these ranges (NaN, infinities, a rate that makes a task last centuries, a
	// storm of interruptions) describe no cluster, and would overflow the simulator's clock.
	between := func(flag string, v, lo, hi float64) error {
		if math.IsNaN(v) || v < lo || v > hi {
			return usagef("--%s %v: give a number from %g to %g", flag, v, lo, hi)
		}
		return nil
	}
	if o.rate != 0 {
		if err := between("rate", o.rate, 0.01, 1e6); err != nil {
			return m, err
		}
		m.CoreRate = o.rate * (1 << 20)
	}
	if o.interruptSet {
		if err := between("interrupt-rate", o.interrupt, 0, 10); err != nil {
			return m, err
		}
		m.InterruptRate = o.interrupt
	}
	if o.appCores < 0 || o.staticSize < 0 || o.days < 0 || o.days > 366 || o.staticSize > 100_000 {
		return m, usagef("--app-cores, --static-size and --days are counts: 0 or more (--days at most 366, --static-size at most 100000)")
	}
	if o.appCores > 0 {
		m.AppCores = o.appCores
	}
	if o.launch != "" {
		lo, hi, ok := strings.Cut(o.launch, "-")
		a, err1 := time.ParseDuration(lo)
		b, err2 := time.ParseDuration(hi)
		if !ok || err1 != nil || err2 != nil || a <= 0 || b < a {
			return m, usagef("--launch %s: want a range such as 60s-150s", o.launch)
		}
		m.LaunchMin, m.LaunchMax = a, b
	}
	return m, nil
}

func readTrace(path, format string, m sim.Model) ([]sim.Job, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &usageError{fmt.Errorf("--trace: %w", err)}
	}
	defer f.Close()
	if format == "auto" {
		format = "swim"
		if strings.EqualFold(filepath.Ext(path), ".csv") {
			format = "csv"
		}
	}
	var jobs []sim.Job
	switch format {
	case "swim":
		jobs, err = sim.ReadSWIM(f, m)
	case "csv":
		jobs, err = sim.ReadCSV(f)
	default:
		return nil, usagef("--format %s: use swim, csv or auto", format)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return jobs, nil
}

type simulation struct {
	Trace      string        `json:"trace"`
	Jobs       int           `json:"jobs"`
	StaticSize int           `json:"staticWorkers"`
	Model      sim.Model     `json:"model"`
	Results    []*sim.Result `json:"results"`
	Targets    sim.Targets   `json:"targets"`
	Days       []daySummary  `json:"otherDays,omitempty"`
	DayTargets *dayTargets   `json:"otherDaysTargets,omitempty"`
}

// dayTargets counts the other days on which each target held.
type dayTargets struct {
	Days              int `json:"days"`
	BeatsCPU          int `json:"beatsCPU"`
	CheaperThanStatic int `json:"cheaperThanStaticWithin1_2xSlowdown"`
	NoBusyRemovals    int `json:"noBusyRemovals"`
	NearLowerBound    int `json:"within1_5xLowerBoundAndSlowdown3"`
}

type daySummary struct {
	Policy         string  `json:"policy"`
	Days           int     `json:"days"`
	CostRatioMin   float64 `json:"costRatioMin"`
	CostRatioMax   float64 `json:"costRatioMax"`
	P95SlowdownMin float64 `json:"p95BoundedSlowdownMin"`
	P95SlowdownMax float64 `json:"p95BoundedSlowdownMax"`
	BusyRemovals   int     `json:"busyWorkersRemoved"`
}

func yesNo(b bool) string {
	if b {
		return "✓"
	}
	return "✗"
}

func runSimulate(ctx context.Context, f *Factory, o *simulateOptions) error {
	f.exitOnInterrupt() // it only computes
	for _, p := range o.policies {
		if !slices.Contains(sim.Policies, p) {
			return usagef("--policy %s: the policies are %s", p, strings.Join(sim.Policies, ", "))
		}
	}
	c, err := o.spec.load(ctx, "simulated")
	if err != nil {
		return err
	}
	cfg, warnings, err := simConfig(c, o.types)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		f.IO.Warn("%s", w)
	}
	m, err := o.model()
	if err != nil {
		return err
	}
	jobs, err := readTrace(o.trace, o.format, m)
	if te := (*sim.TraceError)(nil); errors.As(err, &te) {
		return &usageError{fmt.Errorf("%s: %w", o.trace, err)} // a trace to mend, like a spec
	}
	if err != nil {
		return err
	}
	cfg = cfg.Defaults()
	size := o.staticSize
	if size <= 0 {
		size = sim.StaticSize(jobs, m, cfg.Types[0].Cores)
	}
	status, end := f.IO.StepStatus("Simulating %d jobs under %s", len(jobs), strings.Join(o.policies, ", "))
	out := simulation{Trace: o.trace, Jobs: len(jobs), StaticSize: size, Model: m,
		Results: sim.Compare(jobs, cfg, m, o.policies, size, replayProgress(status, f.IO.errTTY && f.IO.outTTY, 2*time.Second))}
	out.Targets = sim.Check(out.Results)
	end()
	if o.days > 0 {
		end := f.IO.Step("Simulating %d other days of the same kind", o.days)
		out.Days, out.DayTargets = otherDays(jobs, cfg, m, o.policies, o.days)
		end()
	}
	if o.svg != "" {
		file, err := os.Create(o.svg)
		if err != nil {
			return err
		}
		title := fmt.Sprintf("%s: %d jobs, workers.max %d", filepath.Base(o.trace), len(jobs), cfg.Max)
		err = sim.WriteSVG(file, title, out.Results)
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		f.IO.Success("chart written to %s", o.svg)
	}
	if o.output != FormatTable {
		for _, r := range out.Results {
			r.Series = nil // in the chart; thousands of points are no use in a report
		}
		return f.IO.Print(o.output, out)
	}
	t := f.IO.NewTable("POLICY", "COST", "×LOWER BOUND", "INSTANCE-H", "JCT P50", "JCT P95", "JCT P99", "BSD P50", "BSD P95", "BSD P99", "BUSY REMOVED", "INTERRUPTIONS", "TASKS RERUN", "SIM TIME")
	for _, r := range out.Results {
		name := r.Policy
		if name == "static" {
			name = fmt.Sprintf("static(%d)", size)
		}
		t.Row(name, fmt.Sprintf("$%.2f", r.CostUSD), fmt.Sprintf("%.2f", r.CostRatio()), fmt.Sprintf("%.1f", r.InstanceHours),
			secs(r.JCTSeconds.P50), secs(r.JCTSeconds.P95), secs(r.JCTSeconds.P99),
			fmt.Sprintf("%.2f", r.BoundedSlow.P50), fmt.Sprintf("%.2f", r.BoundedSlow.P95), fmt.Sprintf("%.2f", r.BoundedSlow.P99),
			strconv.Itoa(r.BusyRemovals), strconv.Itoa(r.Interruptions), strconv.Itoa(r.LostTasks), r.Elapsed.Round(time.Millisecond).String())
	}
	if err := t.Render(); err != nil {
		return err
	}
	if len(out.Results) > 0 {
		fmt.Fprintf(f.IO.Out, "lower bound: $%.2f (all task-seconds at full utilisation on the cheapest core-hour)\n", out.Results[0].LowerBoundUSD)
	}
	if len(o.policies) == len(sim.Policies) {
		tg := out.Targets
		fmt.Fprintf(f.IO.Out, "targets: spark beats cpu on cost and p95 slowdown %s; costs less than static with p95 within 1.2× %s; removes no busy worker %s; ≤1.5× lower bound with p95 ≤ 3 %s\n",
			yesNo(tg.BeatsCPU), yesNo(tg.CheaperThanStatic), yesNo(tg.NoBusyRemovals), yesNo(tg.NearLowerBound))
	}
	if len(out.Days) > 0 {
		fmt.Fprintf(f.IO.Out, "\n%d other days of the same kind (hours resampled):\n", o.days)
		dt := f.IO.NewTable("POLICY", "×LOWER BOUND", "BSD P95", "BUSY REMOVED")
		for _, d := range out.Days {
			dt.Row(d.Policy, fmt.Sprintf("%.2f–%.2f", d.CostRatioMin, d.CostRatioMax), fmt.Sprintf("%.1f–%.1f", d.P95SlowdownMin, d.P95SlowdownMax),
				strconv.Itoa(d.BusyRemovals))
		}
		if err := dt.Render(); err != nil {
			return err
		}
		if dtg := out.DayTargets; dtg != nil {
			fmt.Fprintf(f.IO.Out, "targets on those days: beats cpu %d/%d; cheaper than static with p95 within 1.2× %d/%d; no busy removal %d/%d; ≤1.5× lower bound with p95 ≤ 3 %d/%d\n",
				dtg.BeatsCPU, dtg.Days, dtg.CheaperThanStatic, dtg.Days, dtg.NoBusyRemovals, dtg.Days, dtg.NearLowerBound, dtg.Days)
		}
	}
	return nil
}

func secs(s float64) string {
	if s >= 100 {
		return fmt.Sprintf("%.0fs", s)
	}
	return fmt.Sprintf("%.1fs", s)
}

// replayProgress reports a long replay's progress: on a terminal every hundredth of the jobs,
// otherwise a line at every tenth once the replay has run for quiet (two seconds), so that a
// short one prints nothing more.
func replayProgress(status func(string), terminal bool, quiet time.Duration) func(policy string, finished, total int) {
	start := time.Now()
	lastTenth := map[string]int{}
	return func(policy string, finished, total int) {
		line := fmt.Sprintf("%s: %d of %d jobs finished", policy, finished, total)
		if terminal {
			status(line)
			return
		}
		tenth := finished * 10 / total
		if tenth > lastTenth[policy] && tenth < 10 && time.Since(start) >= quiet {
			status(line)
		}
		lastTenth[policy] = tenth
	}
}

// otherDays simulates resampled days and summarises each policy across them.
func otherDays(jobs []sim.Job, cfg autoscale.Config, m sim.Model, policies []string, n int) ([]daySummary, *dayTargets) {
	sums := map[string]*daySummary{}
	for _, p := range policies {
		sums[p] = &daySummary{Policy: p, CostRatioMin: math.Inf(1), P95SlowdownMin: math.Inf(1)}
	}
	tg := &dayTargets{Days: n}
	count := func(ok bool) int {
		if ok {
			return 1
		}
		return 0
	}
	for day := 1; day <= n; day++ {
		dj := sim.Resample(jobs, uint64(day))
		dm := m
		dm.Seed = m.Seed + uint64(day)
		res := sim.Compare(dj, cfg, dm, policies, 0, nil)
		t := sim.Check(res)
		tg.BeatsCPU += count(t.BeatsCPU)
		tg.CheaperThanStatic += count(t.CheaperThanStatic)
		tg.NoBusyRemovals += count(t.NoBusyRemovals)
		tg.NearLowerBound += count(t.NearLowerBound)
		for _, r := range res {
			s := sums[policyName(r.Policy)]
			s.Days++
			s.CostRatioMin, s.CostRatioMax = math.Min(s.CostRatioMin, r.CostRatio()), math.Max(s.CostRatioMax, r.CostRatio())
			s.P95SlowdownMin, s.P95SlowdownMax = math.Min(s.P95SlowdownMin, r.BoundedSlow.P95), math.Max(s.P95SlowdownMax, r.BoundedSlow.P95)
			s.BusyRemovals += r.BusyRemovals
		}
	}
	var out []daySummary
	for _, p := range policies {
		out = append(out, *sums[p])
	}
	return out, tg
}

func policyName(p string) string {
	if p == autoscale.PolicyOff {
		return "static"
	}
	return p
}
