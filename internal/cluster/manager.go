// Package cluster is sparkplane as a library: every verb of the CLI is a method of Manager.
// The manager chooses the provider, keeps the local state (cache, job history, events, locks),
// and talks to the cluster's master agent; the provider makes and unmakes nodes.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
)

// Progress receives what a long operation is doing, for status lines.
type Progress interface {
	Start(msg string) // a step begins
	Done(msg string)  // the step ended well
	Fail(msg string)  // the step failed
	Info(msg string)
	Warn(msg string)
}

// Quiet is a Progress that says nothing.
type Quiet struct{}

func (Quiet) Start(string) {}
func (Quiet) Done(string)  {}
func (Quiet) Fail(string)  {}
func (Quiet) Info(string)  {}
func (Quiet) Warn(string)  {}

// SparkResolver finds the Spark distribution a cluster uses on this machine.
type SparkResolver func(ctx context.Context, c *spec.Cluster) (*spark.Distribution, error)

// ConnectorResolver finds Hadoop's S3A connector for a Spark distribution (spark.ResolveConnector).
type ConnectorResolver func(ctx context.Context, dist *spark.Distribution) (*spark.Connector, error)

// Manager carries out the verbs.
type Manager struct {
	Providers *provider.Registry
	Store     *state.Store
	Spark     SparkResolver
	// S3A resolves the S3A connector for clusters whose jobs use S3; without it they get none.
	S3A      ConnectorResolver
	Progress Progress
	// ReadyTimeout bounds the wait for the master and workers to register (default 5 minutes).
	ReadyTimeout time.Duration
	// PollInterval is how often cluster state is polled while waiting (default 250ms).
	PollInterval time.Duration
}

func (m *Manager) progress() Progress {
	if m.Progress == nil {
		return Quiet{}
	}
	return m.Progress
}

func (m *Manager) readyTimeout() time.Duration {
	if m.ReadyTimeout == 0 {
		return 5 * time.Minute
	}
	return m.ReadyTimeout
}

func (m *Manager) poll() time.Duration {
	if m.PollInterval == 0 {
		return 250 * time.Millisecond
	}
	return m.PollInterval
}

// DefaultProvider is used for a cluster the state does not know, when no provider is named.
const DefaultProvider = "local"

// Ref names a cluster: its name, and the provider when the caller knows it.
type Ref struct {
	Name     string
	Provider string
}

// resolve finds a cluster's provider: the one named, else the one the state remembers, else the
// default.
func (m *Manager) resolve(ctx context.Context, ref Ref) (provider.Provider, error) {
	name := ref.Provider
	if name == "" {
		if rec, err := m.Store.GetCluster(ctx, ref.Name); err == nil {
			name = rec.Provider
		} else {
			name = DefaultProvider
		}
	}
	return m.Providers.Get(name)
}

// NotFoundError says a cluster does not exist, and what the state remembers of it.
type NotFoundError struct {
	Name, Provider string
	LastStatus     string
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("no cluster %q on provider %s", e.Name, e.Provider)
	if e.LastStatus != "" && e.LastStatus != state.ClusterDestroyed {
		msg += fmt.Sprintf(" (it was %s when last seen; it may have destroyed itself: sparkplane events %s)", e.LastStatus, e.Name)
	}
	return msg
}

func (e *NotFoundError) Unwrap() error { return provider.ErrNotFound }

