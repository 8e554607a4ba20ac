package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
)

// master is the agent role of the master node.
type master struct {
	*node
	portsMu                   sync.Mutex // where the Spark master's services really are
	rpcPort, uiPort, restPort int
	daemon                    *Supervisor
	daemonLog                 *rotatingFile
	store                     *state.Store // this node's own records
	history                   *state.Store // the user's state database, when it is on this machine
	jobs                      *jobs
	autoscaler                *autoscaler // nil when the policy is off
	jobMetrics                *jobMetrics

	pollMu       sync.Mutex // one read of the master's state at a time
	mu           sync.Mutex
	last         *spark.MasterState
	lastErr      error
	lastPoll     time.Time
	registry     map[string]*registered // worker agents by node id
	removing     map[string]bool        // workers being drained and removed on purpose
	idleSince    time.Time
	destroyCause string

	scaleMu sync.Mutex // one add or remove at a time
}

type registered struct {
	agentapi.Registration
	firstSeen, lastSeen time.Time
	aliveAt             time.Time // when the master's state first showed its Spark worker ALIVE
	lost                bool
}

func newMaster(n *node) (*master, error) {
	m := &master{node: n, registry: map[string]*registered{}, removing: map[string]bool{}}
	var err error
	for _, p := range []*int{&m.rpcPort, &m.uiPort} {
		if *p, err = freePort(n.cfg.Host); err != nil {
			return nil, err
		}
	}
	settings := n.settings()
	if n.cfg.Spec.Spark.Submit == spec.SubmitREST {
		if m.restPort, err = freePort(n.cfg.Host); err != nil {
			return nil, err
		}
		settings.RESTPort = m.restPort
	}
	if n.cfg.EventLogDir != "" {
		if err := os.MkdirAll(strings.TrimPrefix(n.cfg.EventLogDir, "file://"), 0o755); err != nil {
			return nil, err
		}
	}
	env := n.sparkEnv()
	if err := spark.WriteConf(env.ConfDir, spark.Properties(settings), env); err != nil {
		return nil, err
	}
	if m.store, err = state.Open(filepath.Join(n.cfg.Dir, "jobs.db")); err != nil {
		return nil, err
	}
	if n.cfg.StateDB != "" {
		if m.history, err = state.Open(n.cfg.StateDB); err != nil {
			m.store.Close()
			return nil, err
		}
	}
	if m.daemonLog, err = openRotating(filepath.Join(env.LogDir, "spark-master.out"), 64<<20); err != nil {
		return nil, err
	}
	m.daemon = &Supervisor{
		Name:   "spark master",
		Argv:   n.dist.MasterCommand(spark.MasterArgs{Host: n.cfg.Host, Port: m.rpcPort, WebUIPort: m.uiPort}),
		Env:    spark.Environ(os.Environ(), env.Vars(), n.secret()),
		Dir:    n.cfg.Dir,
		Output: &serviceLog{w: m.daemonLog, onPort: m.servicePort},
		Grace:  n.deps.Grace,
		OnExit: func(err error, restarts int) {
			m.event("daemon", fmt.Sprintf("the Spark master exited (%v); restart %d", err, restarts))
		},
	}
	m.jobs = newJobs(m)
	m.jobMetrics = newJobMetrics()
	m.autoscaler = newAutoscaler(m)
	m.idleSince = n.deps.Now()
	return m, nil
}

// servicePort learns where one of the Spark master's services bound.
func (m *master) servicePort(service string, port int) {
	m.portsMu.Lock()
	defer m.portsMu.Unlock()
	switch service {
	case "sparkMaster":
		if port != m.rpcPort {
			m.log.Warn("the Spark master took another RPC port", "asked", m.rpcPort, "bound", port)
		}
		m.rpcPort = port
	case "MasterUI":
		if port != m.uiPort {
			m.log.Warn("the Spark master's UI took another port", "asked", m.uiPort, "bound", port)
		}
		m.uiPort = port
	}
}

