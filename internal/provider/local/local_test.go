package local_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/provider/local"
	"github.com/sparkplane/sparkplane/internal/provider/providertest"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

const binaryPkg = "github.com/sparkplane/sparkplane/cmd/sparkplane"

func newProvider(t *testing.T) (*local.Provider, string) {
	root := t.TempDir()
	return local.New(local.Options{Root: root, AgentBinary: testutil.Build(t, binaryPkg), StateDB: filepath.Join(root, "state.db"),
		StopGrace: 20 * time.Second}), root
}

func smallSpec(name string, workers int) *spec.Cluster {
	c, err := spec.Default(spec.Options{DefaultName: name, Overrides: []spec.Override{
		{Path: []string{"workers", "count"}, Value: fmt.Sprint(workers), Flag: "test"},
	}})
	if err != nil {
		panic(err)
	}
	return c
}

func sparkOptions(home string) func(*testing.T) provider.CreateOptions {
	return func(t *testing.T) provider.CreateOptions {
		d, err := spark.OpenHome(home)
		if err != nil {
			t.Fatal(err)
		}
		return provider.CreateOptions{Spark: d}
	}
}

func TestRealSparkConformance(t *testing.T) {
	for _, line := range sparktest.Lines() {
		t.Run("Spark"+line, func(t *testing.T) {
			home := sparktest.RealHome(t, line)
			p, _ := newProvider(t)
			providertest.Run(t, providertest.Harness{Provider: p, Spec: smallSpec, Options: sparkOptions(home), Timeout: 5 * time.Minute})
		})
	}
}

// A worker agent killed with SIGKILL in the middle of a job takes its Spark worker along
// (parent-death signal): Spark drops the worker, the job running there ends instead of hanging,
// and the master's agent cleans up and starts a replacement.
func TestKilledWorkerIsReplaced(t *testing.T) {
	p, root := newProvider(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := smallSpec("recover", 2)
	opts := sparkOptions(sparktest.Home(t, "3.5.3"))(t)
	opts.Secret = "recover-secret"
	t.Cleanup(func() { p.Destroy(context.Background(), c.Name) })
	got, err := p.Create(ctx, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	client := &agentapi.Client{BaseURL: got.Agent, Token: opts.Secret}
	waitAlive(t, ctx, client, 2)

	app := filepath.Join(t.TempDir(), "long.jar")
	os.WriteFile(app, []byte("standin: duration=10m\n"), 0o644)
	job, err := client.Submit(ctx, agentapi.JobRequest{Resource: "long.jar", Class: "Long"}, map[string]string{"long.jar": app})
	if err != nil {
		t.Fatal(err)
	}
	var victim string
	testutil.Eventually(t, time.Minute, "the driver runs on a worker", func() error {
		st, err := client.Status(ctx)
		if err != nil {
			return err
		}
		for _, w := range st.Workers {
			if w.Drivers > 0 {
				victim = w.NodeID
				return nil
			}
		}
		return errors.New("not placed yet")
	})
	if err := syscall.Kill(pidOf(t, root, c.Name, victim), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, "the job ends with its worker", func() error {
		j, err := client.Job(ctx, job.ID)
		if err != nil {
			return err
		}
		if j.State != "ERROR" {
			return fmt.Errorf("job is %s", j.State)
		}
		return nil
	})
	testutil.Eventually(t, 2*time.Minute, victim+" replaced", func() error {
		d, err := p.Get(ctx, c.Name)
		if err != nil {
			return err
		}
		var ids []string
		for _, n := range d.Workers() {
			if n.State != provider.NodeRunning {
				return fmt.Errorf("%s is %s", n.ID, n.State)
			}
			ids = append(ids, n.ID)
		}
		if len(ids) != 2 || slices.Contains(ids, victim) || !slices.Contains(ids, "worker-3") {
			return fmt.Errorf("workers %v", ids)
		}
		return nil
	})
	waitAlive(t, ctx, client, 2)
	// The event is written once the replacement has started, so it may trail the status a little.
	testutil.Eventually(t, 30*time.Second, "an event tells of the replacement", func() error {
		st, err := client.Status(ctx)
		if err != nil {
			return err
		}
		for _, e := range st.Events {
			if strings.Contains(e.Message, "lost "+victim+" (agent gone); replaced by worker-3") {
				return nil
			}
		}
		return fmt.Errorf("events: %+v", st.Events)
	})
}

// With its master agent killed, the cluster reports the loss, and destroy still removes
// everything.
func TestKilledMasterThenDestroy(t *testing.T) {
	p, root := newProvider(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := smallSpec("headless", 1)
	opts := sparkOptions(sparktest.Home(t, "3.5.3"))(t)
	opts.Secret = "headless-secret"
	if _, err := p.Create(ctx, c, opts); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "clusters", c.Name)
	// What the cluster's record and its agents write is the user's alone.
	for _, f := range []string{"cluster.json", "token", "nodes/master/agent.json", "nodes/master/agent.log"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v %v, want no access for others", f, fi.Mode(), err)
		}
	}
	syscall.Kill(pidOf(t, root, c.Name, "master"), syscall.SIGKILL)
	testutil.Eventually(t, 30*time.Second, "master reported stopped", func() error {
		d, err := p.Get(ctx, c.Name)
		if err != nil {
			return err
		}
		if d.Nodes[0].Role != "master" || d.Nodes[0].State != provider.NodeStopped {
			return fmt.Errorf("master is %s", d.Nodes[0].State)
		}
		return nil
	})
	if err := p.Destroy(ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory left behind: %v", err)
	}
	if left := processesNaming(dir); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

func waitAlive(t *testing.T, ctx context.Context, c *agentapi.Client, n int) {
	t.Helper()
	testutil.Eventually(t, 2*time.Minute, fmt.Sprintf("%d alive workers", n), func() error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if st.AliveWorkers() != n {
			return fmt.Errorf("%d alive: %+v", st.AliveWorkers(), st.Workers)
		}
		return nil
	})
}

func pidOf(t *testing.T, root, cluster, node string) int {
	b, err := os.ReadFile(filepath.Join(root, "clusters", cluster, "nodes", node, "agent.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	return pid
}

// processesNaming scans /proc for command lines that mention dir.
func processesNaming(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), dir) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// docs/troubleshooting.md's table of where things are matches where the local provider puts them.
func TestTroubleshootingNamesTheEventLogDir(t *testing.T) {
	p, root := newProvider(t)
	if got, want := p.EventLogDir("c", smallSpec("c", 1)), "file://"+filepath.Join(root, "event-logs", "c"); got != want && got != strings.TrimPrefix(want, "file://") {
		t.Fatalf("EventLogDir = %s, want %s (and the docs with it)", got, want)
	}
	doc, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "docs", "troubleshooting.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "| Spark event logs | `$SPARKPLANE_HOME/event-logs/NAME/`") {
		t.Error("docs/troubleshooting.md does not say that event logs are in $SPARKPLANE_HOME/event-logs/NAME/")
	}
}
