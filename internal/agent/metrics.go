package agent

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/autoscale"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/state"
	"github.com/sparkplane/sparkplane/internal/version"
)

// The agent's metrics, served on GET /metrics behind the cluster token. Values that are state
// (workers, cores, applications) are read from what the agent already knows at scrape time, so
// a scrape never calls Spark; values that are events (jobs, decisions) are counters kept as they
// happen. docs/monitoring.md lists every metric; the dashboards' test checks that every name they
// use is exposed here.

const mib = 1 << 20

// registry makes an agent's registry: the Go runtime and process collectors, what every agent
// reports about itself and its Spark daemon, and the role's own collectors.
func (n *node) registry(daemon func() *Supervisor, role ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(&nodeCollector{n: n, daemon: daemon, started: n.deps.Now()})
	reg.MustRegister(role...)
	return reg
}

var (
	descAgentInfo = prometheus.NewDesc("sparkplane_agent_info",
		"The agent on this node; always 1.", []string{"cluster", "node", "role", "version", "spark_version"}, nil)
	descAgentStart = prometheus.NewDesc("sparkplane_agent_start_time_seconds",
		"When the agent started, in seconds since the epoch.", nil, nil)
	descDaemonUp = prometheus.NewDesc("sparkplane_spark_daemon_up",
		"Whether the node's Spark daemon (master or worker) runs: 1 or 0.", nil, nil)
	descDaemonRestarts = prometheus.NewDesc("sparkplane_spark_daemon_restarts_total",
		"Times the node's Spark daemon exited unexpectedly and was restarted.", nil, nil)
	descDaemonStart = prometheus.NewDesc("sparkplane_spark_daemon_start_time_seconds",
		"When the running Spark daemon started, in seconds since the epoch.", nil, nil)
)

// nodeCollector reports what every agent knows of itself.
type nodeCollector struct {
	n       *node
	daemon  func() *Supervisor // nil until the daemon exists
	started time.Time
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAgentInfo, descAgentStart, descDaemonUp, descDaemonRestarts, descDaemonStart} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	cfg := c.n.cfg
	ch <- prometheus.MustNewConstMetric(descAgentInfo, prometheus.GaugeValue, 1, cfg.Cluster, cfg.NodeID, cfg.Role, version.String(), c.n.dist.Version)
	ch <- prometheus.MustNewConstMetric(descAgentStart, prometheus.GaugeValue, seconds(c.started))
	var d agentapi.Daemon
	if s := c.daemon(); s != nil {
		d = s.State()
	}
	ch <- prometheus.MustNewConstMetric(descDaemonUp, prometheus.GaugeValue, boolValue(d.Running))
	ch <- prometheus.MustNewConstMetric(descDaemonRestarts, prometheus.CounterValue, float64(d.Restarts))
	if d.Running {
		ch <- prometheus.MustNewConstMetric(descDaemonStart, prometheus.GaugeValue, seconds(d.StartedAt))
	}
}

var (
	descExecutors = prometheus.NewDesc("sparkplane_spark_executors",
		"Executors the node's Spark worker runs.", nil, nil)
	descDecommissioned = prometheus.NewDesc("sparkplane_spark_worker_decommissioned",
		"Whether the node's Spark worker was told to decommission: 1 or 0.", nil, nil)
	descHeartbeat = prometheus.NewDesc("sparkplane_last_heartbeat_time_seconds",
		"When the master's agent last accepted this node's heartbeat, in seconds since the epoch.", nil, nil)
	descHeartbeatFailures = prometheus.NewDesc("sparkplane_heartbeat_failures_total",
		"Heartbeats the master's agent did not accept.", nil, nil)
)

// workerCollector reports a worker node's own view.
type workerCollector struct{ w *worker }

func (c workerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descExecutors, descDecommissioned, descHeartbeat, descHeartbeatFailures} {
		ch <- d
	}
}

func (c workerCollector) Collect(ch chan<- prometheus.Metric) {
	w := c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descExecutors, prometheus.GaugeValue, float64(w.executors))
	ch <- prometheus.MustNewConstMetric(descDecommissioned, prometheus.GaugeValue, boolValue(w.decommissioned))
	if !w.lastHeartbeat.IsZero() {
		ch <- prometheus.MustNewConstMetric(descHeartbeat, prometheus.GaugeValue, seconds(w.lastHeartbeat))
	}
	ch <- prometheus.MustNewConstMetric(descHeartbeatFailures, prometheus.CounterValue, float64(w.heartbeatFailures))
}