func (m *master) masterURL() string {
	m.portsMu.Lock()
	defer m.portsMu.Unlock()
	return fmt.Sprintf("spark://%s:%d", m.cfg.Host, m.rpcPort)
}

// ui is the Spark master's web UI.
func (m *master) ui() *spark.UI {
	m.portsMu.Lock()
	defer m.portsMu.Unlock()
	return &spark.UI{BaseURL: fmt.Sprintf("http://%s:%d", m.cfg.Host, m.uiPort)}
}

func (m *master) restURL() string {
	if m.restPort == 0 {
		return ""
	}
	return fmt.Sprintf("http://%s:%d", m.cfg.Host, m.restPort)
}

// event records something that happened, here and in the user's history.
func (m *master) event(kind, msg string) {
	m.log.Info(msg, "kind", kind)
	e := state.Event{Cluster: m.cfg.Cluster, Time: m.deps.Now(), Kind: kind, Message: msg}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m.store.AddEvent(ctx, e)
	if m.history != nil {
		m.history.AddEvent(ctx, e)
	}
}

func (m *master) run(ctx context.Context, stop context.CancelFunc) {
	daemonCtx, stopDaemon := context.WithCancel(context.Background())
	daemonDone := make(chan struct{})
	go func() { m.daemon.Run(daemonCtx); close(daemonDone) }()
	var wg sync.WaitGroup
	wg.Go(func() { m.jobs.run(ctx) })
	if m.autoscaler != nil {
		wg.Go(func() { m.autoscaler.run(ctx) })
	}
	tick := time.NewTicker(m.deps.PollInterval)
	defer tick.Stop()
	m.poll(ctx)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			m.poll(ctx)
			if cause := m.checkLifetime(); cause != "" {
				m.selfDestroy(cause, stopDaemon, daemonDone)
				stop()
				break loop
			}
			m.reconcile(ctx)
		}
	}
	stopDaemon()
	<-daemonDone
	wg.Wait()
	m.daemonLog.Close()
	m.store.Close()
	if m.history != nil {
		m.history.Close()
	}
}

func (m *master) poll(ctx context.Context) {
	m.pollMu.Lock()
	defer m.pollMu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ms, err := m.ui().MasterState(pctx)
	now := m.deps.Now()
	m.mu.Lock()
	if err == nil {
		m.last = ms
		for _, sw := range ms.Workers {
			if r := m.findRegisteredLocked(sw); r != nil && sw.State == spark.WorkerAlive && r.aliveAt.IsZero() {
				r.aliveAt = now
			}
		}
	}
	m.lastErr, m.lastPoll = err, time.Now()
	m.mu.Unlock()
	if err == nil {
		m.jobs.track(ms)
	}
}

// refresh reads the master's state again if what is known is older than maxAge, so that a status
// asked for just after a change shows it.
func (m *master) refresh(ctx context.Context, maxAge time.Duration) {
	m.mu.Lock()
	fresh := time.Since(m.lastPoll) < maxAge
	m.mu.Unlock()
	if !fresh {
		m.poll(ctx)
	}
}

func (m *master) lastState() *spark.MasterState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// checkLifetime returns why the cluster must go now, or "".
func (m *master) checkLifetime() string {
	now := m.deps.Now()
	lt := m.cfg.Spec.Lifetime
	busy := m.jobs.active() > 0
	if ms := m.lastState(); ms != nil && (len(ms.ActiveApps) > 0 || len(ms.ActiveDrivers) > 0) {
		busy = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if busy {
		m.idleSince = time.Time{}
	} else if m.idleSince.IsZero() {
		m.idleSince = now
	}
	switch {
	case lt.MaxAge > 0 && !now.Before(m.cfg.CreatedAt.Add(lt.MaxAge)):
		return fmt.Sprintf("it reached lifetime.maxAge (%s)", lt.MaxAge)
	case lt.IdleTimeout > 0 && !m.idleSince.IsZero() && now.Sub(m.idleSince) >= lt.IdleTimeout:
		return fmt.Sprintf("it ran no job for lifetime.idleTimeout (%s)", lt.IdleTimeout)
	}
	return ""
}

func (m *master) lifetime() agentapi.Lifetime {
	m.mu.Lock()
	defer m.mu.Unlock()
	lt := m.cfg.Spec.Lifetime
	out := agentapi.Lifetime{CreatedAt: m.cfg.CreatedAt, MaxAge: lt.MaxAge, IdleTimeout: lt.IdleTimeout, IdleSince: m.idleSince}
	if lt.MaxAge > 0 {
		out.DestroyAt, out.DestroyCause = m.cfg.CreatedAt.Add(lt.MaxAge), "lifetime.maxAge"
	}
	if lt.IdleTimeout > 0 && !m.idleSince.IsZero() {
		if at := m.idleSince.Add(lt.IdleTimeout); out.DestroyAt.IsZero() || at.Before(out.DestroyAt) {
			out.DestroyAt, out.DestroyCause = at, "lifetime.idleTimeout"
		}
	}
	return out
}

// ending is why the cluster is destroying itself, or "" while it is not.
func (m *master) ending() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.destroyCause
}

