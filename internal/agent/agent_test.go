package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

func TestSupervisorRestartsWithBackoff(t *testing.T) {
	var exits atomic.Int32
	var times []time.Time
	var mu sync.Mutex
	s := &Supervisor{Name: "flaky", Argv: []string{"sh", "-c", "exit 3"}, MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond,
		OnExit: func(err error, restarts int) {
			exits.Add(1)
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	testutil.Eventually(t, 5*time.Second, "five exits", func() error {
		if n := exits.Load(); n < 5 {
			return fmt.Errorf("%d exits", n)
		}
		return nil
	})
	cancel()
	<-done
	st := s.State()
	if st.Restarts < 5 || !strings.Contains(st.LastError, "exit status 3") || st.Running {
		t.Errorf("state: %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	// Gaps grow from 20ms towards the 80ms cap.
	if first, later := times[1].Sub(times[0]), times[4].Sub(times[3]); later < first || later < 60*time.Millisecond {
		t.Errorf("backoff did not grow: first gap %s, fourth %s", first, later)
	}
}

func TestSupervisorKillsAStubbornDaemon(t *testing.T) {
	out := &testutil.SyncBuffer{}
	s := &Supervisor{Name: "stubborn", Argv: []string{"sh", "-c", `trap "echo ignoring TERM" TERM; echo up; while :; do sleep 0.05; done`},
		Output: out, Grace: 300 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	testutil.Eventually(t, 5*time.Second, "daemon up", func() error {
		if !strings.Contains(out.String(), "up") {
			return errors.New("not yet")
		}
		return nil
	})
	pid := s.State().PID
	start := time.Now()
	cancel()
	<-done
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stopping took %s with a 300ms grace", took)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("process %d survives", pid)
	}
	if !strings.Contains(out.String(), "ignoring TERM") {
		t.Error("SIGTERM was not sent first")
	}
}

func TestSupervisorSignal(t *testing.T) {
	out := &testutil.SyncBuffer{}
	s := &Supervisor{Name: "sig", Argv: []string{"sh", "-c", `trap "echo got USR1" USR1; echo ready; while :; do sleep 0.05; done`}, Output: out, Grace: time.Second}
	if err := s.Signal(syscall.SIGUSR1); err == nil {
		t.Error("signalling a daemon that does not run must fail")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	testutil.Eventually(t, 5*time.Second, "ready", func() error {
		if !strings.Contains(out.String(), "ready") {
			return errors.New("not yet")
		}
		return nil
	})
	if err := s.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "signal handled", func() error {
		if !strings.Contains(out.String(), "got USR1") {
			return errors.New("not yet")
		}
		return nil
	})
}

func TestRotatingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.out")
	r, err := openRotating(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	r.Write([]byte("123456"))
	r.Write([]byte("abcdef")) // would pass 10 bytes: the first file becomes .1
	r.Close()
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if string(cur) != "abcdef" || string(old) != "123456" {
		t.Errorf("current %q, previous %q", cur, old)
	}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// inproc is a test provider whose nodes are agents running in this test process.
type inproc struct {
	t         testing.TB
	base      agentapi.Config
	deps      Deps
	mu        sync.Mutex
	next      int
	workers   map[string]context.CancelFunc
	done      map[string]chan struct{}
	destroyed atomic.Int32
	// destroyGate, when set, holds Destroy until it is closed.
	destroyGate chan struct{}
}

var _ provider.Provider = (*inproc)(nil)

func (p *inproc) Name() string { return "inproc" }
func (p *inproc) Capabilities() provider.Capabilities {
	return provider.Capabilities{LocalSpark: true, SharedFilesystem: true}
}
func (p *inproc) Plan(context.Context, *spec.Cluster) (*provider.Plan, error) {
	return &provider.Plan{}, nil
}
func (p *inproc) Create(context.Context, *spec.Cluster, provider.CreateOptions) (*provider.Cluster, error) {
	return nil, errors.New("not used")
}
func (p *inproc) List(context.Context) ([]provider.Cluster, error) { return nil, nil }
func (p *inproc) Secret(context.Context, string) (string, error)   { return "", nil }
func (p *inproc) EventLogDir(string, *spec.Cluster) string         { return "" }

func (p *inproc) Get(_ context.Context, name string) (*provider.Cluster, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := &provider.Cluster{Name: name, Provider: "inproc", Nodes: []provider.Node{{ID: "master", Role: "master", State: provider.NodeRunning}}}
	for id := range p.workers {
		c.Nodes = append(c.Nodes, provider.Node{ID: id, Role: "worker", State: provider.NodeRunning})
	}
	return c, nil
}

func (p *inproc) AddWorkers(_ context.Context, _ string, n int) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for i := 0; i < n; i++ {
		p.next++
		id := fmt.Sprintf("worker-%d", p.next)
		cfg := p.base
		cfg.Role, cfg.NodeID, cfg.Dir = agentapi.RoleWorker, id, filepath.Join(p.t.TempDir(), id)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			if err := Run(ctx, &cfg, p.deps); err != nil {
				p.t.Errorf("worker agent %s: %v", id, err)
			}
			close(done)
		}()
		p.workers[id], p.done[id] = cancel, done
		ids = append(ids, id)
	}
	return ids, nil
}

func (p *inproc) RemoveWorkers(_ context.Context, _ string, ids []string) error {
	for _, id := range ids {
		p.mu.Lock()
		cancel, done := p.workers[id], p.done[id]
		delete(p.workers, id)
		p.mu.Unlock()
		if cancel != nil {
			cancel()
			<-done
		}
	}
	return nil
}

func (p *inproc) Destroy(ctx context.Context, name string) error {
	p.destroyed.Add(1)
	p.mu.Lock()
	gate := p.destroyGate
	p.mu.Unlock()
	if gate != nil {
		<-gate
	}
	p.mu.Lock()
	var ids []string
	for id := range p.workers {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	return p.RemoveWorkers(ctx, name, ids)
}

type cluster struct {
	prov   *inproc
	clock  *clock
	master *agentapi.Client
	done   chan struct{}
	cancel context.CancelFunc
	store  *state.Store
}

// startCluster runs a master agent and n worker agents in this process, on the stand-in Spark.
func startCluster(t testing.TB, n int, lifetime spec.Lifetime, adjust ...func(*spec.Cluster)) *cluster {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("in-process-token\n"), 0o600)
	c, err := spec.Default(spec.Options{DefaultName: "inproc"})
	if err != nil {
		t.Fatal(err)
	}
	c.Provider, c.Lifetime = "inproc", lifetime
	for _, f := range adjust {
		f(c)
	}
	clk := &clock{t: time.Now()}
	cfg := agentapi.Config{Cluster: "inproc", Provider: "inproc", Role: agentapi.RoleMaster, NodeID: "master", Dir: filepath.Join(dir, "master"),
		Listen: "127.0.0.1:0", Host: "127.0.0.1", SparkHome: sparktest.Home(t, "3.5.3"), TokenFile: tokenFile, Spec: *c,
		CreatedAt: clk.Now(), StateDB: filepath.Join(dir, "history.db")}
	reg := provider.NewRegistry()
	deps := Deps{Providers: reg, Now: clk.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PollInterval: 50 * time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond, Grace: 5 * time.Second}
	prov := &inproc{t: t, deps: deps, workers: map[string]context.CancelFunc{}, done: map[string]chan struct{}{}}
	reg.Register("inproc", func() (provider.Provider, error) { return prov, nil })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := Run(ctx, &cfg, deps); err != nil {
			t.Errorf("master agent: %v", err)
		}
		close(done)
	}()
	cl := &cluster{prov: prov, clock: clk, done: done, cancel: cancel}
	t.Cleanup(func() {
		cancel()
		<-done
		prov.Destroy(context.Background(), "inproc")
	})
	var ep *agentapi.Endpoint
	testutil.Eventually(t, 30*time.Second, "master endpoint", func() (err error) {
		ep, err = agentapi.ReadEndpoint(cfg.Dir)
		return err
	})
	cl.master = &agentapi.Client{BaseURL: ep.URL, Token: "in-process-token"}
	prov.base = cfg
	prov.base.MasterAgent = ep.URL
	prov.base.StateDB, prov.base.EventLogDir = "", ""
	if n > 0 {
		prov.AddWorkers(ctx, "inproc", n)
	}
	cl.waitAlive(t, n)
	if cl.store, err = state.Open(cfg.StateDB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.store.Close() })
	return cl
}

func (c *cluster) waitAlive(t testing.TB, n int) *agentapi.ClusterStatus {
	t.Helper()
	var st *agentapi.ClusterStatus
	testutil.Eventually(t, time.Minute, fmt.Sprintf("%d alive workers", n), func() (err error) {
		if st, err = c.master.Status(context.Background()); err != nil {
			return err
		}
		if st.Master.State != "ALIVE" || st.AliveWorkers() != n {
			return fmt.Errorf("master %q, %d alive: %+v", st.Master.State, st.AliveWorkers(), st.Workers)
		}
		return nil
	})
	return st
}

func appFile(t *testing.T, name, directives string) string {
	p := filepath.Join(t.TempDir(), name)
	os.WriteFile(p, []byte("standin: "+directives+"\n"), 0o644)
	return p
}

func waitJob(t *testing.T, c *agentapi.Client, id string) *state.Job {
	t.Helper()
	var j *state.Job
	testutil.Eventually(t, time.Minute, "job "+id+" ends", func() (err error) {
		if j, err = c.Job(context.Background(), id); err != nil {
			return err
		}
		if !state.JobDone(j.State) {
			return fmt.Errorf("state %s", j.State)
		}
		return nil
	})
	return j
}

func TestAgentAPI(t *testing.T) {
	c := startCluster(t, 2, spec.Lifetime{})
	ctx := context.Background()

	if h, err := (&agentapi.Client{BaseURL: c.master.BaseURL}).Health(ctx); err != nil || !h.OK || h.Role != "master" {
		t.Errorf("health needs no token: %+v %v", h, err)
	}
	if _, err := (&agentapi.Client{BaseURL: c.master.BaseURL, Token: "nope"}).Status(ctx); !errors.Is(err, agentapi.ErrUnauthorized) {
		t.Errorf("wrong token: %v", err)
	}
	st, _ := c.master.Status(ctx)
	for _, w := range st.Workers {
		if w.NodeID == "" || w.Agent == "" || !strings.HasPrefix(w.SparkID, "worker-") {
			t.Errorf("worker not tied to its node: %+v", w)
		}
	}

	// Submissions the agent refuses, with their reasons.
	for want, req := range map[string]agentapi.JobRequest{
		"either an application or a git repository":    {},
		"is set by sparkplane":                         {Resource: "https://x/app.jar", Class: "A", Conf: map[string]string{"spark.master": "local"}},
		"is not a Spark property":                      {Resource: "https://x/app.jar", Class: "A", Conf: map[string]string{"executor.memory": "1g"}},
		"neither an uploaded file nor a URL":           {Resource: "app.jar", Class: "A"},
		"needs its main class":                         {Resource: "https://x/app"},
		"needs the repository URL and the application": {Git: &agentapi.Git{URL: "https://x"}},
	} {
		_, err := c.master.Submit(ctx, req, nil)
		var ae *agentapi.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, want) {
			t.Errorf("%+v: got %v, want a 400 saying %q", req, err, want)
		}
	}

	// A cluster-mode job, uploaded, with arguments; its driver's logs come from its worker.
	jar := appFile(t, "app.jar", `work=0.3 print="jvm job"`)
	job, err := c.master.Submit(ctx, agentapi.JobRequest{Resource: "app.jar", Class: "com.example.App", Args: []string{"x"}}, map[string]string{"app.jar": jar})
	if err != nil {
		t.Fatal(err)
	}
	if j := waitJob(t, c.master, job.ID); j.State != state.JobFinished || j.DriverID == "" || j.LogLocation == "" {
		t.Errorf("cluster job: %+v", j)
	}
	chunk, err := c.master.Logs(ctx, job.ID, agentapi.Stdout, 0)
	if err != nil || string(chunk.Data) != "jvm job\n" {
		t.Errorf("driver stdout: %q %v", chunk.Data, err)
	}
	if again, _ := c.master.Logs(ctx, job.ID, agentapi.Stdout, chunk.Next); !again.Done || len(again.Data) != 0 {
		t.Errorf("read to the end of a finished job's log: %+v", again)
	}

	// A client-mode job killed while it runs.
	py := appFile(t, "long.py", "duration=10m")
	job, err = c.master.Submit(ctx, agentapi.JobRequest{Resource: "long.py"}, map[string]string{"long.py": py})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "running", func() error {
		j, _ := c.master.Job(ctx, job.ID)
		if j.State != state.JobRunning {
			return errors.New(j.State)
		}
		return nil
	})
	if _, err := c.master.Kill(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	if j := waitJob(t, c.master, job.ID); j.State != state.JobKilled {
		t.Errorf("killed client job: %+v", j)
	}
	// Both jobs are in the user's history as well.
	hist, _ := c.store.ListJobs(ctx, "inproc", 0)
	if len(hist) != 2 {
		t.Errorf("history has %d jobs", len(hist))
	}

	// The worker agent guards its log endpoint.
	w := &agentapi.Client{BaseURL: st.Workers[0].Agent, Token: "in-process-token"}
	if _, err := w.DriverLogs(ctx, "../../etc", agentapi.Stdout, 0); err == nil {
		t.Error("a driver id naming another directory was accepted")
	}
	if err := (&agentapi.Client{BaseURL: w.BaseURL, Token: "wrong"}).Shutdown(ctx); !errors.Is(err, agentapi.ErrUnauthorized) {
		t.Errorf("shutdown with a wrong token: %v", err)
	}

	// Shutdown stops the master's agent; Run returns.
	if err := c.master.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		t.Fatal("the master agent did not stop")
	}
	if c.prov.destroyed.Load() != 0 {
		t.Error("shutdown must not destroy the cluster")
	}
}

