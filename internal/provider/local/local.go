// Package local is the provider that runs a cluster as processes on this machine: one detached
// `sparkplane agent` per node, each supervising its Spark daemon.
//
// A cluster is a directory, <root>/clusters/<name>, holding cluster.json (the spec and when it was
// made), the token file (0600) and one directory per node with the agent's config, its endpoint
// file and logs, and Spark's conf, logs and work directories. A node's process is recognised by
// its pid and by its command line naming the node's config, so status can be rebuilt from the
// directory and the process table alone. Destroy stops every process and removes the directory;
// job history lives in the user's state database, outside it.
package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/fsutil"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// Name is the provider's name in specs.
const Name = "local"

// Options configure the local provider.
type Options struct {
	// Root is sparkplane's state directory; clusters live in Root/clusters.
	Root string
	// AgentBinary is the sparkplane executable that runs the agents.
	AgentBinary string
	// StateDB is the user's state database, handed to master agents for job history.
	StateDB string
	// Host is the address nodes bind and advertise (default 127.0.0.1).
	Host string
	// StartTimeout bounds how long an agent may take to answer (default 60s).
	StartTimeout time.Duration
	// StopGrace is how long an agent may take to stop after SIGTERM (default 60s).
	StopGrace time.Duration
}

// Provider runs clusters as local processes.
type Provider struct {
	opts Options
}

var _ provider.Provider = (*Provider)(nil)

// New returns a local provider.
func New(opts Options) *Provider {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.StopGrace == 0 {
		opts.StopGrace = 60 * time.Second
	}
	return &Provider{opts: opts}
}

func (p *Provider) Name() string { return Name }

func (p *Provider) Capabilities() provider.Capabilities {
	return provider.Capabilities{LocalSpark: true, SharedFilesystem: true, Autoscale: []string{"spark", "cpu"}, LaunchLatency: 2 * time.Second, S3A: true}
}

func (p *Provider) clusterDir(name string) string {
	return filepath.Join(p.opts.Root, "clusters", name)
}

func (p *Provider) nodeDir(name, id string) string {
	return filepath.Join(p.clusterDir(name), "nodes", id)
}

// record is cluster.json: what the directory says about the cluster.
type record struct {
	Name      string       `json:"name"`
	Provider  string       `json:"provider"`
	Spec      spec.Cluster `json:"spec"`
	CreatedAt time.Time    `json:"createdAt"`
	SparkHome string       `json:"sparkHome"`
	JavaHome  string       `json:"javaHome"`
	// S3AConnector is the S3A connector's directory in this machine's cache, for a cluster whose
	// jobs use S3.
	S3AConnector string `json:"s3aConnector,omitempty"`
	// NextWorker numbers workers so that an id is never used twice in a cluster's life.
	NextWorker int `json:"nextWorker"`
}

