package agent

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/autoscale"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// autoscaler runs the cluster's autoscale policy in the master's agent: every interval it builds
// an observation from the master's JSON, the worker agents and each application's own REST API,
// asks the controller (the same one the simulator drives) for a decision, and carries it out
// through the provider, draining workers in Spark before they go.
type autoscaler struct {
	m        *master
	ctrl     *autoscale.Controller
	interval time.Duration
	taskCPUs int
	client   *http.Client

	mu        sync.Mutex
	requested map[string]time.Time // workers asked for and not yet seen in Spark
	draining  map[string]bool
	ui        map[string]string // application id → its driver's UI
	notified  map[string]bool   // workers whose interruption notice was counted
	recent    []agentapi.Decision
	metrics   *scaleMetrics
	last      autoscale.Decision
	lastAt    time.Time
	wg        sync.WaitGroup
}

// autoscaleConfig maps the spec onto the controller's configuration.
func autoscaleConfig(c spec.Cluster, prov string) autoscale.Config {
	cfg := autoscale.Config{Policy: c.Autoscale.Policy, Min: c.Workers.Min, Max: c.Workers.Max, Spot: c.Workers.Spot,
		Headroom: c.Autoscale.Headroom, KeepAlive: c.Autoscale.KeepAlive}
	for _, name := range c.Workers.InstanceTypes {
		if t, ok := autoscale.LookupType(name); ok {
			cfg.Types = append(cfg.Types, t)
		}
	}
	if len(cfg.Types) == 0 || prov == "local" {
		// Workers whose size the spec says; on this machine they cost nothing.
		cfg.Types = []autoscale.InstanceType{{Name: prov, Cores: c.Workers.Cores}}
	}
	if d, err := time.ParseDuration(c.Spark.Conf["spark.dynamicAllocation.executorIdleTimeout"]); err == nil {
		cfg.ExecutorIdleTimeout = d
	}
	return cfg
}

func newAutoscaler(m *master) *autoscaler {
	sp := m.cfg.Spec
	if sp.Autoscale.Policy == "" || sp.Autoscale.Policy == spec.PolicyOff {
		return nil
	}
	cfg := autoscaleConfig(sp, m.cfg.Provider)
	if p, err := m.provider(); err == nil {
		cfg.DefaultLaunchLatency = p.Capabilities().LaunchLatency
	}
	cpus, err := strconv.Atoi(sp.Spark.Conf["spark.task.cpus"])
	if err != nil || cpus < 1 {
		cpus = 1
	}
	return &autoscaler{m: m, ctrl: autoscale.NewController(cfg), interval: sp.Autoscale.Interval,
		taskCPUs: cpus, client: &http.Client{Timeout: 2 * time.Second},
		requested: map[string]time.Time{}, draining: map[string]bool{}, ui: map[string]string{}, notified: map[string]bool{},
		metrics: newScaleMetrics(cfg.Policy)}
}

func (a *autoscaler) run(ctx context.Context) {
	tick := time.NewTicker(a.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			a.wg.Wait()
			return
		case <-tick.C:
			obs, err := a.observe(ctx)
			if err != nil {
				a.metrics.errors.WithLabelValues("observe").Inc()
				a.m.log.Warn("autoscaler cannot observe the cluster", "err", err)
				continue
			}
			d := a.ctrl.Decide(obs)
			a.mu.Lock()
			a.last, a.lastAt = d, obs.Now
			seen := map[string]bool{}
			for _, w := range obs.Workers {
				seen[w.ID] = true
				if w.Interrupted && !a.notified[w.ID] {
					a.notified[w.ID] = true
					a.metrics.interruptions.Inc()
				}
			}
			for id := range a.notified {
				if !seen[id] {
					delete(a.notified, id)
				}
			}
			a.mu.Unlock()
			a.metrics.observed(obs, d, a.ctrl.LaunchLatency())
			if !d.Empty() {
				a.metrics.decided(d)
				a.act(ctx, d)
			}
		}
	}
}