func TestAddDrainRemove(t *testing.T) {
	c := startCluster(t, 1, spec.Lifetime{})
	ctx := context.Background()
	res, err := c.master.AddWorkers(ctx, 2)
	if err != nil || len(res.Nodes) != 2 {
		t.Fatalf("add: %+v %v", res, err)
	}
	c.waitAlive(t, 3)
	res, err = c.master.RemoveWorkers(ctx, agentapi.RemoveWorkersRequest{Nodes: []string{"worker-2"}})
	if err != nil || len(res.Nodes) != 1 {
		t.Fatalf("remove: %+v %v", res, err)
	}
	// Spark saw it decommissioned, and it is gone from the status.
	st := c.waitAlive(t, 2)
	for _, w := range st.Workers {
		if w.NodeID == "worker-2" {
			t.Errorf("worker-2 still listed: %+v", w)
		}
	}
	evs, _ := c.store.ListEvents(ctx, "inproc", 0)
	if msg := evs[len(evs)-1].Message; !strings.Contains(msg, "removed worker-2 after draining (3 → 2 workers)") {
		t.Errorf("last event: %q", msg)
	}
	if _, err := c.master.RemoveWorkers(ctx, agentapi.RemoveWorkersRequest{Nodes: []string{"worker-9"}}); err == nil {
		t.Error("removing an unknown worker succeeded")
	}
}