// connect returns a client for a cluster's master agent.
func (m *Manager) connect(ctx context.Context, ref Ref) (*agentapi.Client, *provider.Cluster, error) {
	p, err := m.resolve(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	c, err := p.Get(ctx, ref.Name)
	if errors.Is(err, provider.ErrNotFound) {
		return nil, nil, m.notFound(ctx, ref.Name, p.Name())
	}
	if err != nil {
		return nil, nil, err
	}
	if c.Agent == "" {
		return nil, c, fmt.Errorf("the master of %s does not answer (its agent is not running); sparkplane status %s shows what is left, sparkplane destroy %s removes it",
			ref.Name, ref.Name, ref.Name)
	}
	secret, err := p.Secret(ctx, ref.Name)
	if err != nil {
		return nil, c, fmt.Errorf("read the secret of %s: %w", ref.Name, err)
	}
	client, err := agentClient(ctx, p, ref.Name, c.Agent, secret)
	return client, c, err
}

// agentClient is a client for a cluster's agent (see provider.AgentClient).
var agentClient = provider.AgentClient

// notFound builds the error for a missing cluster and brings the state's cache up to date.
func (m *Manager) notFound(ctx context.Context, name, prov string) error {
	e := &NotFoundError{Name: name, Provider: prov}
	if rec, err := m.Store.GetCluster(ctx, name); err == nil {
		e.LastStatus = rec.Status
		if rec.Status != state.ClusterDestroyed {
			m.Store.SetClusterStatus(ctx, name, state.ClusterDestroyed)
		}
	}
	return e
}

func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// CreateOptions change how a cluster is created.
type CreateOptions struct {
	// Retain keeps what a failed create made, for inspection, instead of rolling it back.
	Retain bool
}

// Plan says what Create would do.
func (m *Manager) Plan(ctx context.Context, c *spec.Cluster) (*provider.Plan, error) {
	p, err := m.Providers.Get(c.Provider)
	if err != nil {
		return nil, c.Origin.Errorf("provider", "sparkplane version lists the providers of this build", "%v", err)
	}
	if err := checkCapabilities(c, p); err != nil {
		return nil, err
	}
	return p.Plan(ctx, c)
}

func checkCapabilities(c *spec.Cluster, p provider.Provider) error {
	caps := p.Capabilities()
	if pol := c.Autoscale.Policy; pol != spec.PolicyOff && !slices.Contains(caps.Autoscale, pol) {
		return c.Origin.Errorf("autoscale.policy", "use off until the autoscaler lands for this provider",
			"provider %s cannot scale with policy %s in this build", p.Name(), pol)
	}
	if c.Workers.Spot && !caps.Spot {
		return c.Origin.Errorf("workers.spot", "leave it out", "provider %s has no spot capacity", p.Name())
	}
	return nil
}

// Create makes a cluster and waits until its master and all its workers run. It is
// all-or-nothing: on failure, or when ctx is cancelled, what was made is destroyed, unless
// opts.Retain.
func (m *Manager) Create(ctx context.Context, c *spec.Cluster, opts CreateOptions) (*Status, error) {
	pr := m.progress()
	p, err := m.Providers.Get(c.Provider)
	if err != nil {
		return nil, c.Origin.Errorf("provider", "sparkplane version lists the providers of this build", "%v", err)
	}
	if err := checkCapabilities(c, p); err != nil {
		return nil, err
	}
	unlock, err := m.Store.Lock(ctx, "cluster/"+c.Name, "create")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := p.Get(ctx, c.Name); err == nil {
		return nil, &provider.ExistsError{Name: c.Name, Provider: p.Name()}
	} else if !errors.Is(err, provider.ErrNotFound) {
		return nil, err
	}

	var dist *spark.Distribution
	// A provider that ships Spark copies this machine's, unless spark.home names one its nodes
	// have.
	if caps := p.Capabilities(); caps.LocalSpark || (caps.ShipsSpark && c.Spark.Home == "") {
		pr.Start(fmt.Sprintf("Finding Spark %s", c.Spark.Version))
		if dist, err = m.Spark(ctx, c); err != nil {
			pr.Fail("No Spark")
			return nil, err
		}
		if dist.Version != "" && dist.Version != c.Spark.Version {
			pr.Warn(fmt.Sprintf("%s is Spark %s, not %s as the spec says; using it", dist.Home, dist.Version, c.Spark.Version))
			c.Spark.Version = dist.Version
		}
		from := ""
		if dist.From != "" {
			from = " (" + dist.From + ")"
		}
		pr.Done(fmt.Sprintf("Spark %s at %s%s", c.Spark.Version, dist.Home, from))
	}
	var s3a *spark.Connector
	if c.UsesS3() && !p.Capabilities().S3A {
		pr.Warn(fmt.Sprintf("the %s provider does not put Hadoop's S3A connector on its nodes yet: jobs that read or write s3a:// need it on their own (--packages org.apache.hadoop:hadoop-aws)", p.Name()))
	} else if dist != nil && c.UsesS3() && m.S3A != nil {
		pr.Start("Finding Hadoop's S3A connector")
		if s3a, err = m.S3A(ctx, dist); err != nil {
			pr.Fail("No S3A connector")
			return nil, err
		}
		pr.Done(fmt.Sprintf("S3A connector: hadoop-aws %s with AWS SDK %s, %.1f MB in %d jars", s3a.Hadoop, s3a.SDK, float64(s3a.Bytes())/1e6, len(s3a.Jars)))
	}

	specJSON, _ := json.Marshal(c)
	rec := state.Cluster{Name: c.Name, Provider: p.Name(), Status: state.ClusterCreating, Spec: specJSON}
	if dist != nil {
		rec.SparkHome = dist.Home
	}
	if err := m.Store.PutCluster(ctx, rec); err != nil {
		return nil, err
	}
	secret := newSecret()
	rollback := func(cause error) error {
		if opts.Retain {
			m.Store.SetClusterStatus(context.Background(), c.Name, state.ClusterFailed)
			pr.Warn(fmt.Sprintf("kept what was made of %s for inspection; sparkplane destroy %s removes it", c.Name, c.Name))
			return cause
		}
		// A fresh context: the one given may be what was cancelled.
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		pr.Start("Rolling back")
		if err := p.Destroy(rctx, c.Name); err != nil {
			pr.Fail("Rollback failed")
			m.Store.SetClusterStatus(rctx, c.Name, state.ClusterFailed)
			return errors.Join(cause, fmt.Errorf("rollback failed: %w; run sparkplane destroy %s", err, c.Name))
		}
		m.Store.DeleteCluster(rctx, c.Name)
		m.Store.AddEvent(rctx, state.Event{Cluster: c.Name, Kind: "create", Message: "create failed and was rolled back: " + cause.Error()})
		pr.Done(fmt.Sprintf("Rolled back: nothing of %s remains", c.Name))
		return cause
	}

	pr.Start(fmt.Sprintf("Starting %s on %s", c.Name, p.Name()))
	pc, err := p.Create(ctx, c, provider.CreateOptions{Secret: secret, Spark: dist, S3A: s3a, Progress: pr.Info})
	if err != nil {
		pr.Fail("Create failed")
		return nil, rollback(fmt.Errorf("create %s: %w", c.Name, err))
	}
	client, err := agentClient(ctx, p, c.Name, pc.Agent, secret)
	if err != nil {
		pr.Fail("Create failed")
		return nil, rollback(err)
	}
	st, err := m.waitReady(ctx, client, c.Workers.Count)
	if err != nil {
		pr.Fail("The cluster did not come up")
		return nil, rollback(err)
	}
	pr.Done(fmt.Sprintf("master started (%s, UI %s)", st.Master.URL, st.Master.UI))
	if c.Workers.Count > 0 {
		pr.Done(fmt.Sprintf("%d worker(s) registered (%d cores, %s)", st.AliveWorkers(), st.Cores, spec.FormatMemory(st.MemoryMiB)))
	}
	endpoint, _ := json.Marshal(map[string]string{"agent": pc.Agent, "master": st.Master.URL, "ui": st.Master.UI})
	rec.Status, rec.Endpoint = state.ClusterRunning, endpoint
	if err := m.Store.PutCluster(ctx, rec); err != nil {
		pr.Warn("could not record the cluster in the state database: " + err.Error())
	}
	m.Store.AddEvent(ctx, state.Event{Cluster: c.Name, Kind: "create", Message: fmt.Sprintf("created on %s with %d worker(s)", p.Name(), c.Workers.Count)})
	return &Status{Name: c.Name, Provider: p.Name(), State: StateRunning, Spec: c, CreatedAt: pc.CreatedAt, Nodes: pc.Nodes, Agent: st}, nil
}

// waitReady waits until the master is ALIVE and n workers are registered.
func (m *Manager) waitReady(ctx context.Context, client *agentapi.Client, n int) (*agentapi.ClusterStatus, error) {
	deadline := time.Now().Add(m.readyTimeout())
	var last *agentapi.ClusterStatus
	var lastErr error
	for {
		st, err := client.Status(ctx)
		if err == nil {
			last = st
			if st.Master.State == "ALIVE" && st.AliveWorkers() >= n {
				return st, nil
			}
		}
		lastErr = err
		if time.Now().After(deadline) {
			return nil, notReady(last, lastErr, n, m.readyTimeout())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(m.poll()):
		}
	}
}

func notReady(st *agentapi.ClusterStatus, err error, n int, after time.Duration) error {
	switch {
	case st == nil:
		return fmt.Errorf("the master's agent did not answer within %s: %v", after, err)
	case st.Master.State != "ALIVE":
		msg := fmt.Sprintf("the Spark master did not start within %s", after)
		if st.Master.Daemon.LastError != "" {
			msg += " (" + st.Master.Daemon.LastError + ")"
		}
		return errors.New(msg + "; its log is spark-master.out in the master's logs directory")
	default:
		return fmt.Errorf("%d of %d workers registered within %s", st.AliveWorkers(), n, after)
	}
}