var (
	descMasterUp = prometheus.NewDesc("sparkplane_spark_master_up",
		"Whether the Spark master answered its last read and is ALIVE: 1 or 0.", nil, nil)
	descWorkers = prometheus.NewDesc("sparkplane_workers",
		"Workers by state: Spark's (ALIVE, DEAD, DECOMMISSIONED, UNKNOWN) or sparkplane's (STARTING: its agent registered but Spark does not know it yet; LOST: its agent stopped answering).",
		[]string{"state"}, nil)
	descWorkerInfo = prometheus.NewDesc("sparkplane_worker_info",
		"One worker: its node, Spark's id for it and its state; always 1.", []string{"node", "spark_id", "state"}, nil)
	descWorkerCores = prometheus.NewDesc("sparkplane_worker_cores",
		"Cores a worker offers Spark.", []string{"node"}, nil)
	descWorkerCoresUsed = prometheus.NewDesc("sparkplane_worker_cores_used",
		"Cores of a worker given to executors and drivers.", []string{"node"}, nil)
	descWorkerMemory = prometheus.NewDesc("sparkplane_worker_memory_bytes",
		"Memory a worker offers Spark.", []string{"node"}, nil)
	descWorkerMemoryUsed = prometheus.NewDesc("sparkplane_worker_memory_used_bytes",
		"Memory of a worker given to executors and drivers.", []string{"node"}, nil)
	descWorkerDrivers = prometheus.NewDesc("sparkplane_worker_drivers",
		"Drivers running on a worker (cluster deploy mode).", []string{"node"}, nil)
	descWorkerExecutors = prometheus.NewDesc("sparkplane_worker_executors",
		"Executors on a worker, as its agent last reported.", []string{"node"}, nil)
	descCores = prometheus.NewDesc("sparkplane_cluster_cores",
		"Cores of the cluster's ALIVE workers.", nil, nil)
	descCoresUsed = prometheus.NewDesc("sparkplane_cluster_cores_used",
		"Cores of the cluster's ALIVE workers in use.", nil, nil)
	descMemory = prometheus.NewDesc("sparkplane_cluster_memory_bytes",
		"Memory of the cluster's ALIVE workers.", nil, nil)
	descMemoryUsed = prometheus.NewDesc("sparkplane_cluster_memory_used_bytes",
		"Memory of the cluster's ALIVE workers in use.", nil, nil)
	descApps = prometheus.NewDesc("sparkplane_spark_applications",
		"Spark applications by state: active (running), waiting (for cores), completed (as many as the master retains, spark.deploy.retainedApplications).",
		[]string{"state"}, nil)
	descDrivers = prometheus.NewDesc("sparkplane_spark_drivers",
		"Cluster-mode drivers by state: active (running), waiting (submitted, no worker yet), completed (as many as the master retains).",
		[]string{"state"}, nil)
	descJobsActive = prometheus.NewDesc("sparkplane_jobs_active",
		"Jobs submitted through sparkplane that have not ended.", nil, nil)
	descCreated = prometheus.NewDesc("sparkplane_cluster_created_time_seconds",
		"When the cluster was created, in seconds since the epoch.", nil, nil)
	descIdle = prometheus.NewDesc("sparkplane_cluster_idle_seconds",
		"How long the cluster has run no job; 0 while one runs.", nil, nil)
	descRemaining = prometheus.NewDesc("sparkplane_lifetime_remaining_seconds",
		"Seconds until the cluster destroys itself, and by which rule; absent when no lifetime rule applies now.",
		[]string{"rule"}, nil)
)

// masterCollector reports the cluster as the master's agent sees it.
type masterCollector struct{ m *master }

func (c masterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMasterUp, descWorkers, descWorkerInfo, descWorkerCores, descWorkerCoresUsed,
		descWorkerMemory, descWorkerMemoryUsed, descWorkerDrivers, descWorkerExecutors, descCores, descCoresUsed, descMemory,
		descMemoryUsed, descApps, descDrivers, descJobsActive, descCreated, descIdle, descRemaining} {
		ch <- d
	}
}

// workerStates are the states sparkplane_workers always reports, so that a query for one
// returns 0 rather than nothing.
var workerStates = []string{spark.WorkerAlive, "DEAD", "DECOMMISSIONED", "UNKNOWN", "STARTING", "LOST"}