// selfDestroy destroys the cluster through its provider, from inside it: jobs end, the Spark
// master stops, and the provider removes every node, this one last.
func (m *master) selfDestroy(cause string, stopDaemon context.CancelFunc, daemonDone <-chan struct{}) {
	m.mu.Lock()
	m.destroyCause = cause
	m.mu.Unlock()
	m.event("lifetime", "destroying the cluster: "+cause)
	m.jobs.endAll(state.JobKilled, "the cluster destroyed itself: "+cause)
	stopDaemon()
	<-daemonDone
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := m.provider()
	if err == nil {
		err = p.Destroy(ctx, m.cfg.Cluster)
	}
	if err != nil {
		m.event("lifetime", fmt.Sprintf("destroying the cluster failed: %v; run sparkplane destroy %s", err, m.cfg.Cluster))
		return
	}
	m.event("destroy", "cluster destroyed by its agent: "+cause)
	if m.history != nil {
		m.history.SetClusterStatus(ctx, m.cfg.Cluster, state.ClusterDestroyed)
	}
}

func (m *master) provider() (provider.Provider, error) {
	if m.deps.Providers == nil {
		return nil, errors.New("this agent has no provider to act through")
	}
	return m.deps.Providers.Get(m.cfg.Provider)
}

// lostAfter is how long a worker agent may stay silent before it counts as lost.
func (m *master) lostAfter() time.Duration { return 5 * m.deps.HeartbeatInterval }

// reconcile notices worker agents that stopped answering and, when the provider confirms their
// node is gone, removes what is left of them and starts replacements.
func (m *master) reconcile(ctx context.Context) {
	now := m.deps.Now()
	var lost []string
	m.mu.Lock()
	for id, r := range m.registry {
		if !r.lost && !m.removing[id] && now.Sub(r.lastSeen) > m.lostAfter() {
			r.lost = true
			lost = append(lost, id)
		}
	}
	m.mu.Unlock()
	if len(lost) == 0 {
		return
	}
	sort.Strings(lost)
	p, err := m.provider()
	if err != nil {
		m.event("worker", fmt.Sprintf("workers %s stopped answering; %v", strings.Join(lost, ", "), err))
		return
	}
	m.scaleMu.Lock()
	defer m.scaleMu.Unlock()
	c, err := p.Get(ctx, m.cfg.Cluster)
	if err != nil {
		m.event("worker", fmt.Sprintf("workers %s stopped answering; the provider could not be asked: %v", strings.Join(lost, ", "), err))
		return
	}
	var gone []string
	for _, id := range lost {
		running := false
		for _, n := range c.Nodes {
			running = running || (n.ID == id && n.State == provider.NodeRunning)
		}
		if !running {
			gone = append(gone, id)
		} else {
			m.event("worker", id+" stopped answering, but its node is still running; waiting for it")
		}
	}
	if len(gone) == 0 {
		return
	}
	if p.Capabilities().ScaledFromHere {
		// Removed from outside (sparkplane remove on the user's machine): nothing to clean up,
		// and no replacement to make from here.
		m.mu.Lock()
		for _, id := range gone {
			delete(m.registry, id)
		}
		m.mu.Unlock()
		m.event("worker", fmt.Sprintf("%s left the cluster", strings.Join(gone, ", ")))
		return
	}
	if err := p.RemoveWorkers(ctx, m.cfg.Cluster, gone); err != nil {
		m.event("worker", fmt.Sprintf("workers %s are gone and could not be cleaned up: %v", strings.Join(gone, ", "), err))
		return
	}
	m.mu.Lock()
	for _, id := range gone {
		delete(m.registry, id)
	}
	m.mu.Unlock()
	added, err := p.AddWorkers(ctx, m.cfg.Cluster, len(gone))
	if err != nil {
		m.event("worker", fmt.Sprintf("lost %s and could not replace them: %v", strings.Join(gone, ", "), err))
		return
	}
	m.event("worker", fmt.Sprintf("lost %s (agent gone); replaced by %s", strings.Join(gone, ", "), strings.Join(added, ", ")))
}