func TestIdleTimeoutDestroys(t *testing.T) {
	c := startCluster(t, 1, spec.Lifetime{IdleTimeout: time.Hour})
	ctx := context.Background()
	// Busy: a job runs, and an hour passes; the cluster stays.
	job, err := c.master.Submit(ctx, agentapi.JobRequest{Resource: "busy.py"}, map[string]string{"busy.py": appFile(t, "busy.py", "duration=10m")})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "running", func() error {
		j, _ := c.master.Job(ctx, job.ID)
		if j.State != state.JobRunning {
			return errors.New(j.State)
		}
		return nil
	})
	c.clock.Advance(2 * time.Hour)
	time.Sleep(500 * time.Millisecond)
	if c.prov.destroyed.Load() != 0 {
		t.Fatal("destroyed while a job ran")
	}
	st, _ := c.master.Status(ctx)
	if !st.Lifetime.IdleSince.IsZero() {
		t.Errorf("a busy cluster has no idle time: %+v", st.Lifetime)
	}
	// Idle: the job ends; the idle clock starts then.
	c.master.Kill(ctx, job.ID)
	waitJob(t, c.master, job.ID)
	testutil.Eventually(t, 10*time.Second, "idle clock started", func() error {
		st, _ := c.master.Status(ctx)
		if st.Lifetime.IdleSince.IsZero() || st.Lifetime.DestroyCause != "lifetime.idleTimeout" {
			return fmt.Errorf("%+v", st.Lifetime)
		}
		return nil
	})
	c.clock.Advance(59 * time.Minute)
	time.Sleep(300 * time.Millisecond)
	if c.prov.destroyed.Load() != 0 {
		t.Fatal("destroyed before the idle timeout")
	}
	c.clock.Advance(2 * time.Minute)
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		t.Fatal("the master agent did not stop after destroying the cluster")
	}
	if c.prov.destroyed.Load() != 1 {
		t.Errorf("Destroy called %d times", c.prov.destroyed.Load())
	}
	evs, _ := c.store.ListEvents(ctx, "inproc", 0)
	if msg := evs[len(evs)-1].Message; msg != "cluster destroyed by its agent: it ran no job for lifetime.idleTimeout (1h0m0s)" {
		t.Errorf("last event: %q", msg)
	}
}