func (p *Provider) readRecord(name string) (*record, error) {
	var r record
	err := fsutil.ReadJSON(filepath.Join(p.clusterDir(name), "cluster.json"), &r)
	if errors.Is(err, os.ErrNotExist) {
		return nil, provider.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (p *Provider) writeRecord(r *record) error {
	return fsutil.WriteJSON(filepath.Join(p.clusterDir(r.Name), "cluster.json"), r, 0o600)
}

// lock serialises changes to one cluster's directory across processes (the CLI and the master's
// agent both add and remove workers).
func (p *Provider) lock(ctx context.Context, name string) (func(), error) {
	path := filepath.Join(p.clusterDir(name), ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *Provider) Plan(_ context.Context, c *spec.Cluster) (*provider.Plan, error) {
	dir := p.clusterDir(c.Name)
	plan := &provider.Plan{Provider: Name}
	if _, err := p.readRecord(c.Name); err == nil {
		return nil, &provider.ExistsError{Name: c.Name, Provider: Name}
	}
	plan.Changes = append(plan.Changes,
		provider.Change{Action: provider.Create, Resource: "directory " + dir, Detail: "cluster state, token (0600), logs"},
		provider.Change{Action: provider.Create, Resource: "process master", Detail: "agent + Spark master on " + p.opts.Host})
	for i := 1; i <= c.Workers.Count; i++ {
		plan.Changes = append(plan.Changes, provider.Change{Action: provider.Create, Resource: fmt.Sprintf("process worker-%d", i),
			Detail: fmt.Sprintf("agent + Spark worker, %d core(s), %s", c.Workers.Cores, spec.FormatMemory(c.Workers.MemoryMiB))})
	}
	return plan, nil
}

func (p *Provider) Create(ctx context.Context, c *spec.Cluster, opts provider.CreateOptions) (*provider.Cluster, error) {
	if opts.Spark == nil {
		return nil, errors.New("the local provider needs a Spark distribution")
	}
	if opts.Secret == "" {
		return nil, errors.New("no cluster secret")
	}
	javaHome, warning, err := spark.FindJavaFor(os.Getenv, opts.Spark.Version)
	if err != nil {
		return nil, err
	}
	dir := p.clusterDir(c.Name)
	if _, err := os.Stat(dir); err == nil {
		return nil, &provider.ExistsError{Name: c.Name, Provider: Name}
	}
	if err := os.MkdirAll(filepath.Join(dir, "nodes"), 0o700); err != nil {
		return nil, err
	}
	progress := func(s string) {
		if opts.Progress != nil {
			opts.Progress(s)
		}
	}
	if warning != "" {
		progress(warning)
	}
	unlock, err := p.lock(ctx, c.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(opts.Secret+"\n"), 0o600); err != nil {
		return nil, err
	}
	rec := &record{Name: c.Name, Provider: Name, Spec: *c, CreatedAt: time.Now().UTC(), SparkHome: opts.Spark.Home, JavaHome: javaHome, NextWorker: 1}
	if opts.S3A != nil {
		rec.S3AConnector = opts.S3A.Dir
	}
	if err := p.writeRecord(rec); err != nil {
		return nil, err
	}
	ep, err := p.startNodes(ctx, rec, []string{agentapi.RoleMaster}, "")
	if err != nil {
		return nil, err
	}
	progress(fmt.Sprintf("master agent answers at %s", ep[0].URL))
	if c.Workers.Count > 0 {
		ids, err := p.addWorkersLocked(ctx, rec, c.Workers.Count, ep[0].URL)
		if err != nil {
			return nil, err
		}
		progress(fmt.Sprintf("%d worker agent(s) started: %s", len(ids), strings.Join(ids, ", ")))
	}
	return p.Get(ctx, c.Name)
}

func (p *Provider) AddWorkers(ctx context.Context, name string, n int) ([]string, error) {
	unlock, err := p.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rec, err := p.readRecord(name)
	if err != nil {
		return nil, err
	}
	ep, err := agentapi.ReadEndpoint(p.nodeDir(name, agentapi.RoleMaster))
	if err != nil {
		return nil, fmt.Errorf("the master of %s is not running: %w", name, err)
	}
	return p.addWorkersLocked(ctx, rec, n, ep.URL)
}

func (p *Provider) addWorkersLocked(ctx context.Context, rec *record, n int, masterAgent string) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("worker-%d", rec.NextWorker+i)
	}
	rec.NextWorker += n
	if err := p.writeRecord(rec); err != nil {
		return nil, err
	}
	if _, err := p.startNodes(ctx, rec, ids, masterAgent); err != nil {
		// Nothing half-made stays: the workers of this call that did start are stopped again.
		p.stopNodes(rec.Name, ids)
		return nil, err
	}
	return ids, nil
}

// startNodes writes each node's config, starts its agent and waits until all answer.
func (p *Provider) startNodes(ctx context.Context, rec *record, ids []string, masterAgent string) ([]*agentapi.Endpoint, error) {
	eps := make([]*agentapi.Endpoint, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { eps[i], errs[i] = p.startNode(ctx, rec, id, masterAgent) })
	}
	wg.Wait()
	return eps, errors.Join(errs...)
}

