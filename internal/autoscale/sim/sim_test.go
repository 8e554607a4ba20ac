package sim

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/autoscale"
)

var m5 = autoscale.InstanceType{Name: "m5.xlarge", Cores: 4, OnDemand: 0.192, Spot: 0.073}

func csvJobs(t *testing.T, text string) []Job {
	t.Helper()
	jobs, err := ReadCSV(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func quietModel() Model {
	m := DefaultModel()
	m.InterruptRate, m.CapacityErrorRate = 0, 0
	m.LaunchMin, m.LaunchMax = 60*time.Second, 60*time.Second
	return m
}

func TestStaticClusterExactly(t *testing.T) {
	// One job of 8 tasks × 10 s on 2 workers of 4 cores: one wave.
	jobs := csvJobs(t, "submit,tasks,seconds\n0,8,10\n")
	m := quietModel()
	r := Run(jobs, Setup{Config: autoscale.Config{Policy: autoscale.PolicyOff, Types: []autoscale.InstanceType{m5}}, Initial: 2}, m)
	// The job's driver starts (5 s), then its tasks run 10 s.
	if r.JCTSeconds.P50 != 15 {
		t.Errorf("completion %v s, want 15", r.JCTSeconds.P50)
	}
	// Two workers billed for the 15 s: the 60 s minimum applies.
	if want := 2 * 60.0 / 3600 * 0.192; math.Abs(r.CostUSD-want) > 1e-9 {
		t.Errorf("cost %v, want %v", r.CostUSD, want)
	}
	if want := 80.0 / 3600 * 0.192 / 4; math.Abs(r.LowerBoundUSD-want) > 1e-9 {
		t.Errorf("lower bound %v, want %v", r.LowerBoundUSD, want)
	}
	// Alone on an unlimited cluster it would also take 15 s: slowdown 15/15.
	if r.BoundedSlow.P50 != 1 {
		t.Errorf("bounded slowdown %v", r.BoundedSlow.P50)
	}
}

// Progress comes at each hundredth of the jobs, in order, and ends with all of them.
func TestProgressReachesEveryJob(t *testing.T) {
	var trace strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&trace, "%d,%d,%d\n", i, 1+i%7, 1+i%13)
	}
	var seen []int
	Run(csvJobs(t, trace.String()), Setup{Config: autoscale.Config{Policy: autoscale.PolicyOff, Types: []autoscale.InstanceType{m5}}, Initial: 3,
		OnProgress: func(finished, total int) {
			if total != 1000 {
				t.Errorf("total %d", total)
			}
			seen = append(seen, finished)
		}}, quietModel())
	if len(seen) != 100 || seen[len(seen)-1] != 1000 || !slices.IsSorted(seen) || seen[0] != 10 {
		t.Errorf("progress: %v", seen)
	}
}

// A deep queue costs nothing per event: 20,000 one-task jobs arrive at once on one worker, and
// scheduling and the autoscaler's observations look at a bounded number of jobs per task, not
// at the whole queue (which would be 200 million looks).
func TestBacklogIsNotWalked(t *testing.T) {
	var trace strings.Builder
	for range 20_000 {
		trace.WriteString("0,1,1\n")
	}
	jobs := csvJobs(t, trace.String())
	for _, policy := range []string{autoscale.PolicyOff, autoscale.PolicySpark} {
		r := Run(jobs, Setup{Config: autoscale.Config{Policy: policy, Min: 1, Max: 1, Types: []autoscale.InstanceType{m5}}, Initial: 1}, quietModel())
		if r.JCTSeconds.P99 < 4000 {
			t.Fatalf("%s: no backlog built: p99 %v s", policy, r.JCTSeconds.P99)
		}
		if r.visits > 10*20_000 {
			t.Errorf("%s: %d jobs looked at for 20,000 tasks", policy, r.visits)
		}
	}
}

func TestFIFOAcrossApplications(t *testing.T) {
	// A long job takes the only worker; a one-task job behind it waits for its tasks to run out.
	jobs := csvJobs(t, "0,8,10\n1,1,1\n")
	r := Run(jobs, Setup{Config: autoscale.Config{Policy: autoscale.PolicyOff, Types: []autoscale.InstanceType{m5}}, Initial: 1}, quietModel())
	// Job 1: tasks start at 5 s, two waves of 10 s: done at 25 s. Job 2 runs from 6 s + waits:
	// its task starts when the first wave ends (15 s) only after job 1's second wave is placed,
	// i.e. at 25 s, and ends at 26 s: 25 s after its submission.
	if r.JCTSeconds.P99 != 25 {
		t.Errorf("the small job took %v s, want 25 (behind the big one)", r.JCTSeconds.P99)
	}
	m := quietModel()
	m.AppCores = 3
	r = Run(jobs, Setup{Config: autoscale.Config{Policy: autoscale.PolicyOff, Types: []autoscale.InstanceType{m5}}, Initial: 1}, m)
	// The small job's task takes the fourth core as soon as its driver is up: 5 s + 1 s.
	if r.JCTSeconds.P50 != 6 {
		t.Errorf("with a 3-core cap per application the small job runs at once: %v s, want 6", r.JCTSeconds.P50)
	}
}