func (c masterCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	now := m.deps.Now()
	ms := m.lastState()
	m.mu.Lock()
	up := ms != nil && m.lastErr == nil && ms.Status == "ALIVE"
	m.mu.Unlock()
	gauge(descMasterUp, boolValue(up))

	byState := map[string]int{}
	for _, s := range workerStates {
		byState[s] = 0
	}
	for _, w := range m.workerStatuses(ms, now) {
		byState[w.State]++
		node := w.NodeID
		if node == "" {
			node = w.SparkID
		}
		gauge(descWorkerInfo, 1, node, w.SparkID, w.State)
		gauge(descWorkerCores, float64(w.Cores), node)
		gauge(descWorkerCoresUsed, float64(w.CoresUsed), node)
		gauge(descWorkerMemory, float64(w.MemoryMiB)*mib, node)
		gauge(descWorkerMemoryUsed, float64(w.MemoryUsed)*mib, node)
		gauge(descWorkerDrivers, float64(w.Drivers), node)
		gauge(descWorkerExecutors, float64(w.Executors), node)
	}
	for s, n := range byState {
		gauge(descWorkers, float64(n), s)
	}
	if ms != nil {
		gauge(descCores, float64(ms.Cores))
		gauge(descCoresUsed, float64(ms.CoresUsed))
		gauge(descMemory, float64(ms.Memory)*mib)
		gauge(descMemoryUsed, float64(ms.MemoryUsed)*mib)
		apps := map[string]int{"active": 0, "waiting": 0, "completed": len(ms.CompletedApps)}
		for _, a := range ms.ActiveApps {
			if a.State == spark.AppWaiting {
				apps["waiting"]++
			} else {
				apps["active"]++
			}
		}
		drivers := map[string]int{"active": 0, "waiting": 0, "completed": len(ms.CompletedDrivers)}
		for _, d := range ms.ActiveDrivers {
			if d.State == spark.DriverSubmitted {
				drivers["waiting"]++
			} else {
				drivers["active"]++
			}
		}
		for s, n := range apps {
			gauge(descApps, float64(n), s)
		}
		for s, n := range drivers {
			gauge(descDrivers, float64(n), s)
		}
	}
	gauge(descJobsActive, float64(m.jobs.active()))
	lt := m.lifetime()
	gauge(descCreated, seconds(lt.CreatedAt))
	idle := 0.0
	if !lt.IdleSince.IsZero() {
		idle = max(0, now.Sub(lt.IdleSince).Seconds())
	}
	gauge(descIdle, idle)
	if !lt.DestroyAt.IsZero() {
		gauge(descRemaining, max(0, lt.DestroyAt.Sub(now).Seconds()), strings.TrimPrefix(lt.DestroyCause, "lifetime."))
	}
}

// jobMetrics are the counters and histograms of jobs, kept as jobs change.
type jobMetrics struct {
	submitted prometheus.Counter
	finished  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	wait      prometheus.Histogram
}

// finalStates are the label values of sparkplane_jobs_finished_total.
var finalStates = []string{state.JobFinished, state.JobFailed, state.JobKilled, state.JobError, state.JobLost}

func newJobMetrics() *jobMetrics {
	jm := &jobMetrics{
		submitted: prometheus.NewCounter(prometheus.CounterOpts{Name: "sparkplane_jobs_submitted_total",
			Help: "Jobs submitted through sparkplane."}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sparkplane_jobs_finished_total",
			Help: "Jobs that ended, by final state (FINISHED, FAILED, KILLED, ERROR, LOST)."}, []string{"state"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sparkplane_job_duration_seconds",
			Help:    "How long jobs ran, from their driver's start to their end, by final state.",
			Buckets: []float64{1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400}}, []string{"state"}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sparkplane_job_wait_seconds",
			Help:    "How long jobs waited between submission and their driver's start.",
			Buckets: []float64{0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}}),
	}
	for _, s := range finalStates {
		jm.finished.WithLabelValues(s)
		jm.duration.WithLabelValues(s)
	}
	return jm
}

func (jm *jobMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{jm.submitted, jm.finished, jm.duration, jm.wait}
}

// changed records a job's change from before to after.
func (jm *jobMetrics) changed(before, after state.Job) {
	if before.StartedAt.IsZero() && !after.StartedAt.IsZero() {
		jm.wait.Observe(max(0, after.StartedAt.Sub(after.SubmittedAt).Seconds()))
	}
	if !state.JobDone(before.State) && state.JobDone(after.State) {
		jm.finished.WithLabelValues(after.State).Inc()
		if !after.StartedAt.IsZero() {
			jm.duration.WithLabelValues(after.State).Observe(max(0, after.FinishedAt.Sub(after.StartedAt).Seconds()))
		}
	}
}