func (m *master) supervisor() *Supervisor { return m.daemon }

func (m *master) collectors() []prometheus.Collector {
	cs := append([]prometheus.Collector{masterCollector{m}}, m.jobMetrics.collectors()...)
	if m.autoscaler != nil {
		cs = append(cs, m.autoscaler.metrics.collectors()...)
	}
	return cs
}

func (m *master) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, m.status(r.Context())) })
	mux.HandleFunc("POST /v1/nodes/register", m.handleRegister)
	mux.HandleFunc("POST /v1/workers/add", m.handleAdd)
	mux.HandleFunc("POST /v1/workers/remove", m.handleRemove)
	m.jobs.routes(mux)
}

func (m *master) status(ctx context.Context) *agentapi.ClusterStatus {
	m.refresh(ctx, 250*time.Millisecond)
	ms := m.lastState()
	st := &agentapi.ClusterStatus{
		Cluster:  m.cfg.Cluster,
		Provider: m.cfg.Provider,
		Master: agentapi.MasterInfo{URL: m.masterURL(), UI: m.ui().BaseURL, REST: m.restURL(), Daemon: m.daemon.State(),
			Version: m.dist.Version},
		Lifetime:  m.lifetime(),
		Autoscale: m.autoscaler.status(),
	}
	m.mu.Lock()
	if ms != nil && m.lastErr == nil {
		st.Master.State = ms.Status
		st.Cores, st.CoresUsed, st.MemoryMiB, st.MemoryUsed = ms.Cores, ms.CoresUsed, ms.Memory, ms.MemoryUsed
	}
	m.mu.Unlock()
	st.Workers = m.workerStatuses(ms, m.deps.Now())
	if ms != nil {
		for _, a := range ms.ActiveApps {
			app := agentapi.AppStatus{ID: a.ID, Name: a.Name, State: a.State, Cores: a.Cores, Duration: time.Duration(a.Duration) * time.Millisecond}
			if m.autoscaler != nil {
				app.UI = m.autoscaler.knownUI(a.ID)
			}
			if _, _, ours := m.jobs.byApp(a.ID); app.UI == "" && ours {
				host, port := m.driverUI(a.ID, ms)
				app.UI = fmt.Sprintf("http://%s", net.JoinHostPort(host, strconv.Itoa(port)))
			}
			st.Apps = append(st.Apps, app)
		}
	}
	st.Jobs, _ = m.store.ListJobs(ctx, m.cfg.Cluster, 20)
	st.Events, _ = m.store.ListEvents(ctx, m.cfg.Cluster, 10)
	return st
}