// Once the cluster destroys itself, a new job is refused with the reason rather than accepted and
// lost with the cluster.
func TestSubmitRefusedWhileTheClusterDestroysItself(t *testing.T) {
	c := startCluster(t, 1, spec.Lifetime{IdleTimeout: time.Hour})
	ctx := context.Background()
	gate := make(chan struct{})
	c.prov.mu.Lock()
	c.prov.destroyGate = gate
	c.prov.mu.Unlock()
	c.clock.Advance(2 * time.Hour)
	testutil.Eventually(t, 30*time.Second, "the cluster destroys itself", func() error {
		if c.prov.destroyed.Load() == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	_, err := c.master.Submit(ctx, agentapi.JobRequest{Resource: "late.py"}, map[string]string{"late.py": appFile(t, "late.py", "work=0.1")})
	if err == nil || !strings.Contains(err.Error(), "the cluster is destroying itself: it ran no job for lifetime.idleTimeout (1h0m0s)") {
		t.Errorf("a submission while the cluster destroys itself: %v", err)
	}
	close(gate)
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		t.Fatal("the master agent did not stop after destroying the cluster")
	}
}

func TestMaxAgeDestroysEvenWhenBusy(t *testing.T) {
	c := startCluster(t, 1, spec.Lifetime{MaxAge: 12 * time.Hour})
	ctx := context.Background()
	job, err := c.master.Submit(ctx, agentapi.JobRequest{Resource: "busy.py"}, map[string]string{"busy.py": appFile(t, "busy.py", "duration=10m")})
	if err != nil {
		t.Fatal(err)
	}
	c.clock.Advance(12 * time.Hour)
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		t.Fatal("maxAge did not end the cluster")
	}
	j, err := c.store.GetJob(ctx, job.ID)
	if err != nil || j.State != state.JobKilled || !strings.Contains(j.Message, "lifetime.maxAge (12h0m0s)") {
		t.Errorf("the running job: %+v %v", j, err)
	}
}