// status is the autoscaler's part of the cluster status.
func (a *autoscaler) status() *agentapi.AutoscaleStatus {
	if a == nil {
		return nil
	}
	// Workers asked for that the master's poll has seen ALIVE are no longer starting, even
	// before this loop's next look.
	alive := map[string]bool{}
	a.m.mu.Lock()
	for id, r := range a.m.registry {
		alive[id] = !r.aliveAt.IsZero()
	}
	a.m.mu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	starting := 0
	for id := range a.requested {
		if !alive[id] {
			starting++
		}
	}
	st := &agentapi.AutoscaleStatus{Policy: a.ctrl.Config().Policy, LastDecisionAt: a.lastAt,
		LaunchLatency: a.ctrl.LaunchLatency(), Requested: starting, Draining: len(a.draining), Recent: slices.Clone(a.recent)}
	if !a.lastAt.IsZero() {
		st.LastDecision = a.last.String()
	}
	return st
}

func (a *autoscaler) observe(ctx context.Context) (autoscale.Observation, error) {
	m := a.m
	now := m.deps.Now()
	obs := autoscale.Observation{Now: now}
	p, err := m.provider()
	if err != nil {
		return obs, err
	}
	pc, err := p.Get(ctx, m.cfg.Cluster)
	if err != nil {
		return obs, err
	}
	m.refresh(ctx, a.interval/2)
	ms := m.lastState()
	if ms == nil {
		return obs, fmt.Errorf("the Spark master has not answered yet")
	}
	byID := map[string]spark.WorkerInfo{}
	for _, sw := range ms.Workers {
		byID[sw.ID] = sw
	}
	drivers := map[string]int{}
	for _, d := range ms.ActiveDrivers {
		switch d.State {
		case spark.DriverRunning:
			drivers[d.Worker]++
		case spark.DriverSubmitted:
			obs.WaitingDrivers = append(obs.WaitingDrivers, autoscale.Driver{ID: d.ID, Cores: max(d.Cores, 1)})
		}
	}

	m.mu.Lock()
	regs := map[string]registered{}
	for id, r := range m.registry {
		regs[id] = *r
	}
	removing := map[string]bool{}
	for id := range m.removing {
		removing[id] = true
	}
	m.mu.Unlock()

	cores := m.cfg.Spec.Workers.Cores
	a.mu.Lock()
	for _, n := range pc.Workers() {
		reg, registered := regs[n.ID]
		var sw spark.WorkerInfo
		found := false
		if registered {
			if r := findWorker(ms, reg); r != nil {
				sw, found = *r, true
			}
		}
		draining := removing[n.ID] || a.draining[n.ID]
		switch {
		case found && sw.State == spark.WorkerAlive:
			if t, ok := a.requested[n.ID]; ok {
				joined := now
				if !reg.aliveAt.IsZero() {
					joined = reg.aliveAt // seen by the master's poll, finer than this loop
				}
				a.ctrl.LaunchObserved(max(0, joined.Sub(t)))
				delete(a.requested, n.ID)
			}
			obs.Workers = append(obs.Workers, autoscale.Worker{ID: n.ID, InstanceType: a.ctrl.Config().Types[0].Name, Cores: sw.Cores,
				CoresUsed: sw.CoresUsed, BusyCores: sw.CoresUsed, Drivers: drivers[sw.ID], Executors: reg.Executors,
				Registered: reg.firstSeen, Draining: draining, Interrupted: reg.Interrupted != ""})
		case registered && reg.Interrupted != "" && !draining:
			// Going away (spot interruption, termination): to be replaced at once, whatever
			// Spark now says of it.
			obs.Workers = append(obs.Workers, autoscale.Worker{ID: n.ID, InstanceType: a.ctrl.Config().Types[0].Name, Cores: max(sw.Cores, cores),
				Executors: reg.Executors, Registered: reg.firstSeen, Interrupted: true})
		case found || draining:
			// Decommissioned or dead in Spark, and still a node: on its way out.
			obs.Workers = append(obs.Workers, autoscale.Worker{ID: n.ID, Cores: sw.Cores, Draining: true})
		default:
			req, ok := a.requested[n.ID]
			if !ok {
				req = n.CreatedAt
			}
			obs.Pending = append(obs.Pending, autoscale.Pending{ID: n.ID, InstanceType: a.ctrl.Config().Types[0].Name, Cores: cores, Requested: req})
		}
	}
	a.mu.Unlock()

	for _, app := range ms.ActiveApps {
		aw := autoscale.App{ID: app.ID, CoresGranted: app.Cores, CoresWanted: -1, Waiting: app.State == spark.AppWaiting}
		if base := a.uiOf(ctx, app.ID, ms); base != "" {
			d, err := (&spark.AppAPI{BaseURL: base, HTTP: a.client}).Demand(ctx, app.ID)
			if err == nil {
				aw.CoresWanted, aw.TasksLeft, aw.TaskSeconds = d.TasksNow*a.taskCPUs, d.TasksLeft, d.TaskSeconds
			} else {
				a.mu.Lock()
				delete(a.ui, app.ID) // look again next time
				a.mu.Unlock()
			}
		}
		obs.Apps = append(obs.Apps, aw)
	}
	return obs, nil
}