// workerStatuses joins Spark's workers with the registered agents: every worker Spark knows
// (but not the dead ones sparkplane removed), and every agent Spark does not know yet.
func (m *master) workerStatuses(ms *spark.MasterState, now time.Time) []agentapi.WorkerStatus {
	var out []agentapi.WorkerStatus
	m.mu.Lock()
	matched := map[string]bool{}
	if ms != nil {
		drivers := map[string]int{}
		for _, d := range ms.ActiveDrivers {
			if d.State == spark.DriverRunning {
				drivers[d.Worker]++
			}
		}
		for _, sw := range ms.Workers {
			reg := m.findRegisteredLocked(sw)
			if reg == nil && sw.State != spark.WorkerAlive {
				continue // a worker sparkplane removed, still remembered by Spark
			}
			ws := agentapi.WorkerStatus{SparkID: sw.ID, SparkUI: sw.WebUIAddress, State: sw.State, Cores: sw.Cores, CoresUsed: sw.CoresUsed,
				MemoryMiB: sw.Memory, MemoryUsed: sw.MemoryUsed, Drivers: drivers[sw.ID]}
			if reg != nil {
				matched[reg.NodeID] = true
				ws.NodeID, ws.Agent, ws.LastSeen, ws.Executors, ws.Interrupted = reg.NodeID, reg.Agent, reg.lastSeen, reg.Executors, reg.Interrupted
				if reg.lost {
					ws.State = "LOST"
				}
			}
			out = append(out, ws)
		}
	}
	for id, reg := range m.registry {
		if matched[id] {
			continue
		}
		state := "STARTING"
		if reg.lost || now.Sub(reg.lastSeen) > m.lostAfter() {
			state = "LOST"
		}
		out = append(out, agentapi.WorkerStatus{NodeID: id, Agent: reg.Agent, State: state, LastSeen: reg.lastSeen, Registering: true, Interrupted: reg.Interrupted})
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return nodeLess(out[i].NodeID, out[j].NodeID) })
	return out
}

// nodeLess orders node ids naturally: worker-2 before worker-10.
func nodeLess(a, b string) bool {
	pa, na := splitNum(a)
	pb, nb := splitNum(b)
	if pa != pb {
		return pa < pb
	}
	return na < nb
}

func splitNum(s string) (string, int) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return s, 0
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return s, 0
	}
	return s[:i], n
}

// driverUI says where an application's driver serves its web UI: where sparkplane put it for its
// own jobs (client mode on this node, cluster mode on the driver's worker), else Spark's default
// port on this node. Spark moves up from that port when it is taken.
func (m *master) driverUI(appID string, ms *spark.MasterState) (host string, port int) {
	host, port = m.cfg.Host, 4040
	job, uiPort, ok := m.jobs.byApp(appID)
	if !ok {
		return host, port
	}
	port = uiPort
	if job.DeployMode == spark.ClusterMode {
		for _, d := range append(slices.Clone(ms.ActiveDrivers), ms.CompletedDrivers...) {
			if d.ID == job.DriverID {
				for _, sw := range ms.Workers {
					if sw.ID == d.Worker {
						host = sw.Host
					}
				}
			}
		}
	}
	return host, port
}

// agentOf returns the agent URL and node id of the node that runs a Spark worker.
func (m *master) agentOf(sparkID string) (agent, node string) {
	ms := m.lastState()
	m.mu.Lock()
	defer m.mu.Unlock()
	if ms != nil {
		for _, sw := range ms.Workers {
			if sw.ID == sparkID {
				if r := m.findRegisteredLocked(sw); r != nil {
					return r.Agent, r.NodeID
				}
			}
		}
	}
	for _, r := range m.registry {
		if r.SparkID == sparkID {
			return r.Agent, r.NodeID
		}
	}
	return "", ""
}

func (m *master) findRegisteredLocked(sw spark.WorkerInfo) *registered {
	for _, r := range m.registry {
		if r.SparkID == sw.ID || (r.SparkID == "" && r.SparkUI != "" && r.SparkUI == sw.WebUIAddress) {
			return r
		}
	}
	return nil
}