// The cpu policy in the agent: utilisation held above 85% for two periods of two minutes adds two
// workers, and the decision is an event with its reason.
func TestCPUPolicyInTheAgent(t *testing.T) {
	c := startCluster(t, 1, spec.Lifetime{}, func(c *spec.Cluster) {
		c.Autoscale = spec.Autoscale{Policy: spec.PolicyCPU, Interval: time.Second}
		c.Workers.Min, c.Workers.Max = 1, 4
	})
	ctx := context.Background()
	// A long job takes every core of the one worker.
	if _, err := c.master.Submit(ctx, agentapi.JobRequest{Resource: "busy.py"}, map[string]string{"busy.py": appFile(t, "busy.py", "duration=10m")}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "all cores in use", func() error {
		st, err := c.master.Status(ctx)
		if err != nil || st.Cores == 0 || st.CoresUsed != st.Cores {
			return fmt.Errorf("%d/%d cores used (%v)", st.CoresUsed, st.Cores, err)
		}
		return nil
	})
	// Time passes faster than it does: 30 s of the agent's clock per 200 ms.
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				c.clock.Advance(30 * time.Second)
			}
		}
	}()
	defer close(stop)
	testutil.Eventually(t, time.Minute, "the cpu rule adds two workers", func() error {
		evs, _ := c.store.ListEvents(ctx, "inproc", 0)
		for _, e := range evs {
			if e.Kind == "autoscale" && strings.Contains(e.Message, "scale out +2: utilisation above 85% for 2 periods of 2m0s") {
				return nil
			}
		}
		st, _ := c.master.Status(ctx)
		return fmt.Errorf("no such event; autoscaler: %+v", st.Autoscale)
	})
	c.waitAlive(t, 3)

	// The decision is counted by direction and cause, and the autoscaler's view follows.
	testutil.Eventually(t, 30*time.Second, "the autoscaler's metrics", func() error {
		fams, _ := scrape(t, c.master)
		up := value(t, fams, "sparkplane_autoscaler_decisions_total", "direction", "up", "cause", "cpu-high", "policy", "cpu")
		down := value(t, fams, "sparkplane_autoscaler_decisions_total", "direction", "down", "cause", "cpu-low")
		live := value(t, fams, "sparkplane_autoscaler_workers", "phase", "live")
		desired := value(t, fams, "sparkplane_autoscaler_desired_workers")
		if up < 1 || down != 0 || live != 3 || desired < 3 {
			return fmt.Errorf("decisions up %v down %v, live %v, desired %v", up, down, live, desired)
		}
		return nil
	})
}

