// Package providertest is the conformance suite every provider passes: one set of tests, written
// once, run by each provider's own test with a harness that knows how to make its clusters.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// Harness is what a provider's test hands to the suite.
type Harness struct {
	Provider provider.Provider
	// Spec returns a small valid spec for this provider, with the given name and worker count.
	Spec func(name string, workers int) *spec.Cluster
	// Options returns what Create needs besides the spec and the secret.
	Options func(t *testing.T) provider.CreateOptions
	// Timeout bounds each wait for the cluster to reach a state (default 2 minutes).
	Timeout time.Duration
}

// Run runs the suite. Each subtest makes its own cluster and destroys it.
func Run(t *testing.T, h Harness) {
	if h.Timeout == 0 {
		h.Timeout = 2 * time.Minute
	}
	t.Run("Plan", func(t *testing.T) { testPlan(t, h) })
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, h) })
	t.Run("DestroyAfterFailedCreate", func(t *testing.T) { testFailedCreate(t, h) })
	t.Run("DestroyIsIdempotent", func(t *testing.T) { testDestroyIdempotent(t, h) })
}

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1_000_000)
}

func create(t *testing.T, h Harness, ctx context.Context, c *spec.Cluster, secret string) *provider.Cluster {
	t.Helper()
	opts := h.Options(t)
	opts.Secret = secret
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := h.Provider.Destroy(ctx, c.Name); err != nil {
			t.Errorf("cleanup: destroy %s: %v", c.Name, err)
		}
	})
	got, err := h.Provider.Create(ctx, c, opts)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return got
}

func testPlan(t *testing.T, h Harness) {
	ctx := context.Background()
	c := h.Spec(uniqueName("plan"), 2)
	plan, err := h.Provider.Plan(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Provider != h.Provider.Name() || len(plan.Changes) == 0 {
		t.Errorf("plan: %+v", plan)
	}
	for _, ch := range plan.Changes {
		if ch.Action != provider.Create {
			t.Errorf("a plan for a new cluster only creates: %+v", ch)
		}
	}
	if _, err := h.Provider.Get(ctx, c.Name); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("Plan must not create anything; Get says %v", err)
	}
}

// status asks the cluster's master agent for its status.
func status(ctx context.Context, h Harness, name, secret string) (*agentapi.ClusterStatus, error) {
	c, err := h.Provider.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if c.Agent == "" {
		return nil, errors.New("the provider knows no master agent")
	}
	client, err := provider.AgentClient(ctx, h.Provider, name, c.Agent, secret)
	if err != nil {
		return nil, err
	}
	return client.Status(ctx)
}

// waitWorkers waits until Spark has exactly n alive workers, each tied to a node of the provider.
func waitWorkers(t *testing.T, h Harness, ctx context.Context, name, secret string, n int) *agentapi.ClusterStatus {
	t.Helper()
	var st *agentapi.ClusterStatus
	testutil.Eventually(t, h.Timeout, fmt.Sprintf("%d workers registered in Spark", n), func() error {
		var err error
		if st, err = status(ctx, h, name, secret); err != nil {
			return err
		}
		if st.Master.State != "ALIVE" {
			return fmt.Errorf("master state %q", st.Master.State)
		}
		alive := 0
		for _, w := range st.Workers {
			if w.State == "ALIVE" && w.NodeID != "" {
				alive++
			}
		}
		if alive != n || len(st.Workers) != n {
			return fmt.Errorf("%d alive of %d listed workers: %+v", alive, len(st.Workers), st.Workers)
		}
		return nil
	})
	return st
}

