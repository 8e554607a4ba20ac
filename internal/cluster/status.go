package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
)

// Cluster states as status reports them.
const (
	StateRunning  = "running"  // the master and every worker run
	StateDegraded = "degraded" // the master runs; some worker does not
	StateNoMaster = "no-master"
	StateStarting = "starting"
	StateStopped  = "stopped" // it ended its own instances; destroy removes the rest
)

// Status is a cluster as its provider and its master agent describe it.
type Status struct {
	Name       string                  `json:"name"`
	Provider   string                  `json:"provider"`
	State      string                  `json:"state"`
	Spec       *spec.Cluster           `json:"spec,omitempty"`
	CreatedAt  time.Time               `json:"createdAt"`
	Nodes      []provider.Node         `json:"nodes"`
	Agent      *agentapi.ClusterStatus `json:"agent,omitempty"` // nil when the master agent does not answer
	AgentError string                  `json:"agentError,omitempty"`
}

// Status describes one cluster: the provider says which nodes exist, the master agent what Spark
// makes of them.
func (m *Manager) Status(ctx context.Context, ref Ref) (*Status, error) {
	p, err := m.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	pc, err := p.Get(ctx, ref.Name)
	if errors.Is(err, provider.ErrNotFound) {
		return nil, m.notFound(ctx, ref.Name, p.Name())
	}
	if err != nil {
		return nil, err
	}
	st := &Status{Name: pc.Name, Provider: pc.Provider, Spec: pc.Spec, CreatedAt: pc.CreatedAt, Nodes: pc.Nodes}
	if pc.Agent != "" {
		secret, err := p.Secret(ctx, ref.Name)
		var client *agentapi.Client
		if err == nil {
			client, err = agentClient(ctx, p, ref.Name, pc.Agent, secret)
		}
		if err == nil {
			st.Agent, err = client.Status(ctx)
		}
		if err != nil {
			st.AgentError = err.Error()
		}
	} else {
		st.AgentError = "the master's agent is not running"
	}
	st.State = summarize(st)
	if pc.Stopped != "" && st.Agent == nil {
		st.State = StateStopped
		st.AgentError = fmt.Sprintf("%s; sparkplane destroy %s removes what is left", pc.Stopped, ref.Name)
	}
	if st.Agent != nil {
		m.syncJobs(ctx, st.Agent.Jobs)
	}
	return st, nil
}

func summarize(st *Status) string {
	if st.Agent == nil || st.Agent.Master.State != "ALIVE" {
		for _, n := range st.Nodes {
			if n.Role == "master" && n.State == provider.NodeStarting {
				return StateStarting
			}
		}
		return StateNoMaster
	}
	workers := 0
	for _, n := range st.Nodes {
		if n.Role == "worker" {
			workers++
		}
	}
	if st.Agent.AliveWorkers() < workers {
		return StateDegraded
	}
	return StateRunning
}

// Summary is one line of list.
type Summary struct {
	Name      string    `json:"name"`
	Provider  string    `json:"provider"`
	State     string    `json:"state"`
	Workers   int       `json:"workers"`
	Running   int       `json:"workersRunning"`
	CreatedAt time.Time `json:"createdAt"`
	Agent     string    `json:"agent,omitempty"`
}

