// Package nomad is the Nomad provider: a Spark standalone cluster as one Nomad job, its master
// and each worker a task group whose task is sparkplane's agent, which runs the Spark daemon
// (see job.go for the job's layout). Everything the provider knows of a cluster comes from
// Nomad's API: the job and its meta, its allocations, the master agent's service registration,
// and the cluster's variable.
package nomad

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// Name is the provider's name in specs.
const Name = "nomad"

// Options configure the provider.
type Options struct {
	// Env reads the environment: Nomad's standard client variables (NOMAD_ADDR, NOMAD_TOKEN,
	// NOMAD_REGION, NOMAD_NAMESPACE, NOMAD_CACERT, …). Default os.Getenv, through the api
	// module's own defaults.
	Config func() *api.Config
	// Now is the clock (default time.Now).
	Now func() time.Time
	// AgentWait bounds the wait for the master's agent to answer after create (default 5
	// minutes).
	AgentWait time.Duration
	// Inside says that the provider acts from inside the cluster, as its master's agent.
	Inside bool
}

// Provider makes clusters on a Nomad cluster.
type Provider struct {
	opts Options

	mu      sync.Mutex
	clients map[string]*api.Client // by address, region and namespace: one connection pool each
	vars    map[string]cachedItems // by cluster (see items)
}

