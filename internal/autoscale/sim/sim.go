package sim

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/sparkplane/sparkplane/internal/autoscale"
)

// Setup is the cluster a simulation starts from.
type Setup struct {
	// Config is the autoscaler's configuration; Policy "off" keeps the initial workers.
	Config autoscale.Config
	// Initial workers are running at the start (on demand, or spot when Config.Spot).
	Initial int
	// OnDecision, when set, sees every decision that changes something, with its time.
	OnDecision func(at time.Duration, d autoscale.Decision)
	// OnProgress, when set, hears how many jobs have finished, at each hundredth of them.
	OnProgress func(finished, total int)
}

// Point is the cluster at one moment, for the chart.
type Point struct {
	T       time.Duration `json:"t"`
	Workers int           `json:"workers"`
	Pending int           `json:"pending"`
	Busy    int           `json:"busyCores"`
	Queued  int           `json:"queuedTasks"`
}

// Percentiles of a distribution.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Result is what a simulation measured.
type Result struct {
	Policy         string      `json:"policy"`
	Jobs           int         `json:"jobs"`
	CostUSD        float64     `json:"costUSD"`
	InstanceHours  float64     `json:"instanceHours"`
	LowerBoundUSD  float64     `json:"lowerBoundUSD"`
	JCTSeconds     Percentiles `json:"jobCompletionSeconds"`
	BoundedSlow    Percentiles `json:"boundedSlowdown"`
	BusyRemovals   int         `json:"busyWorkersRemoved"`
	Interruptions  int         `json:"spotInterruptions"`
	CapacityErrors int         `json:"capacityErrors"`
	LostTasks      int         `json:"tasksRerun"`
	// Where the paid instance-hours went: booting (paid before Spark could use the worker),
	// running tasks (busy cores over all cores), the rest idle.
	BootHours float64 `json:"bootHours"`
	BusyHours float64 `json:"busyHours"`
	// Idle core-hours of running workers, split by whether tasks were waiting (cores the
	// scheduler could not use: caps, stage boundaries) or not.
	IdleQueuedCoreHours, IdleEmptyCoreHours float64       `json:"-"`
	Launched                                int           `json:"workersLaunched"`
	PeakWorkers                             int           `json:"peakWorkers"`
	Decisions                               int           `json:"scalingDecisions"`
	Span                                    time.Duration `json:"span"`
	Elapsed                                 time.Duration `json:"simulationWallTime"`
	Series                                  []Point       `json:"series,omitempty"`

	// visits counts the jobs that scheduling and observing looked at, for the test that holds
	// the replay's work to the jobs and tasks rather than to the queue.
	visits int
}

// CostRatio is the cost over the lower bound.
func (r *Result) CostRatio() float64 {
	if r.LowerBoundUSD == 0 {
		return 0
	}
	return r.CostUSD / r.LowerBoundUSD
}

type eventKind int

const (
	evJobStart eventKind = iota
	evTaskEnd
	evWorkerReady
	evNotice
	evDie
	evDecide
	evSample
)

type event struct {
	t    float64
	kind eventKind
	seq  int // keeps equal times in the order they were pushed
	job  *jobState
	task *task
	w    *worker
}

type events []*event