// nodeIDRe is what a node id may be: providers name their nodes so (worker-3, i-0abc…), and
// ids go into events, metrics labels and, on some providers, paths.
var nodeIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func (m *master) handleRegister(w http.ResponseWriter, r *http.Request) {
	var reg agentapi.Registration
	if err := decodeBody(r, &reg); err != nil || !nodeIDRe.MatchString(reg.NodeID) {
		writeError(w, http.StatusBadRequest, "bad registration", "a registration is JSON with the node's id (letters, digits, . _ -)")
		return
	}
	now := m.deps.Now()
	m.mu.Lock()
	prev, seen := m.registry[reg.NodeID]
	entry := &registered{Registration: reg, firstSeen: now, lastSeen: now}
	if seen {
		entry.firstSeen, entry.aliveAt = prev.firstSeen, prev.aliveAt
	}
	m.registry[reg.NodeID] = entry
	m.mu.Unlock()
	if !seen {
		m.event("worker", reg.NodeID+" joined")
	} else if prev.lost {
		m.event("worker", reg.NodeID+" answers again")
	}
	reply := agentapi.RegistrationReply{MasterURL: m.masterURL()}
	if reg.Interrupted != "" && reg.SparkID != "" {
		// A worker going away waits until the Spark master knows it is decommissioning.
		m.refresh(r.Context(), time.Second)
		if ms := m.lastState(); ms != nil {
			for _, sw := range ms.Workers {
				if sw.ID == reg.SparkID {
					reply.SparkState = sw.State
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, reply)
}

func (m *master) handleAdd(w http.ResponseWriter, r *http.Request) {
	var req agentapi.AddWorkersRequest
	if err := decodeBody(r, &req); err != nil || req.Count < 1 {
		writeError(w, http.StatusBadRequest, "count must be at least 1", "")
		return
	}
	ids, status, err := m.addWorkers(r.Context(), req.Count)
	if err != nil {
		writeError(w, status, err.Error(), "")
		return
	}
	writeJSON(w, http.StatusOK, agentapi.WorkersResult{Nodes: ids})
}

func (m *master) addWorkers(ctx context.Context, n int) ([]string, int, error) {
	m.scaleMu.Lock()
	defer m.scaleMu.Unlock()
	p, err := m.provider()
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	c, err := p.Get(ctx, m.cfg.Cluster)
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	have, max := len(c.Workers()), m.cfg.Spec.Workers.Max
	if have+n > max {
		return nil, http.StatusConflict, fmt.Errorf("adding %d would make %d workers, above workers.max %d of this cluster", n, have+n, max)
	}
	ids, err := p.AddWorkers(ctx, m.cfg.Cluster, n)
	if err != nil {
		return nil, http.StatusInternalServerError, fmt.Errorf("add workers: %w", err)
	}
	m.event("scale", fmt.Sprintf("added %s (%d → %d workers)", strings.Join(ids, ", "), have, have+len(ids)))
	return ids, 0, nil
}

func (m *master) handleRemove(w http.ResponseWriter, r *http.Request) {
	var req agentapi.RemoveWorkersRequest
	if err := decodeBody(r, &req); err != nil || (req.Count < 1 && len(req.Nodes) == 0) {
		writeError(w, http.StatusBadRequest, "name workers or give a count of at least 1", "")
		return
	}
	ids, status, hint, err := m.removeWorkers(r.Context(), req)
	if err != nil {
		writeError(w, status, err.Error(), hint)
		return
	}
	writeJSON(w, http.StatusOK, agentapi.WorkersResult{Nodes: ids})
}

// removeWorkers drains and stops workers: each is decommissioned in Spark first (its executors
// and cached blocks move away), then stopped once no driver runs on it.
func (m *master) removeWorkers(ctx context.Context, req agentapi.RemoveWorkersRequest) ([]string, int, string, error) {
	m.scaleMu.Lock()
	defer m.scaleMu.Unlock()
	p, err := m.provider()
	if err != nil {
		return nil, http.StatusInternalServerError, "", err
	}
	c, err := p.Get(ctx, m.cfg.Cluster)
	if err != nil {
		return nil, http.StatusInternalServerError, "", err
	}
	workers := c.Workers()
	st := m.status(ctx)
	byNode := map[string]agentapi.WorkerStatus{}
	for _, ws := range st.Workers {
		byNode[ws.NodeID] = ws
	}
	n := req.Count
	if len(req.Nodes) > 0 {
		n = len(req.Nodes)
	}
	if left := len(workers) - n; left < m.cfg.Spec.Workers.Min {
		return nil, http.StatusConflict, "", fmt.Errorf("removing %d would leave %d workers, below workers.min %d", n, left, m.cfg.Spec.Workers.Min)
	}
	var chosen []string
	if len(req.Nodes) > 0 {
		for _, id := range req.Nodes {
			if !slices.ContainsFunc(workers, func(n provider.Node) bool { return n.ID == id }) {
				return nil, http.StatusNotFound, "sparkplane status " + m.cfg.Cluster + " lists the workers", fmt.Errorf("no worker %q in cluster %s", id, m.cfg.Cluster)
			}
			if ws := byNode[id]; ws.Drivers > 0 && !req.Force {
				return nil, http.StatusConflict, "wait for the driver to finish, or add --force", fmt.Errorf("%s runs %d driver(s)", id, ws.Drivers)
			}
			chosen = append(chosen, id)
		}
	} else {
		// Idle workers first, newest first: the last ones added hold the least.
		cands := slices.Clone(workers)
		sort.Slice(cands, func(i, j int) bool { return nodeLess(cands[j].ID, cands[i].ID) })
		for _, busyOK := range []bool{false, true} {
			for _, n := range cands {
				if len(chosen) == req.Count || slices.Contains(chosen, n.ID) {
					continue
				}
				ws := byNode[n.ID]
				idle := ws.CoresUsed == 0 && ws.Drivers == 0
				if idle || (busyOK && req.Force && ws.Drivers == 0) {
					chosen = append(chosen, n.ID)
				}
			}
		}
		if len(chosen) < req.Count {
			return nil, http.StatusConflict, "wait for running work to finish, name workers, or add --force to drain busy ones",
				fmt.Errorf("only %d of %d workers are idle", len(chosen), len(workers))
		}
	}
	m.mu.Lock()
	for _, id := range chosen {
		m.removing[id] = true
	}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		for _, id := range chosen {
			delete(m.removing, id)
		}
		m.mu.Unlock()
	}()
	drain := req.DrainTimeout
	if drain <= 0 {
		drain = 2 * time.Minute
	}
	var wg sync.WaitGroup
	errs := make([]error, len(chosen))
	for i, id := range chosen {
		wg.Go(func() { errs[i] = m.drain(ctx, id, byNode[id], drain) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil && !req.Force {
		return nil, http.StatusConflict, "add --force to remove them anyway", err
	}
	what := "removed"
	if req.DrainOnly {
		what = "drained (for the caller to remove)"
	} else if err := p.RemoveWorkers(ctx, m.cfg.Cluster, chosen); err != nil {
		return nil, http.StatusInternalServerError, "", fmt.Errorf("remove workers: %w", err)
	}
	m.mu.Lock()
	for _, id := range chosen {
		delete(m.registry, id)
	}
	m.mu.Unlock()
	m.event("scale", fmt.Sprintf("%s %s after draining (%d → %d workers)", what, strings.Join(chosen, ", "), len(workers), len(workers)-len(chosen)))
	return chosen, 0, "", nil
}

// drain decommissions one worker's Spark daemon and waits until Spark has let go of it: it is no
// longer ALIVE and no driver runs there.
func (m *master) drain(ctx context.Context, id string, ws agentapi.WorkerStatus, timeout time.Duration) error {
	if ws.Agent == "" {
		return nil // never registered: nothing of Spark's is on it
	}
	cl := m.client(ws.Agent)
	if err := cl.Decommission(ctx); err != nil {
		return fmt.Errorf("decommission %s: %w", id, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		ms := m.lastState()
		done := true
		if ms != nil {
			for _, sw := range ms.Workers {
				if sw.ID == ws.SparkID && sw.State == spark.WorkerAlive {
					done = false
				}
			}
			for _, d := range ms.ActiveDrivers {
				if d.Worker == ws.SparkID && !spark.DriverTerminal(d.State) {
					done = false
				}
			}
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not drain within %s", id, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(m.deps.PollInterval):
		}
	}
}