func testLifecycle(t *testing.T, h Harness) {
	// A bound on a hung provider, not a speed target: an AWS lifecycle against moto takes ten
	// minutes on a loaded two-core machine.
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	const secret = "conformance-secret-0123456789"
	c := h.Spec(uniqueName("life"), 2)
	got := create(t, h, ctx, c, secret)
	if got.Name != c.Name || got.Provider != h.Provider.Name() || got.Agent == "" {
		t.Fatalf("Create returned %+v", got)
	}

	if dir := h.Provider.EventLogDir(c.Name, c); !strings.Contains(dir, "://") || dir != h.Provider.EventLogDir(c.Name, c) {
		t.Errorf("EventLogDir = %q; want the same URL every time", dir)
	}
	if s, err := h.Provider.Secret(ctx, c.Name); err != nil || s != secret {
		t.Errorf("Secret = %q, %v; want the secret given to Create", s, err)
	}
	wrong, err := provider.AgentClient(ctx, h.Provider, c.Name, got.Agent, "wrong")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Status(ctx); !errors.Is(err, agentapi.ErrUnauthorized) {
		t.Errorf("the agent must refuse a wrong token; got %v", err)
	}
	st := waitWorkers(t, h, ctx, c.Name, secret, 2)
	if st.Cluster != c.Name || st.Master.URL == "" {
		t.Errorf("status: %+v", st.Master)
	}

	// Get and List rebuild the cluster from the provider alone.
	desc, err := h.Provider.Get(ctx, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.Workers()) != 2 || desc.Spec == nil || desc.Spec.Name != c.Name || desc.CreatedAt.IsZero() {
		t.Errorf("Get: %+v", desc)
	}
	for _, n := range desc.Nodes {
		if n.State != provider.NodeRunning {
			t.Errorf("node %s is %s", n.ID, n.State)
		}
	}
	list, err := h.Provider.List(ctx)
	if err != nil || !slices.ContainsFunc(list, func(x provider.Cluster) bool { return x.Name == c.Name }) {
		t.Errorf("List does not show %s: %v", c.Name, err)
	}

	// A second cluster of the same name is refused.
	opts := h.Options(t)
	opts.Secret = secret
	var exists *provider.ExistsError
	if _, err := h.Provider.Create(ctx, c, opts); !errors.As(err, &exists) {
		t.Errorf("second Create of %s: %v, want ExistsError", c.Name, err)
	}

	// Add one worker, then remove it again.
	added, err := h.Provider.AddWorkers(ctx, c.Name, 1)
	if err != nil || len(added) != 1 {
		t.Fatalf("AddWorkers: %v %v", added, err)
	}
	for _, n := range desc.Workers() {
		if n.ID == added[0] {
			t.Errorf("AddWorkers reused the id %s", n.ID)
		}
	}
	waitWorkers(t, h, ctx, c.Name, secret, 3)
	if err := h.Provider.RemoveWorkers(ctx, c.Name, added); err != nil {
		t.Fatalf("RemoveWorkers: %v", err)
	}
	desc, _ = h.Provider.Get(ctx, c.Name)
	if len(desc.Workers()) != 2 || slices.ContainsFunc(desc.Nodes, func(n provider.Node) bool { return n.ID == added[0] }) {
		t.Errorf("after RemoveWorkers: %+v", desc.Nodes)
	}

	agent, err := provider.AgentClient(ctx, h.Provider, c.Name, got.Agent, secret) // before its certificate goes
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Health(ctx); err != nil {
		t.Fatalf("the master agent does not answer before Destroy: %v", err)
	}
	if err := h.Provider.Destroy(ctx, c.Name); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := h.Provider.Get(ctx, c.Name); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("Get after Destroy: %v", err)
	}
	testutil.Eventually(t, h.Timeout, "the master agent stops answering after Destroy", func() error {
		hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
		defer hcancel()
		if _, err := agent.Health(hctx); err == nil {
			return errors.New("it still answers")
		}
		return nil
	})
}

func testFailedCreate(t *testing.T, h Harness) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := h.Spec(uniqueName("fail"), 2)
	opts := h.Options(t)
	opts.Secret = "conformance-secret-fail"
	// Interrupt the create as soon as it reports its first step.
	opts.Progress = func(string) { cancel() }
	_, err := h.Provider.Create(ctx, c, opts)
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer dcancel()
	if err == nil {
		// Too fast to interrupt: still a valid outcome; clean up and check destroy works.
		t.Log("Create finished before it could be interrupted")
	}
	if err := h.Provider.Destroy(dctx, c.Name); err != nil {
		t.Fatalf("Destroy after an interrupted Create: %v", err)
	}
	if _, err := h.Provider.Get(dctx, c.Name); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("Get after Destroy: %v", err)
	}
	list, _ := h.Provider.List(dctx)
	if slices.ContainsFunc(list, func(x provider.Cluster) bool { return x.Name == c.Name }) {
		t.Errorf("List still shows %s", c.Name)
	}
}

func testDestroyIdempotent(t *testing.T, h Harness) {
	ctx := context.Background()
	name := uniqueName("never")
	for i := 0; i < 2; i++ {
		if err := h.Provider.Destroy(ctx, name); err != nil {
			t.Fatalf("Destroy of a cluster that does not exist (%d): %v", i+1, err)
		}
	}
	if _, err := h.Provider.Secret(ctx, name); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("Secret of a missing cluster: %v", err)
	}
}