func (e events) Len() int { return len(e) }
func (e events) Less(i, j int) bool {
	if e[i].t != e[j].t {
		return e[i].t < e[j].t
	}
	return e[i].seq < e[j].seq
}
func (e events) Swap(i, j int) { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)   { *e = append(*e, x.(*event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

type worker struct {
	name                   string
	typ                    autoscale.InstanceType
	market                 string
	busy                   int
	requested, readyAt     float64
	ready, draining, dying bool
	interrupted, gone      bool
	lastBusy               float64
	running                map[*task]struct{}
}

type task struct {
	job  *jobState
	w    *worker
	end  float64
	dead bool
	dur  float64
}

type jobState struct {
	Job
	index            int
	started          bool
	stage            int
	pending, running int
	doneTasks        int
	doneSeconds      float64
	finished         bool
	finish           float64
	submit           float64
}

type engine struct {
	m          Model
	setup      Setup
	onDecision func(time.Duration, autoscale.Decision)
	ctrl       *autoscale.Controller
	graceful   bool
	rng        *rand.Rand

	now     float64
	queue   events
	seq     int
	workers []*worker // every worker ever made
	live    []*worker // those not gone
	// Started jobs not finished, in submission order: those that have had a task, then the
	// backlog of those that have not. Spark's FIFO gives cores to a job only when every earlier
	// one holds all it can use, so a job that has never had a task comes after every job that
	// has: the backlog can be counted as a whole rather than walked.
	active  []*jobState
	backlog []*jobState
	// Over the backlog: its tasks (every stage) and the cores it wants now.
	backlogTasks, backlogWanted int
	jobs                        []*jobState
	nextID                      int
	res                         Result
	left                        int // jobs not finished
	queued                      int // pending tasks over every job
	end                         float64
}

// Run simulates jobs on a cluster under setup.Config.Policy.
func Run(jobs []Job, setup Setup, m Model) *Result {
	start := time.Now()
	cfg := setup.Config.Defaults()
	e := &engine{m: m, setup: setup, onDecision: setup.OnDecision, ctrl: autoscale.NewController(cfg), graceful: cfg.Policy == autoscale.PolicySpark,
		rng: rand.New(rand.NewPCG(m.Seed, m.Seed*7919+1))}
	e.res.Policy = cfg.Policy
	if cfg.Policy == autoscale.PolicyOff || cfg.Policy == "" {
		e.res.Policy = "static"
	}
	e.res.Jobs = len(jobs)
	e.left = len(jobs)
	var lastSubmit float64
	for i, j := range jobs {
		js := &jobState{Job: j, index: i, submit: j.Submit.Seconds()}
		e.jobs = append(e.jobs, js)
		e.push(&event{t: js.submit + m.JobOverhead.Seconds(), kind: evJobStart, job: js})
		lastSubmit = max(lastSubmit, js.submit)
	}
	// Every policy's cluster lives at least until the last job arrives.
	e.end = lastSubmit
	for i := 0; i < setup.Initial; i++ {
		market := autoscale.OnDemand
		if cfg.Spot && i >= cfg.OnDemandBase {
			market = autoscale.Spot
		}
		w := e.newWorker(cfg.Types[i%len(cfg.Types)], market)
		w.ready, w.readyAt = true, 0
		e.armInterruption(w)
	}
	if cfg.Policy != autoscale.PolicyOff && cfg.Policy != "" {
		e.push(&event{t: 0, kind: evDecide})
	}
	e.push(&event{t: 0, kind: evSample})
	for e.queue.Len() > 0 {
		ev := heap.Pop(&e.queue).(*event)
		e.integrate(ev.t)
		e.now = ev.t
		if e.left == 0 && e.now >= e.end {
			break
		}
		e.handle(ev)
	}
	stop := max(e.now, e.end)
	for _, w := range slices.Clone(e.live) {
		e.terminate(w, stop, false)
	}
	e.res.Span = time.Duration(stop * float64(time.Second))
	e.finishMetrics(cfg)
	e.res.Elapsed = time.Since(start)
	return &e.res
}

// integrate accounts idle cores from now until t.
func (e *engine) integrate(t float64) {
	dt := t - e.now
	if dt <= 0 {
		return
	}
	idle := 0
	for _, w := range e.live {
		if w.ready {
			idle += w.typ.Cores - w.busy
		}
	}
	if e.queued > 0 {
		e.res.IdleQueuedCoreHours += float64(idle) * dt / 3600
	} else {
		e.res.IdleEmptyCoreHours += float64(idle) * dt / 3600
	}
}

func (e *engine) push(ev *event) {
	e.seq++
	ev.seq = e.seq
	heap.Push(&e.queue, ev)
}

func (e *engine) newWorker(t autoscale.InstanceType, market string) *worker {
	e.nextID++
	w := &worker{name: fmt.Sprintf("w%d", e.nextID), typ: t, market: market, requested: e.now, running: map[*task]struct{}{}}
	e.workers = append(e.workers, w)
	e.live = append(e.live, w)
	return w
}

// armInterruption draws when a spot worker's two-minute notice comes.
func (e *engine) armInterruption(w *worker) {
	if w.market != autoscale.Spot || e.m.InterruptRate <= 0 {
		return
	}
	hours := e.rng.ExpFloat64() / e.m.InterruptRate
	e.push(&event{t: e.now + hours*3600, kind: evNotice, w: w})
}

func (e *engine) handle(ev *event) {
	switch ev.kind {
	case evJobStart:
		j := ev.job
		j.started = true
		e.setPending(j, j.Stages[0].Tasks)
		e.backlog = append(e.backlog, j)
		e.backlogTasks += j.tasks()
		e.backlogWanted += e.wanted(j)
		e.schedule()
	case evTaskEnd:
		t := ev.task
		if t.dead {
			return
		}
		w := t.w
		delete(w.running, t)
		w.busy--
		w.lastBusy = e.now
		j := t.job
		j.running--
		j.doneTasks++
		j.doneSeconds += t.dur
		if j.pending == 0 && j.running == 0 {
			j.stage++
			if j.stage < len(j.Stages) {
				e.setPending(j, j.Stages[j.stage].Tasks)
			} else {
				j.finished, j.finish = true, e.now
				e.left--
				if e.setup.OnProgress != nil && (e.res.Jobs-e.left)%max(1, e.res.Jobs/100) == 0 {
					e.setup.OnProgress(e.res.Jobs-e.left, e.res.Jobs)
				}
				e.active = slices.DeleteFunc(e.active, func(x *jobState) bool { return x == j })
			}
		}
		if w.draining && w.busy == 0 && !w.dying {
			e.terminate(w, e.now, false)
		}
		e.schedule()
	case evWorkerReady:
		w := ev.w
		if w.gone {
			return
		}
		w.ready, w.readyAt = true, e.now
		e.ctrl.LaunchObserved(time.Duration((e.now - w.requested) * float64(time.Second)))
		e.armInterruption(w)
		e.schedule()
	case evNotice:
		w := ev.w
		if w.gone {
			return
		}
		w.interrupted = true
		e.res.Interruptions++
		e.push(&event{t: e.now + e.m.InterruptNotice.Seconds(), kind: evDie, w: w})
	case evDie:
		w := ev.w
		if w.gone {
			return
		}
		e.terminate(w, e.now, true)
		if !e.graceful && !w.draining {
			// An autoscaling group keeps its desired capacity: it replaces what spot took.
			r := e.newWorker(w.typ, w.market)
			e.res.Launched++
			e.push(&event{t: e.now + e.launchLatency(), kind: evWorkerReady, w: r})
		}
		e.schedule()
	case evDecide:
		d := e.ctrl.Decide(e.observe())
		if e.onDecision != nil && !d.Empty() {
			e.onDecision(time.Duration(e.now*float64(time.Second)), d)
		}
		e.apply(d)
		e.push(&event{t: e.now + e.m.DecisionInterval.Seconds(), kind: evDecide})
	case evSample:
		e.sample()
		e.push(&event{t: e.now + e.m.SeriesInterval.Seconds(), kind: evSample})
	}
}

// schedule gives free cores to pending tasks, in order of job submission (Spark's FIFO across
// applications). It stops when no core is free, so that a backlog of waiting jobs costs nothing
// here: each call visits the free cores, and the jobs before the first that can take one (each
// of which holds a core).
func (e *engine) schedule() {
	free := 0
	for _, w := range e.live {
		if w.ready && !w.draining {
			free += w.typ.Cores - w.busy
		}
	}
	for _, j := range e.active {
		if free == 0 {
			return
		}
		free -= e.give(j, free)
	}
	for free > 0 && len(e.backlog) > 0 {
		j := e.backlog[0]
		e.backlogTasks -= j.tasks()
		e.backlogWanted -= e.wanted(j)
		e.backlog = e.backlog[1:]
		e.active = append(e.active, j)
		free -= e.give(j, free)
	}
}

// give starts j's pending tasks on free cores, up to its cap, on workers in order, and returns
// how many it started.
func (e *engine) give(j *jobState, free int) int {
	e.res.visits++
	capped := func() bool { return e.m.AppCores > 0 && j.running >= e.m.AppCores }
	if j.pending == 0 || capped() {
		return 0
	}
	st := j.Stages[j.stage]
	given := 0
	for _, w := range e.live {
		if j.pending == 0 || capped() || given == free {
			break
		}
		if !w.ready || w.draining {
			continue
		}
		for w.busy < w.typ.Cores && j.pending > 0 && !capped() {
			dur := st.TaskTime.Seconds()
			t := &task{job: j, w: w, end: e.now + dur, dur: dur}
			w.running[t] = struct{}{}
			w.busy++
			given++
			e.setPending(j, j.pending-1)
			j.running++
			e.push(&event{t: t.end, kind: evTaskEnd, task: t})
		}
	}
	return given
}

// tasks counts a job's tasks over every stage.
func (j *jobState) tasks() int {
	n := 0
	for _, st := range j.Stages {
		n += st.Tasks
	}
	return n
}

// wanted is the cores a job could use now: its running and pending tasks, within the cap.
func (e *engine) wanted(j *jobState) int {
	w := j.running + j.pending
	if e.m.AppCores > 0 {
		w = min(w, e.m.AppCores)
	}
	return w
}

// setPending keeps the count of queued tasks over every job as a job's changes, so that
// accounting idle cores does not walk a backlog at every event.
func (e *engine) setPending(j *jobState, n int) {
	e.queued += n - j.pending
	j.pending = n
}

// terminate ends a worker: its running tasks are lost and run again; billing stops.
func (e *engine) terminate(w *worker, at float64, interrupted bool) {
	if w.busy > 0 {
		if !interrupted {
			e.res.BusyRemovals++
		}
		for t := range w.running {
			t.dead = true
			t.job.running--
			e.setPending(t.job, t.job.pending+1)
			e.res.LostTasks++
		}
		w.running = map[*task]struct{}{}
		w.busy = 0
	}
	w.gone = true
	e.live = slices.DeleteFunc(e.live, func(x *worker) bool { return x == w })
	if w.ready {
		e.res.BootHours += (w.readyAt - w.requested) / 3600
	} else {
		e.res.BootHours += (at - w.requested) / 3600
	}
	life := max(at-w.requested, e.m.BillingMinimum.Seconds())
	e.res.InstanceHours += life / 3600
	e.res.CostUSD += life / 3600 * w.typ.Price(w.market)
}

func (e *engine) observe() autoscale.Observation {
	t0 := time.Unix(0, 0).UTC()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	obs := autoscale.Observation{Now: at(e.now)}
	for _, w := range e.live {
		switch {
		case w.gone:
		case !w.ready:
			obs.Pending = append(obs.Pending, autoscale.Pending{ID: w.name, InstanceType: w.typ.Name, Market: w.market, Cores: w.typ.Cores, Requested: at(w.requested)})
		default:
			// With dynamic allocation an executor, holding the worker's cores, stays for
			// ExecutorIdleTimeout after its last task.
			execs, used := 0, 0
			if w.busy > 0 || e.now-w.lastBusy < e.m.ExecutorIdleTimeout.Seconds() && w.lastBusy > 0 {
				execs, used = 1, w.typ.Cores
			}
			obs.Workers = append(obs.Workers, autoscale.Worker{ID: w.name, InstanceType: w.typ.Name, Market: w.market, Cores: w.typ.Cores,
				CoresUsed: used, BusyCores: w.busy, Executors: execs, Registered: at(w.readyAt), Interrupted: w.interrupted, Draining: w.draining})
		}
	}
	for _, j := range e.active {
		e.res.visits++
		left := j.pending + j.running
		for _, st := range j.Stages[j.stage+1:] {
			left += st.Tasks
		}
		a := autoscale.App{ID: j.Name, CoresGranted: j.running, CoresWanted: e.wanted(j), TasksLeft: left,
			Waiting: j.running == 0 && j.pending > 0}
		if j.doneTasks > 0 {
			a.TaskSeconds = j.doneSeconds / float64(j.doneTasks)
		}
		obs.Apps = append(obs.Apps, a)
	}
	if n := len(e.backlog); n > 0 {
		// The backlog's applications are alike to a policy (waiting, nothing granted, no task
		// time yet): one entry for them all.
		obs.Apps = append(obs.Apps, autoscale.App{ID: fmt.Sprintf("%d waiting", n), CoresWanted: e.backlogWanted, TasksLeft: e.backlogTasks,
			Waiting: true, Count: n})
	}
	return obs
}

func (e *engine) apply(d autoscale.Decision) {
	if !d.Empty() {
		e.res.Decisions++
	}
	byName := map[string]autoscale.InstanceType{}
	for _, t := range e.ctrl.Config().Types {
		byName[t.Name] = t
	}
	for _, l := range d.Launch {
		for i := 0; i < l.Count; i++ {
			if l.Market == autoscale.Spot && e.rng.Float64() < e.m.CapacityErrorRate {
				e.res.CapacityErrors++
				e.ctrl.CapacityError(l.InstanceType, time.Unix(0, 0).Add(time.Duration(e.now*float64(time.Second))))
				continue
			}
			w := e.newWorker(byName[l.InstanceType], l.Market)
			e.res.Launched++
			e.push(&event{t: e.now + e.launchLatency(), kind: evWorkerReady, w: w})
		}
	}
	for _, id := range d.Remove {
		i := slices.IndexFunc(e.live, func(w *worker) bool { return w.name == id })
		if i < 0 {
			continue
		}
		w := e.live[i]
		if !e.graceful {
			e.terminate(w, e.now, false) // an autoscaling group terminates what it picks
			continue
		}
		w.draining = true
		if w.busy == 0 {
			e.terminate(w, e.now, false)
		}
	}
	e.schedule()
}

func (e *engine) launchLatency() float64 {
	return e.m.LaunchMin.Seconds() + e.rng.Float64()*(e.m.LaunchMax-e.m.LaunchMin).Seconds()
}

func (e *engine) sample() {
	p := Point{T: time.Duration(e.now * float64(time.Second))}
	for _, w := range e.live {
		switch {
		case w.gone:
		case w.ready:
			p.Workers++
			p.Busy += w.busy
		default:
			p.Pending++
		}
	}
	p.Queued = e.queued
	e.res.PeakWorkers = max(e.res.PeakWorkers, p.Workers)
	e.res.Series = append(e.res.Series, p)
}

func (e *engine) finishMetrics(cfg autoscale.Config) {
	var jct, bsd []float64
	for _, j := range e.jobs {
		if !j.finished {
			continue
		}
		took := j.finish - j.submit
		jct = append(jct, took)
		alone := j.AloneTime(e.m).Seconds()
		bsd = append(bsd, took/math.Max(alone, e.m.BoundedSlowdownFloor.Seconds()))
	}
	for _, j := range e.jobs {
		e.res.BusyHours += j.CoreSeconds() / 3600
	}
	e.res.JCTSeconds = percentiles(jct)
	e.res.BoundedSlow = percentiles(bsd)
	e.res.LowerBoundUSD = LowerBound(jobsOf(e.jobs), cfg)
}

func jobsOf(js []*jobState) []Job {
	out := make([]Job, len(js))
	for i, j := range js {
		out[i] = j.Job
	}
	return out
}

// LowerBound is what the work would cost at full utilisation on the cheapest core-hour the
// configuration can buy.
func LowerBound(jobs []Job, cfg autoscale.Config) float64 {
	work := 0.0
	for _, j := range jobs {
		work += j.CoreSeconds()
	}
	best := math.Inf(1)
	for _, t := range cfg.Types {
		market := autoscale.OnDemand
		if cfg.Spot {
			market = autoscale.Spot
		}
		best = math.Min(best, t.Price(market)/float64(t.Cores))
	}
	return work / 3600 * best
}

func percentiles(v []float64) Percentiles {
	if len(v) == 0 {
		return Percentiles{}
	}
	sort.Float64s(v)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(v)))) - 1
		return v[max(0, min(i, len(v)-1))]
	}
	return Percentiles{P50: at(0.50), P95: at(0.95), P99: at(0.99)}
}

// StaticSize is the worker count that covers the day's 95th-percentile demand: the cores the
// running jobs would use at once on an unlimited cluster, sampled every decision interval.
func StaticSize(jobs []Job, m Model, coresPerWorker int) int {
	type span struct{ from, to float64 }
	var end float64
	var spans [][]span
	for _, j := range jobs {
		t := j.Submit.Seconds() + m.JobOverhead.Seconds()
		var s []span
		for _, st := range j.Stages {
			s = append(s, span{t, t + st.TaskTime.Seconds()})
			t += st.TaskTime.Seconds()
		}
		spans = append(spans, s)
		end = math.Max(end, t)
	}
	step := m.DecisionInterval.Seconds()
	n := int(end/step) + 1
	demand := make([]float64, n)
	for i, j := range jobs {
		for k, st := range j.Stages {
			sp := spans[i][k]
			// A stage's demand counts in every sample it covers, and in at least one.
			first, last := int(sp.from/step), int(sp.to/step)
			for x := first; x <= last && x < n; x++ {
				demand[x] += float64(st.Tasks)
			}
		}
	}
	p := percentiles(demand).P95
	return max(1, int(math.Ceil(p/float64(coresPerWorker))))
}