func (p *Provider) startNode(ctx context.Context, rec *record, id, masterAgent string) (*agentapi.Endpoint, error) {
	dir := p.nodeDir(rec.Name, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	role := agentapi.RoleWorker
	if id == agentapi.RoleMaster {
		role = agentapi.RoleMaster
	}
	cfg := agentapi.Config{
		Cluster: rec.Name, Provider: Name, Role: role, NodeID: id, Dir: dir,
		Listen: p.opts.Host + ":0", Host: p.opts.Host,
		SparkHome: rec.SparkHome, JavaHome: rec.JavaHome, S3AConnector: rec.S3AConnector,
		TokenFile: filepath.Join(p.clusterDir(rec.Name), "token"),
		Spec:      rec.Spec, CreatedAt: rec.CreatedAt, MasterAgent: masterAgent, OneHost: true,
	}
	if role == agentapi.RoleMaster {
		cfg.StateDB = p.opts.StateDB
		cfg.EventLogDir = p.EventLogDir(rec.Name, &rec.Spec)
	}
	cfgPath := filepath.Join(dir, "agent.json")
	if err := fsutil.WriteJSON(cfgPath, cfg, 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "agent.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	cmd := exec.Command(p.opts.AgentBinary, "agent", "--config", cfgPath)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.Env = append(os.Environ(), "SPARKPLANE_HOME="+p.opts.Root)
	// Its own session: the agent outlives this process and the terminal it runs in.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the agent of %s: %w", id, err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(dir, "agent.pid"), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() // reaps the agent when it ends while we still run

	deadline := time.NewTimer(p.opts.StartTimeout)
	defer deadline.Stop()
	for {
		if ep, err := agentapi.ReadEndpoint(dir); err == nil && ep.PID == pid {
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := (&agentapi.Client{BaseURL: ep.URL}).Health(hctx)
			cancel()
			if err == nil {
				return ep, nil
			}
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("the agent of %s exited at start:\n%s", id, tail(logPath, 15))
		case <-deadline.C:
			return nil, fmt.Errorf("the agent of %s did not answer within %s; its log:\n%s", id, p.opts.StartTimeout, tail(logPath, 15))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	s, err := fsutil.Tail(path, n)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// EventLogDir is storage.path, else a directory of the cluster's name under the root's
// event-logs: outside the cluster's own directory, so that Destroy leaves it.
func (p *Provider) EventLogDir(name string, c *spec.Cluster) string {
	dir := c.Storage.Path
	if dir == "" {
		dir = filepath.Join(p.opts.Root, "event-logs", name)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return "file://" + dir
}

func (p *Provider) Get(ctx context.Context, name string) (*provider.Cluster, error) {
	rec, err := p.readRecord(name)
	if err != nil {
		return nil, err
	}
	c := &provider.Cluster{Name: rec.Name, Provider: Name, Spec: &rec.Spec, CreatedAt: rec.CreatedAt}
	entries, err := os.ReadDir(filepath.Join(p.clusterDir(name), "nodes"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n := p.node(name, e.Name())
		if n.Role == agentapi.RoleMaster {
			c.Agent = n.Agent
		}
		c.Nodes = append(c.Nodes, n)
	}
	sort.Slice(c.Nodes, func(i, j int) bool {
		if c.Nodes[i].Role != c.Nodes[j].Role {
			return c.Nodes[i].Role == agentapi.RoleMaster
		}
		return nodeNum(c.Nodes[i].ID) < nodeNum(c.Nodes[j].ID)
	})
	return c, nil
}

func nodeNum(id string) int {
	n, _ := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	return n
}

// node describes one node from its directory and the process table.
func (p *Provider) node(name, id string) provider.Node {
	dir := p.nodeDir(name, id)
	role := agentapi.RoleWorker
	if id == agentapi.RoleMaster {
		role = agentapi.RoleMaster
	}
	n := provider.Node{ID: id, Role: role, State: provider.NodeStopped, Address: p.opts.Host}
	if st, err := os.Stat(dir); err == nil {
		n.CreatedAt = st.ModTime()
	}
	pid := p.agentPID(name, id)
	if pid == 0 {
		return n
	}
	n.Detail = fmt.Sprintf("pid %d", pid)
	if ep, err := agentapi.ReadEndpoint(dir); err == nil && ep.PID == pid {
		n.State, n.Agent = provider.NodeRunning, ep.URL
	} else {
		n.State = provider.NodeStarting
	}
	return n
}

// agentPID is the pid of the node's agent if that process still runs, else 0.
func (p *Provider) agentPID(name, id string) int {
	b, err := os.ReadFile(filepath.Join(p.nodeDir(name, id), "agent.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !isAgent(pid, filepath.Join(p.nodeDir(name, id), "agent.json")) {
		return 0
	}
	return pid
}

func (p *Provider) List(ctx context.Context) ([]provider.Cluster, error) {
	entries, err := os.ReadDir(filepath.Join(p.opts.Root, "clusters"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []provider.Cluster
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := p.Get(ctx, e.Name())
		if errors.Is(err, provider.ErrNotFound) {
			// A directory without cluster.json: a create that died before writing it.
			c = &provider.Cluster{Name: e.Name(), Provider: Name}
		} else if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, nil
}

func (p *Provider) Secret(_ context.Context, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(p.clusterDir(name), "token"))
	if errors.Is(err, os.ErrNotExist) {
		return "", provider.ErrNotFound
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (p *Provider) RemoveWorkers(ctx context.Context, name string, ids []string) error {
	for _, id := range ids {
		if !strings.HasPrefix(id, "worker-") || strings.ContainsAny(id, "/.") {
			return fmt.Errorf("%q is not a worker of %s", id, name)
		}
	}
	unlock, err := p.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	return p.stopNodes(name, ids)
}

// stopNodes stops the nodes' agents (which stop their Spark daemons) and removes their directories.
func (p *Provider) stopNodes(name string, ids []string) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			if err := p.stopPID(p.agentPID(name, id)); err != nil {
				errs[i] = fmt.Errorf("stop %s: %w", id, err)
				return
			}
			errs[i] = os.RemoveAll(p.nodeDir(name, id))
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopPID sends SIGTERM, then SIGKILL to the process's group after StopGrace, and waits until
// the process is gone. Its own process is never signalled: a master agent that destroys its
// cluster stops itself afterwards.
func (p *Provider) stopPID(pid int) error {
	if pid == 0 || pid == os.Getpid() {
		return nil
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(p.opts.StopGrace)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(-pid, syscall.SIGKILL) // the agent leads its own session and group
			syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(10 * time.Second)
			for alive(pid) {
				if time.Now().After(deadline) {
					return fmt.Errorf("process %d survives SIGKILL", pid)
				}
				time.Sleep(20 * time.Millisecond)
			}
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (p *Provider) Destroy(ctx context.Context, name string) error {
	dir := p.clusterDir(name)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if !strings.HasPrefix(filepath.Clean(dir), filepath.Clean(filepath.Join(p.opts.Root, "clusters"))+string(filepath.Separator)) {
		return fmt.Errorf("refusing to remove %s", dir)
	}
	// Wait for an add or remove under way (by the master's agent, say) so that nothing it starts
	// is missed.
	if unlock, err := p.lock(ctx, name); err == nil {
		defer unlock()
	}
	var workers []string
	entries, _ := os.ReadDir(filepath.Join(dir, "nodes"))
	for _, e := range entries {
		if e.IsDir() && e.Name() != agentapi.RoleMaster {
			workers = append(workers, e.Name())
		}
	}
	// Workers first, so that no worker outlives its master and looks for it.
	err := p.stopNodes(name, workers)
	err = errors.Join(err, p.stopNodes(name, []string{agentapi.RoleMaster}))
	// Anything else that still names the cluster's directory: an agent whose pid file was lost in
	// a crash, a daemon orphaned where there is no parent-death signal.
	for _, pid := range processesUnder(dir) {
		err = errors.Join(err, p.stopPID(pid))
	}
	if err != nil {
		return fmt.Errorf("destroy %s: %w", name, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("destroy %s: %w", name, err)
	}
	if left := slices.DeleteFunc(processesUnder(dir), func(pid int) bool { return pid == os.Getpid() }); len(left) > 0 {
		return fmt.Errorf("destroy %s: processes %v still run", name, left)
	}
	return nil
}