func findWorker(ms *spark.MasterState, reg registered) *spark.WorkerInfo {
	for i, sw := range ms.Workers {
		if sw.ID == reg.SparkID || reg.SparkID == "" && sw.WebUIAddress == reg.SparkUI {
			return &ms.Workers[i]
		}
	}
	return nil
}

// uiOf finds the web UI of an application's driver, where driverUI says it should be or on
// the ports Spark moves up to when that one is taken, and remembers it.
func (a *autoscaler) uiOf(ctx context.Context, appID string, ms *spark.MasterState) string {
	a.mu.Lock()
	base, ok := a.ui[appID]
	a.mu.Unlock()
	if ok {
		return base
	}
	host, port := a.m.driverUI(appID, ms)
	base, err := spark.FindApplication(ctx, a.client, host, port, appID)
	if err != nil {
		return ""
	}
	a.mu.Lock()
	a.ui[appID] = base
	a.mu.Unlock()
	return base
}

// act carries a decision out: new workers through the provider; removals drained in Spark first,
// in the background, so that the loop keeps observing.
func (a *autoscaler) act(ctx context.Context, d autoscale.Decision) {
	m := a.m
	rec := agentapi.Decision{At: m.deps.Now(), Summary: d.String(), Cause: d.Cause, Nodes: slices.Clone(d.Remove)}
	defer a.remember(&rec)
	if n := d.Adds(); n > 0 {
		ids, _, err := m.addWorkers(ctx, n)
		if err != nil {
			a.metrics.errors.WithLabelValues("add").Inc()
			rec.Error = err.Error()
			m.event("autoscale", fmt.Sprintf("%s — failed: %v", d, err))
		} else {
			rec.Nodes = append(ids, rec.Nodes...)
			now := m.deps.Now()
			a.mu.Lock()
			for _, id := range ids {
				a.requested[id] = now
			}
			a.mu.Unlock()
			m.event("autoscale", fmt.Sprintf("%s (%s)", d, strings.Join(ids, ", ")))
		}
	}
	if len(d.Remove) == 0 {
		return
	}
	if d.Adds() == 0 {
		m.event("autoscale", d.String()+" ("+strings.Join(d.Remove, ", ")+")")
	}
	a.mu.Lock()
	for _, id := range d.Remove {
		a.draining[id] = true
	}
	a.mu.Unlock()
	a.wg.Go(func() {
		_, _, _, err := m.removeWorkers(ctx, agentapi.RemoveWorkersRequest{Nodes: d.Remove, DrainTimeout: 10 * time.Minute})
		if err != nil {
			a.metrics.errors.WithLabelValues("remove").Inc()
			m.event("autoscale", fmt.Sprintf("removing %s failed: %v", strings.Join(d.Remove, ", "), err))
		}
		a.mu.Lock()
		for _, id := range d.Remove {
			delete(a.draining, id)
		}
		a.mu.Unlock()
	})
}

// remember keeps the last decisions carried out, for status.
func (a *autoscaler) remember(d *agentapi.Decision) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recent = append(a.recent, *d)
	if n := len(a.recent) - 10; n > 0 {
		a.recent = slices.Delete(a.recent, 0, n)
	}
}

// knownUI is the driver UI of an application found so far, or "".
func (a *autoscaler) knownUI(appID string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ui[appID]
}