func TestSparkPolicyScalesFromZeroAndBack(t *testing.T) {
	// A big job, then a long quiet spell before a small one.
	jobs := csvJobs(t, "0,40,120\n1800,1,1\n")
	m := quietModel()
	cfg := autoscale.Config{Policy: autoscale.PolicySpark, Min: 0, Max: 10, Types: []autoscale.InstanceType{m5}}
	var decisions []string
	r := Run(jobs, Setup{Config: cfg, OnDecision: func(at time.Duration, d autoscale.Decision) { decisions = append(decisions, d.String()) }}, m)
	// 40 tasks of 2 minutes want 10 workers; all arrive after 60 s; one wave.
	if r.PeakWorkers != 10 || r.JCTSeconds.P99 > 5+60+10+120+1 {
		t.Errorf("peak %d, completion %v s", r.PeakWorkers, r.JCTSeconds.P99)
	}
	scaledIn := false
	for _, d := range decisions {
		scaledIn = scaledIn || strings.Contains(d, "scale in")
	}
	if len(decisions) < 3 || !strings.HasPrefix(decisions[0], "scale out +10") || !scaledIn || !strings.HasPrefix(decisions[len(decisions)-1], "scale out +1") {
		t.Errorf("decisions: %q", decisions)
	}
	if r.BusyRemovals != 0 {
		t.Errorf("busy removals: %d", r.BusyRemovals)
	}
}

func TestCPUPolicyKillsBusyWorkers(t *testing.T) {
	// Utilisation drops below 20% while long tasks still run on the oldest workers: seed 001's
	// rule removes them anyway and their tasks run again elsewhere.
	jobs := csvJobs(t, "0,16,1800\n")
	m := quietModel()
	cfg := autoscale.Config{Policy: autoscale.PolicyCPU, Min: 1, Max: 10, Types: []autoscale.InstanceType{m5}}
	r := Run(append(jobs, csvJobs(t, "2000,1,1\n")...), Setup{Config: cfg, Initial: 8}, m)
	if r.Jobs != 2 || r.JCTSeconds.P99 == 0 {
		t.Fatalf("%+v", r)
	}
	// 16 tasks on 32 cores: 50% until they end; then idle: the rule removes workers. Nothing
	// busy is removed here. Now make most of the cores idle while a few tasks run.
	jobs = csvJobs(t, "0,2,3600\n")
	r = Run(jobs, Setup{Config: cfg, Initial: 8}, m)
	if r.BusyRemovals == 0 || r.LostTasks == 0 {
		t.Errorf("the cpu rule should have removed a busy worker: %+v", r)
	}
}

func TestInterruptionsAreSurvived(t *testing.T) {
	jobs := csvJobs(t, "0,64,60\n100,64,60\n200,64,60\n300,64,60\n")
	m := quietModel()
	m.InterruptRate = 30 // interruptions every couple of minutes
	for _, pol := range []string{autoscale.PolicySpark, autoscale.PolicyCPU} {
		cfg := autoscale.Config{Policy: pol, Min: 1, Max: 10, Spot: true, Types: []autoscale.InstanceType{m5}}
		r := Run(jobs, Setup{Config: cfg, Initial: 4}, m)
		if r.Interruptions == 0 {
			t.Errorf("%s: no interruption drawn", pol)
		}
		if got := len(r.Series); got == 0 || r.JCTSeconds.P99 == 0 {
			t.Errorf("%s: jobs did not finish: %+v", pol, r)
		}
	}
}

func TestDeterministic(t *testing.T) {
	jobs := csvJobs(t, "0,100,3\n30,5,1\n90,400,2\n")
	cfg := autoscale.Config{Policy: autoscale.PolicySpark, Max: 10, Spot: true, Types: []autoscale.InstanceType{m5}}
	a := Run(jobs, Setup{Config: cfg}, DefaultModel())
	b := Run(jobs, Setup{Config: cfg}, DefaultModel())
	a.Elapsed, b.Elapsed = 0, 0
	if a.CostUSD != b.CostUSD || a.JCTSeconds != b.JCTSeconds || len(a.Series) != len(b.Series) {
		t.Errorf("two runs with one seed differ: %+v %+v", a, b)
	}
}