// New returns the provider.
func New(opts Options) *Provider {
	if opts.Config == nil {
		opts.Config = api.DefaultConfig
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AgentWait == 0 {
		opts.AgentWait = 5 * time.Minute
	}
	return &Provider{opts: opts, clients: map[string]*api.Client{}, vars: map[string]cachedItems{}}
}

func (p *Provider) Name() string { return Name }

func (p *Provider) Capabilities() provider.Capabilities {
	return provider.Capabilities{Autoscale: []string{spec.PolicySpark, spec.PolicyCPU}, LaunchLatency: 30 * time.Second}
}

// client is the Nomad API for a cluster's spec: Nomad's standard environment, with the spec's
// address, region and namespace over it.
func (p *Provider) client(n *spec.Nomad) (*api.Client, error) {
	cfg := p.opts.Config()
	if n != nil {
		cfg.Address = cmp.Or(n.Address, cfg.Address)
		cfg.Region = cmp.Or(n.Region, cfg.Region)
		cfg.Namespace = cmp.Or(n.Namespace, cfg.Namespace)
	}
	key := cfg.Address + "\x00" + cfg.Region + "\x00" + cfg.Namespace
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[key]; c != nil {
		return c, nil
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("nomad client for %s: %w", cfg.Address, err)
	}
	p.clients[key] = c
	return c, nil
}

// namespace is the Nomad namespace a spec's cluster is in.
func (p *Provider) namespace(n *spec.Nomad) string {
	ns := p.opts.Config().Namespace
	if n != nil {
		ns = cmp.Or(n.Namespace, ns)
	}
	return cmp.Or(ns, "default")
}

// address is the Nomad API address a spec's cluster uses.
func (p *Provider) address(n *spec.Nomad) string {
	if n != nil && n.Address != "" {
		return n.Address
	}
	return p.opts.Config().Address
}

// EventLogDir is on the master's client node (storage.path when the spec gives one, which must
// exist on every client), until a shared store is configured.
func (p *Provider) EventLogDir(name string, c *spec.Cluster) string {
	return provider.NodesEventLogDir(name, c)
}

// nomadError turns an API error into what a user can act on.
func nomadError(what string, err error) error {
	var ue api.UnexpectedResponseError
	switch {
	case isForbidden(err) && errors.As(err, &ue):
		return fmt.Errorf("%s: Nomad refused (%s): give a token whose policy allows it in NOMAD_TOKEN", what, strings.TrimSpace(ue.Body()))
	case err != nil && (strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no such host")):
		return fmt.Errorf("%s: cannot reach Nomad (%v); set nomad.address or NOMAD_ADDR", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Secret reads the cluster's variable.
func (p *Provider) Secret(ctx context.Context, name string) (string, error) {
	items, err := p.items(ctx, name)
	if err != nil {
		return "", err
	}
	return items[itemToken], nil
}

// items are the cluster's variable, read at most once in itemsTTL: a status wants the token and
// the certificate, and both stay as create made them for the cluster's life.
func (p *Provider) items(ctx context.Context, name string) (api.VariableItems, error) {
	p.mu.Lock()
	cached, ok := p.vars[name]
	p.mu.Unlock()
	if ok && time.Since(cached.at) < itemsTTL {
		return cached.items, nil
	}
	cl, err := p.client(nil)
	if err != nil {
		return nil, err
	}
	v, _, err := cl.Variables().Read(VariablePath(name), (&api.QueryOptions{}).WithContext(ctx))
	if errors.Is(err, api.ErrVariablePathNotFound) {
		return nil, fmt.Errorf("%s: the variable %s is gone: %w", name, VariablePath(name), provider.ErrNotFound)
	}
	if err != nil {
		return nil, nomadError("read the variable "+VariablePath(name), err)
	}
	p.mu.Lock()
	p.vars[name] = cachedItems{items: v.Items, at: time.Now()}
	p.mu.Unlock()
	return v.Items, nil
}

// forget drops what is cached of a cluster that is being made or destroyed.
func (p *Provider) forget(name string) {
	p.mu.Lock()
	delete(p.vars, name)
	p.mu.Unlock()
}

const itemsTTL = 10 * time.Second

type cachedItems struct {
	items api.VariableItems
	at    time.Time
}

// AgentHTTPClient trusts exactly the cluster's certificate, from its variable.
func (p *Provider) AgentHTTPClient(ctx context.Context, name string) (*http.Client, error) {
	items, err := p.items(ctx, name)
	if err != nil {
		return nil, err
	}
	return agentapi.PinnedClient([]byte(items[itemCert]))
}

// job finds a cluster's job, in the namespace of the spec it carries. ErrNotFound when there is
// none, or only a stopped one.
func (p *Provider) job(ctx context.Context, name string) (*api.Job, *api.Client, error) {
	cl, err := p.client(nil)
	if err != nil {
		return nil, nil, err
	}
	job, _, err := cl.Jobs().Info(JobID(name), (&api.QueryOptions{}).WithContext(ctx))
	if isNotFound(err) {
		return nil, cl, provider.ErrNotFound
	}
	if err != nil {
		return nil, cl, nomadError("read the job "+JobID(name), err)
	}
	if job.Meta[MetaCluster] != name {
		return nil, cl, fmt.Errorf("the Nomad job %s is not a sparkplane cluster's (its meta lacks %s=%s)", JobID(name), MetaCluster, name)
	}
	if deref(job.Stop) {
		return job, cl, provider.ErrNotFound
	}
	return job, cl, nil
}

// Get describes the cluster from its job, its allocations and the master agent's service.
func (p *Provider) Get(ctx context.Context, name string) (*provider.Cluster, error) {
	job, cl, err := p.job(ctx, name)
	if err != nil {
		return nil, err
	}
	c, created, err := specOf(job)
	if err != nil {
		return nil, err
	}
	out := &provider.Cluster{Name: name, Provider: Name, Spec: c, CreatedAt: created}
	allocs, _, err := cl.Jobs().Allocations(JobID(name), false, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, nomadError("list the allocations of "+JobID(name), err)
	}
	// The newest allocation of each group that is meant to run.
	latest := map[string]*api.AllocationListStub{}
	for _, a := range allocs {
		if a.DesiredStatus != api.AllocDesiredStatusRun {
			continue
		}
		if cur, ok := latest[a.TaskGroup]; !ok || a.CreateTime > cur.CreateTime {
			latest[a.TaskGroup] = a
		}
	}
	services, _, err := cl.Services().Get(serviceName(name), (&api.QueryOptions{}).WithContext(ctx))
	if err != nil && !isNotFound(err) {
		return nil, nomadError("read the service "+serviceName(name), err)
	}
	for _, s := range services {
		out.Agent = fmt.Sprintf("https://%s:%d", s.Address, s.Port)
	}
	for _, g := range job.TaskGroups {
		gname, role := deref(g.Name), g.Meta[MetaRole]
		n := provider.Node{ID: gname, Role: role, State: provider.NodeStarting}
		if a := latest[gname]; a != nil {
			n.Detail = "allocation " + a.ID + " on " + a.NodeName
			n.CreatedAt = time.Unix(0, a.CreateTime).UTC()
			switch a.ClientStatus {
			case api.AllocClientStatusRunning:
				n.State = provider.NodeRunning
			case api.AllocClientStatusComplete, api.AllocClientStatusFailed, api.AllocClientStatusLost:
				n.State = provider.NodeStopped
			}
		}
		if role == agentapi.RoleMaster {
			n.Agent = out.Agent
		}
		out.Nodes = append(out.Nodes, n)
	}
	return out, nil
}

// List finds clusters by their jobs' meta.
func (p *Provider) List(ctx context.Context) ([]provider.Cluster, error) {
	cl, err := p.client(nil)
	if err != nil {
		return nil, err
	}
	jobs, _, err := cl.Jobs().ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, (&api.QueryOptions{Prefix: "sparkplane-"}).WithContext(ctx))
	if err != nil {
		return nil, nomadError("list jobs", err)
	}
	var out []provider.Cluster
	for _, j := range jobs {
		name := j.Meta[MetaCluster]
		if name == "" || j.Stop {
			continue
		}
		c, err := p.Get(ctx, name)
		if errors.Is(err, provider.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out, nil
}

// newWorkerIDs are n worker ids not yet in use.
func newWorkerIDs(n int, taken []string) []string {
	var out []string
	for len(out) < n {
		b := make([]byte, 3)
		rand.Read(b)
		id := "w-" + hex.EncodeToString(b)
		if !slices.Contains(taken, id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// register submits the job, checking that nobody changed it meanwhile (index 0: that it is new),
// and waits for the scheduler's evaluation: a group it cannot place is an error with Nomad's
// reason.
func (p *Provider) register(ctx context.Context, cl *api.Client, job *api.Job, index uint64) error {
	resp, _, err := cl.Jobs().RegisterOpts(job, &api.RegisterOptions{EnforceIndex: true, ModifyIndex: index}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return nomadError("register the job "+deref(job.ID), err)
	}
	if resp.EvalID == "" {
		return nil
	}
	for {
		ev, _, err := cl.Evaluations().Info(resp.EvalID, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nomadError("read the evaluation "+resp.EvalID, err)
		}
		if ev.Status == api.EvalStatusComplete || ev.Status == api.EvalStatusFailed || ev.Status == api.EvalStatusCancelled {
			if len(ev.FailedTGAllocs) > 0 {
				return placementError(ev.FailedTGAllocs)
			}
			if ev.Status != api.EvalStatusComplete {
				return fmt.Errorf("the evaluation of job %s %s in Nomad: %s", deref(job.ID), ev.Status, ev.StatusDescription)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// placementError says why the scheduler placed no allocation of a group, in Nomad's terms.
func placementError(failed map[string]*api.AllocationMetric) error {
	var parts []string
	for g, m := range failed {
		var why []string
		for k, v := range m.ConstraintFiltered {
			why = append(why, fmt.Sprintf("%d node(s) filtered by %s", v, k))
		}
		for k, v := range m.DimensionExhausted {
			why = append(why, fmt.Sprintf("%d node(s) out of %s", v, k))
		}
		for k, v := range m.ClassFiltered {
			why = append(why, fmt.Sprintf("%d node(s) of class %s filtered", v, k))
		}
		if m.NodesEvaluated == 0 {
			why = append(why, "no client node in the job's datacenters and node pool")
		}
		sort.Strings(why)
		parts = append(parts, fmt.Sprintf("group %s: %d of %d node(s) fit (%s)", g, m.NodesEvaluated-m.NodesFiltered-m.NodesExhausted, m.NodesEvaluated, strings.Join(why, "; ")))
	}
	sort.Strings(parts)
	return fmt.Errorf("the cluster cannot be placed in Nomad: %s", strings.Join(parts, "; "))
}