// scaleMetrics are the autoscaler's.
type scaleMetrics struct {
	decisions     *prometheus.CounterVec
	errors        *prometheus.CounterVec
	interruptions prometheus.Counter
	workers       *prometheus.GaugeVec
	desired       prometheus.Gauge
	demand        prometheus.Gauge
	latency       prometheus.Gauge
}

func newScaleMetrics(policy string) *scaleMetrics {
	sm := &scaleMetrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sparkplane_autoscaler_decisions_total",
			Help:        "Scaling decisions carried out, by direction (up, down) and cause (demand, min, headroom, idle, spot-interruption, cpu-high, cpu-low).",
			ConstLabels: prometheus.Labels{"policy": policy}}, []string{"direction", "cause"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sparkplane_autoscaler_errors_total",
			Help: "Autoscaler steps that failed, by operation (observe, add, remove)."}, []string{"operation"}),
		interruptions: prometheus.NewCounter(prometheus.CounterOpts{Name: "sparkplane_spot_interruptions_total",
			Help: "Spot interruption or rebalance notices received for workers."}),
		workers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sparkplane_autoscaler_workers",
			Help: "Workers at the autoscaler's last look, by phase: live (ALIVE in Spark), pending (asked for, not yet in Spark), draining."}, []string{"phase"}),
		desired: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sparkplane_autoscaler_desired_workers",
			Help: "Workers the autoscaler's last decision wants: live and pending, plus what it launched, minus what it removed."}),
		demand: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sparkplane_autoscaler_demand_cores",
			Help: "Cores the running applications and waiting drivers could use now, at the autoscaler's last look."}),
		latency: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sparkplane_autoscaler_launch_latency_seconds",
			Help: "The autoscaler's estimate of how long a new worker takes to join Spark (75th percentile of those seen)."}),
	}
	for _, c := range []string{autoscale.CauseDemand, autoscale.CauseMin, autoscale.CauseHeadroom, autoscale.CauseInterruption, autoscale.CauseCPUHigh} {
		sm.decisions.WithLabelValues("up", c)
	}
	for _, c := range []string{autoscale.CauseIdle, autoscale.CauseInterruption, autoscale.CauseCPULow} {
		sm.decisions.WithLabelValues("down", c)
	}
	for _, op := range []string{"observe", "add", "remove"} {
		sm.errors.WithLabelValues(op)
	}
	for _, p := range []string{"live", "pending", "draining"} {
		sm.workers.WithLabelValues(p)
	}
	return sm
}

func (sm *scaleMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{sm.decisions, sm.errors, sm.interruptions, sm.workers, sm.desired, sm.demand, sm.latency}
}

// observed records what the autoscaler saw and what it decided.
func (sm *scaleMetrics) observed(obs autoscale.Observation, d autoscale.Decision, latency time.Duration) {
	live, draining := 0, 0
	for _, w := range obs.Workers {
		if w.Draining {
			draining++
		} else {
			live++
		}
	}
	sm.workers.WithLabelValues("live").Set(float64(live))
	sm.workers.WithLabelValues("pending").Set(float64(len(obs.Pending)))
	sm.workers.WithLabelValues("draining").Set(float64(draining))
	removing := 0
	for _, id := range d.Remove {
		for _, w := range obs.Workers {
			if w.ID == id && !w.Draining {
				removing++
			}
		}
	}
	sm.desired.Set(float64(live + len(obs.Pending) + d.Adds() - removing))
	demand := 0
	for _, a := range obs.Apps {
		if a.CoresWanted >= 0 {
			demand += a.CoresWanted
		} else {
			demand += a.CoresGranted
		}
	}
	for _, dr := range obs.WaitingDrivers {
		demand += dr.Cores
	}
	sm.demand.Set(float64(demand))
	sm.latency.Set(latency.Seconds())
}

// decided counts a decision that is being carried out.
func (sm *scaleMetrics) decided(d autoscale.Decision) {
	if d.Adds() > 0 {
		sm.decisions.WithLabelValues("up", d.Cause).Inc()
	}
	if len(d.Remove) > 0 {
		// A decision has one cause, the first that applied; workers go only for an
		// interruption, low utilisation or idleness, so a removal beside a launch for
		// another cause was for idleness.
		cause := d.Cause
		if cause != autoscale.CauseInterruption && cause != autoscale.CauseCPULow {
			cause = autoscale.CauseIdle
		}
		sm.decisions.WithLabelValues("down", cause).Inc()
	}
}

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