// List describes every cluster the providers can see: the named one, or the default provider and
// every provider the state remembers a cluster on. A provider that cannot be asked is reported as
// a warning and skipped.
func (m *Manager) List(ctx context.Context, only string) ([]Summary, error) {
	names := map[string]bool{}
	if only != "" {
		names[only] = true
	} else {
		names[DefaultProvider] = true
		recs, err := m.Store.ListClusters(ctx, false)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			names[r.Provider] = true
		}
	}
	var out []Summary
	seen := map[string]bool{}
	for name := range names {
		p, err := m.Providers.Get(name)
		if err != nil {
			m.progress().Warn(err.Error())
			continue
		}
		list, err := p.List(ctx)
		if err != nil {
			if only != "" {
				return nil, err
			}
			m.progress().Warn(fmt.Sprintf("provider %s: %v", name, err))
			continue
		}
		for _, c := range list {
			seen[c.Name] = true
			out = append(out, summary(c))
		}
	}
	// Clusters the state says run but no provider shows are gone: say so once, then forget them.
	if recs, err := m.Store.ListClusters(ctx, false); err == nil {
		for _, r := range recs {
			if !seen[r.Name] && names[r.Provider] && r.Status == state.ClusterRunning {
				m.Store.SetClusterStatus(ctx, r.Name, state.ClusterDestroyed)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// summary is what list shows of a cluster.
func summary(c provider.Cluster) Summary {
	s := Summary{Name: c.Name, Provider: c.Provider, CreatedAt: c.CreatedAt, Agent: c.Agent, State: StateRunning}
	masterUp := false
	for _, n := range c.Nodes {
		if n.Role == "worker" {
			s.Workers++
			if n.State == provider.NodeRunning {
				s.Running++
			}
		} else if n.State == provider.NodeRunning {
			masterUp = true
		}
	}
	switch {
	case c.Spec == nil:
		s.State = "broken" // a directory without its record: sparkplane destroy removes it
	case !masterUp:
		s.State = StateNoMaster
	case s.Running < s.Workers:
		s.State = StateDegraded
	}
	return s
}

// Find lists the clusters found where the spec c says to look (for provider hosts: on the
// machines it names), made from whichever machine, and remembers them here, so that every
// other verb works on them as on the machine that made them.
func (m *Manager) Find(ctx context.Context, c *spec.Cluster) ([]Summary, error) {
	p, err := m.Providers.Get(c.Provider)
	if err != nil {
		return nil, err
	}
	f, ok := p.(provider.Finder)
	if !ok {
		return nil, fmt.Errorf("provider %s shows every cluster it has without a spec to say where: sparkplane list -p %s", p.Name(), p.Name())
	}
	found, err := f.Find(ctx, c)
	var out []Summary
	for _, fc := range found {
		if _, gerr := m.Store.GetCluster(ctx, fc.Name); gerr != nil {
			specJSON, _ := json.Marshal(fc.Spec)
			endpoint, _ := json.Marshal(map[string]string{"agent": fc.Agent})
			if perr := m.Store.PutCluster(ctx, state.Cluster{Name: fc.Name, Provider: p.Name(), Status: state.ClusterRunning, Spec: specJSON,
				Endpoint: endpoint, CreatedAt: fc.CreatedAt}); perr != nil {
				return nil, perr
			}
			m.Store.AddEvent(ctx, state.Event{Cluster: fc.Name, Kind: "find", Message: "found on " + p.Name() + ", made from another machine"})
		}
		out = append(out, summary(fc))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// Add starts n more workers and waits until Spark has registered them.
func (m *Manager) Add(ctx context.Context, ref Ref, n int) ([]string, error) {
	return m.add(ctx, ref, n, nil)
}

// AddHosts adds workers on the named hosts, for a provider that puts clusters on machines the
// user has (a provider.HostAdder), and waits until Spark has registered them.
func (m *Manager) AddHosts(ctx context.Context, ref Ref, hosts []string) ([]string, error) {
	return m.add(ctx, ref, len(hosts), hosts)
}

func (m *Manager) add(ctx context.Context, ref Ref, n int, hosts []string) ([]string, error) {
	client, pc, err := m.connect(ctx, ref)
	if err != nil {
		return nil, err
	}
	p, err := m.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	adder, named := p.(provider.HostAdder)
	if hosts != nil && !named {
		return nil, fmt.Errorf("provider %s makes the machines it runs on: give a number of workers to add, not hosts", p.Name())
	}
	before, err := client.Status(ctx)
	if err != nil {
		return nil, err
	}
	pr := m.progress()
	what := fmt.Sprintf("%d worker(s)", n)
	if hosts != nil {
		what = fmt.Sprint(hosts)
	}
	pr.Start(fmt.Sprintf("Adding %s to %s", what, ref.Name))
	var added []string
	if p.Capabilities().ScaledFromHere {
		// The master's agent cannot reach new nodes: this machine installs them.
		added, err = m.addHere(ctx, p, adder, pc, n, hosts)
	} else {
		var res *agentapi.WorkersResult
		if res, err = client.AddWorkers(ctx, n); err == nil {
			added = res.Nodes
		}
	}
	if err != nil {
		pr.Fail("Add failed")
		return nil, err
	}
	if _, err := m.waitReady(ctx, client, before.AliveWorkers()+len(added)); err != nil {
		pr.Fail("The new workers did not register")
		return added, err
	}
	pr.Done(fmt.Sprintf("added %d worker(s): %v", len(added), added))
	return added, nil
}

// addHere adds workers through the provider from this machine, under the cluster's lock, within
// workers.max.
func (m *Manager) addHere(ctx context.Context, p provider.Provider, adder provider.HostAdder, pc *provider.Cluster, n int, hosts []string) ([]string, error) {
	unlock, err := m.Store.Lock(ctx, "cluster/"+pc.Name, "add")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if have := len(pc.Workers()); pc.Spec != nil && have+n > pc.Spec.Workers.Max {
		return nil, fmt.Errorf("adding %d would make %d workers, above workers.max %d of %s", n, have+n, pc.Spec.Workers.Max, pc.Name)
	}
	if hosts != nil {
		return adder.AddHosts(ctx, pc.Name, hosts)
	}
	return p.AddWorkers(ctx, pc.Name, n)
}

// Remove drains and removes workers: the named ones, or count idle ones.
func (m *Manager) Remove(ctx context.Context, ref Ref, req agentapi.RemoveWorkersRequest) ([]string, error) {
	client, _, err := m.connect(ctx, ref)
	if err != nil {
		return nil, err
	}
	p, err := m.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	here := p.Capabilities().ScaledFromHere
	pr := m.progress()
	what := fmt.Sprintf("%d worker(s)", req.Count)
	if len(req.Nodes) > 0 {
		what = fmt.Sprint(req.Nodes)
	}
	pr.Start(fmt.Sprintf("Draining and removing %s from %s", what, ref.Name))
	// Where the master's agent cannot reach the nodes, it drains them in Spark and this machine
	// removes them.
	req.DrainOnly = here
	res, err := client.RemoveWorkers(ctx, req)
	if err != nil {
		pr.Fail("Remove failed")
		return nil, err
	}
	if here {
		unlock, err := m.Store.Lock(ctx, "cluster/"+ref.Name, "remove")
		if err != nil {
			return nil, err
		}
		defer unlock()
		if err := p.RemoveWorkers(ctx, ref.Name, res.Nodes); err != nil {
			pr.Fail("Remove failed")
			return nil, fmt.Errorf("%v were drained in Spark, but not removed: %w; run remove again", res.Nodes, err)
		}
	}
	pr.Done(fmt.Sprintf("removed %v after decommissioning them in Spark", res.Nodes))
	return res.Nodes, nil
}

// Destroy removes a cluster and everything it has. Its jobs' records are kept. Destroying a
// cluster that does not exist succeeds and says so.
func (m *Manager) Destroy(ctx context.Context, ref Ref) error {
	pr := m.progress()
	p, err := m.resolve(ctx, ref)
	if err != nil {
		return err
	}
	unlock, err := m.Store.Lock(ctx, "cluster/"+ref.Name, "destroy")
	if err != nil {
		return err
	}
	defer unlock()
	pc, err := p.Get(ctx, ref.Name)
	if errors.Is(err, provider.ErrNotFound) {
		m.notFound(ctx, ref.Name, p.Name())
		pr.Info(fmt.Sprintf("no cluster %s on %s: nothing to destroy", ref.Name, p.Name()))
		// Leftovers of a crashed create are still cleaned.
		return p.Destroy(ctx, ref.Name)
	}
	// Keep the job history: bring it up to date while the agent still answers.
	if client, _, err := m.connect(ctx, ref); err == nil {
		if jobs, err := client.Jobs(ctx); err == nil {
			m.syncJobs(ctx, jobs)
		}
	}
	m.Store.SetClusterStatus(ctx, ref.Name, state.ClusterDestroying)
	pr.Start(fmt.Sprintf("Destroying %s on %s", ref.Name, p.Name()))
	if err := p.Destroy(ctx, ref.Name); err != nil {
		pr.Fail("Destroy failed")
		return fmt.Errorf("%w; destroy is safe to run again", err)
	}
	if _, err := p.Get(ctx, ref.Name); !errors.Is(err, provider.ErrNotFound) {
		pr.Fail("Destroy left something behind")
		return fmt.Errorf("destroy %s: the provider still shows it (%v); run destroy again", ref.Name, err)
	}
	m.markLost(ctx, ref.Name)
	m.Store.SetClusterStatus(ctx, ref.Name, state.ClusterDestroyed)
	m.Store.AddEvent(ctx, state.Event{Cluster: ref.Name, Kind: "destroy", Message: "destroyed"})
	pr.Done(fmt.Sprintf("destroyed %s: nothing of it remains on %s", ref.Name, p.Name()))
	if pc != nil && pc.Spec != nil {
		if dir, ok := strings.CutPrefix(p.EventLogDir(ref.Name, pc.Spec), "file://"); ok {
			if es, _ := os.ReadDir(dir); len(es) > 0 {
				pr.Info(fmt.Sprintf("its Spark event logs stay in %s for sparkplane history %s; delete them when you no longer need them", dir, ref.Name))
			}
		}
	}
	return nil
}

// markLost ends, in the history, jobs whose cluster went before they did.
func (m *Manager) markLost(ctx context.Context, cluster string) {
	jobs, err := m.Store.ListJobs(ctx, cluster, 0)
	if err != nil {
		return
	}
	for _, j := range jobs {
		if !state.JobDone(j.State) {
			j.State, j.Message, j.FinishedAt = state.JobLost, "the cluster was destroyed before the job ended", time.Now()
			m.Store.PutJob(ctx, j)
		}
	}
}

// syncJobs copies job records from the agent into the history.
func (m *Manager) syncJobs(ctx context.Context, jobs []state.Job) {
	for _, j := range jobs {
		m.Store.PutJob(ctx, j)
	}
}