func TestAutoscaleConfigFromSpec(t *testing.T) {
	c, _ := spec.Default(spec.Options{DefaultName: "x"})
	c.Workers.InstanceTypes = []string{"m5.xlarge", "unknown.type", "m6i.xlarge"}
	c.Workers.Min, c.Workers.Max, c.Workers.Spot = 2, 30, true
	c.Autoscale = spec.Autoscale{Policy: "spark", Headroom: 8, KeepAlive: time.Minute}
	c.Spark.Conf = map[string]string{"spark.dynamicAllocation.executorIdleTimeout": "30s"}
	cfg := autoscaleConfig(*c, "aws")
	if len(cfg.Types) != 2 || cfg.Types[0].Name != "m5.xlarge" || cfg.Types[0].Cores != 4 || cfg.Min != 2 || cfg.Max != 30 || !cfg.Spot ||
		cfg.Headroom != 8 || cfg.KeepAlive != time.Minute || cfg.ExecutorIdleTimeout != 30*time.Second {
		t.Errorf("aws: %+v", cfg)
	}
	if local := autoscaleConfig(*c, "local"); len(local.Types) != 1 || local.Types[0].Cores != c.Workers.Cores || local.Types[0].OnDemand != 0 {
		t.Errorf("local workers have the spec's cores and cost nothing: %+v", local.Types)
	}
}