func TestReadSWIM(t *testing.T) {
	m := DefaultModel()
	jobs, err := ReadSWIM(strings.NewReader("job0\t10\t10\t268435456\t134217728\t0\njob1\t5\t0\t100\t0\t50\n"), m)
	if err != nil {
		t.Fatal(err)
	}
	if jobs[0].Name != "job1" || jobs[1].Name != "job0" {
		t.Errorf("jobs are sorted by submission: %v", jobs)
	}
	j := jobs[1]
	// 256 MiB input: 2 map tasks of 128 MiB; 128 MiB shuffle: 2 reducers of 64 MiB.
	if len(j.Stages) != 2 || j.Stages[0].Tasks != 2 || j.Stages[1].Tasks != 2 {
		t.Fatalf("stages: %+v", j.Stages)
	}
	if want := m.TaskOverhead + 2*time.Second; j.Stages[0].TaskTime != want {
		t.Errorf("map task %v, want %v (128 MiB at 64 MiB/s)", j.Stages[0].TaskTime, want)
	}
	for _, bad := range []string{"job0\t1\t2\n", "job0\tx\t1\t1\t1\t1\n", ""} {
		_, err := ReadSWIM(strings.NewReader(bad), m)
		var te *TraceError
		if err == nil || (bad != "" && !errors.As(err, &te)) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := ReadCSV(strings.NewReader("0,0,1\n")); err == nil {
		t.Error("a job without tasks was accepted")
	}
}

func TestResampleKeepsHours(t *testing.T) {
	jobs := csvJobs(t, "10,1,1\n3700,1,1\n7300,1,1\n")
	if got := Resample(jobs, 0); len(got) != 3 {
		t.Error("seed 0 must keep the trace")
	}
	out := Resample(jobs, 7)
	for _, j := range out {
		if off := j.Submit % time.Hour; off != 10*time.Second && off != 100*time.Second {
			t.Errorf("offset within the hour lost: %v", j.Submit)
		}
	}
}

func fbDay(t testing.TB) []Job {
	f, err := os.Open("testdata/FB-2009_samples_24_times_1hr_0.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	jobs, err := ReadSWIM(f, DefaultModel())
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

var benchTypes = []autoscale.InstanceType{
	{Name: "m5.xlarge", Cores: 4, OnDemand: 0.192, Spot: 0.073},
	{Name: "m5a.xlarge", Cores: 4, OnDemand: 0.172, Spot: 0.0654},
	{Name: "m6i.xlarge", Cores: 4, OnDemand: 0.192, Spot: 0.073},
}

// The benchmark's claims on the Facebook day hold (the one that does not hold, within 1.5× of the
// lower bound with p95 ≤ 3, is reported in docs/autoscaling.md with why).
func TestFBDayClaims(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("replays a whole day; run without -race or -short")
	}
	jobs := fbDay(t)
	if len(jobs) != 5894 {
		t.Fatalf("%d jobs", len(jobs))
	}
	res := Compare(jobs, autoscale.Config{Min: 0, Max: 40, Spot: true, Types: benchTypes}, DefaultModel(), Policies, 0, nil)
	tg := Check(res)
	if !tg.BeatsCPU || !tg.CheaperThanStatic || !tg.NoBusyRemovals {
		for _, r := range res {
			t.Logf("%s: $%.2f p95 %.2f busy removed %d", r.Policy, r.CostUSD, r.BoundedSlow.P95, r.BusyRemovals)
		}
		t.Errorf("targets: %+v", tg)
	}
	var svg bytes.Buffer
	if err := WriteSVG(&svg, "FB day", res); err != nil || !strings.Contains(svg.String(), "<polyline") {
		t.Errorf("chart: %v", err)
	}
}

func BenchmarkFBDay(b *testing.B) {
	jobs := fbDay(b)
	cfg := autoscale.Config{Min: 0, Max: 40, Spot: true, Types: benchTypes}
	for _, p := range Policies {
		b.Run(p, func(b *testing.B) {
			var r *Result
			for i := 0; i < b.N; i++ {
				r = Compare(jobs, cfg, DefaultModel(), []string{p}, 0, nil)[0]
			}
			b.ReportMetric(r.CostUSD, "$")
			b.ReportMetric(r.CostRatio(), "x-lower-bound")
			b.ReportMetric(r.BoundedSlow.P95, "p95-bounded-slowdown")
			b.ReportMetric(float64(r.BusyRemovals), "busy-removed")
		})
	}
}

// NaN, infinities and numbers beyond any real trace are refused with the line and column, in
// both formats, rather than turned into negative or overflowing durations.
func TestTracesRefuseNumbersBeyondReason(t *testing.T) {
	m := DefaultModel()
	for _, bad := range []string{
		"j\tNaN\t0\t1\t0\t0", "j\t1\t0\tNaN\t0\t0", "j\tInf\t0\t1\t0\t0", "j\t1\t0\t+Inf\t0\t0", "j\t1\t0\t-Inf\t0\t0",
		"j\t1e300\t0\t1\t0\t0", "j\t1\t0\t1e308\t0\t0", "j\t1\t0\t1e999\t0\t0", "j\t-1\t0\t1\t0\t0",
		"j\t1\t0\t1e15\t1e15\t0", // a petabyte in 128 MiB splits: more tasks than a job may have
	} {
		if _, err := ReadSWIM(strings.NewReader(bad+"\n"), m); err == nil || !strings.HasPrefix(err.Error(), "line 1: ") {
			t.Errorf("SWIM %q: %v", bad, err)
		}
	}
	for _, bad := range []string{"NaN,1,1", "1,1,NaN", "Inf,1,1", "1,1,Inf", "1e300,1,1", "1,1,1e300", "1,9999999999,1", "1,1,0", "1,1,-2", "-1,1,1", "1,-1,1"} {
		if _, err := ReadCSV(strings.NewReader("submit,tasks,secs\n" + bad + "\n")); err == nil || !strings.HasPrefix(err.Error(), "line 2: ") {
			t.Errorf("CSV %q: %v", bad, err)
		}
	}
	// The largest numbers allowed still make finite, non-negative jobs.
	jobs, err := ReadCSV(strings.NewReader(fmt.Sprintf("%d,%d,%d\n", maxSeconds, maxTasks, maxTaskSeconds)))
	if err != nil || jobs[0].Submit < 0 || jobs[0].Stages[0].TaskTime <= 0 || jobs[0].CoreSeconds() <= 0 {
		t.Errorf("the largest CSV job: %+v %v", jobs, err)
	}
}

// busyDay is n jobs arriving at four times the Facebook day's rate: each day of it is four
// resamples of that day laid over each other, more than the benchmark's 40 workers can keep up
// with, so that a backlog builds.
func busyDay(t testing.TB, n int) []Job {
	const rate = 4
	fb := fbDay(t)
	var out []Job
	for s := 0; len(out) < n; s++ {
		for _, j := range Resample(fb, uint64(s+1)) {
			j.Name = fmt.Sprintf("%s-%d", j.Name, s)
			j.Submit += time.Duration(s/rate) * 24 * time.Hour
			out = append(out, j)
		}
	}
	sortJobs(out)
	return out[:n]
}

// BenchmarkBusyDay replays days with a backlog, for one policy: the time must grow with the jobs
// and tasks, not with the queue squared.
func BenchmarkBusyDay(b *testing.B) {
	cfg := autoscale.Config{Min: 0, Max: 40, Spot: true, Types: benchTypes}
	for _, n := range []int{3000, 6000, 24000, 100000} {
		jobs := busyDay(b, n)
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) {
			var r *Result
			for i := 0; i < b.N; i++ {
				r = Compare(jobs, cfg, DefaultModel(), []string{autoscale.PolicySpark}, 0, nil)[0]
			}
			b.ReportMetric(r.Span.Hours(), "sim-hours")
			b.ReportMetric(float64(r.Jobs), "jobs")
		})
	}
}

// BenchmarkDeepBacklog replays 100,000 jobs that arrive in nine hours and take weeks to drain on
// 40 workers: a queue of tens of thousands of applications at every step.
func BenchmarkDeepBacklog(b *testing.B) {
	var trace strings.Builder
	for i := range 100_000 {
		fmt.Fprintf(&trace, "%d,%d,%d\n", i/3, 1+i%50, 5+i%300)
	}
	jobs, err := ReadCSV(strings.NewReader(trace.String()))
	if err != nil {
		b.Fatal(err)
	}
	cfg := autoscale.Config{Min: 0, Max: 40, Spot: true, Types: benchTypes}
	var r *Result
	for i := 0; i < b.N; i++ {
		r = Compare(jobs, cfg, DefaultModel(), []string{autoscale.PolicySpark}, 0, nil)[0]
	}
	b.ReportMetric(r.Span.Hours(), "sim-hours")
}
