package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/cluster/clustertest"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// brokenHome is a Spark whose workers die at once, so that a create can never finish.
func brokenHome(t *testing.T) string {
	home := sparktest.Home(t, "3.5.3")
	class := filepath.Join(home, "bin", "spark-class")
	orig, _ := os.ReadFile(class)
	broken := strings.Replace(string(orig), "exec ", `case "$1" in *Worker) echo "worker failed on purpose" >&2; exit 1;; esac
exec `, 1)
	os.WriteFile(class, []byte(broken), 0o755)
	return home
}

func TestCreateRollsBack(t *testing.T) {
	e := clustertest.NewEnv(t, brokenHome(t))
	e.M.ReadyTimeout = 3 * time.Second
	c := clustertest.Spec(t, "name: doomed\n")
	_, err := e.M.Create(context.Background(), c, cluster.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "0 of 2 workers registered") {
		t.Fatalf("create: %v", err)
	}
	if !strings.Contains(e.Rec.String(), "done Rolled back: nothing of doomed remains") {
		t.Errorf("progress:\n%s", e.Rec)
	}
	e.NothingLeft(t, "doomed")
	if _, err := e.Store.GetCluster(context.Background(), "doomed"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("a rolled-back cluster must not stay in the state: %v", err)
	}
	evs, _ := e.Store.ListEvents(context.Background(), "doomed", 0)
	if len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Message, "rolled back") {
		t.Errorf("events: %+v", evs)
	}
}

func TestCreateInterruptedRollsBack(t *testing.T) {
	e := clustertest.NewEnv(t, brokenHome(t))
	ctx, cancel := context.WithCancel(context.Background())
	c := clustertest.Spec(t, "name: interrupted\n")
	go func() {
		// Ctrl-C once the master's agent answers, while workers are still awaited.
		testutil.Eventually(t, time.Minute, "master started", func() error {
			if !strings.Contains(e.Rec.String(), "master agent answers") {
				return errors.New("not yet")
			}
			return nil
		})
		cancel()
	}()
	_, err := e.M.Create(ctx, c, cluster.CreateOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("create: %v", err)
	}
	e.NothingLeft(t, "interrupted")
}

func TestCreateRetain(t *testing.T) {
	e := clustertest.NewEnv(t, brokenHome(t))
	e.M.ReadyTimeout = 2 * time.Second
	c := clustertest.Spec(t, "name: kept\n")
	if _, err := e.M.Create(context.Background(), c, cluster.CreateOptions{Retain: true}); err == nil {
		t.Fatal("create succeeded")
	}
	if _, err := e.Prov.Get(context.Background(), "kept"); err != nil {
		t.Fatalf("--retain must keep the cluster: %v", err)
	}
	rec, _ := e.Store.GetCluster(context.Background(), "kept")
	if rec == nil || rec.Status != state.ClusterFailed {
		t.Errorf("state: %+v", rec)
	}
	if err := e.M.Destroy(context.Background(), cluster.Ref{Name: "kept"}); err != nil {
		t.Fatal(err)
	}
	e.NothingLeft(t, "kept")
}

func TestCapabilitiesAreChecked(t *testing.T) {
	e := clustertest.NewEnv(t, sparktest.Home(t, "3.5.3"))
	c := clustertest.Spec(t, "name: spot\nworkers: {spot: true}\n")
	_, err := e.M.Create(context.Background(), c, cluster.CreateOptions{})
	var fe *spec.FieldError
	if !errors.As(err, &fe) || fe.Path != "workers.spot" || fe.Pos.Line != 4 {
		t.Fatalf("want a positioned error on workers.spot, got %v", err)
	}
	c = clustertest.Spec(t, "name: other\nprovider: nomad\nnomad: {address: http://127.0.0.1:4646}\n")
	if _, err := e.M.Create(context.Background(), c, cluster.CreateOptions{}); !errors.As(err, &fe) || fe.Path != "provider" {
		t.Fatalf("an unavailable provider: %v", err)
	}
}

// autoscaleBurst submits n jobs at once to a cluster of one to four 2-core workers under the
// spark policy (keepAlive 3s), waits until it has grown to three workers or more, checks that
// every job finished, and that idleness shrank it back to one, with the reasons in its events.
func autoscaleBurst(t *testing.T, e *clustertest.Env, conf string, n int, job func(i int) cluster.JobSpec) {
	ctx := context.Background()
	c := clustertest.Spec(t, `name: elastic
workers: {count: 1, min: 1, max: 4, cores: 2, memory: 2g}
autoscale: {policy: spark, interval: 1s, keepAlive: 3s}
spark:
  conf: {`+conf+`}
`)
	ref := cluster.Ref{Name: "elastic"}
	t.Cleanup(func() { e.M.Destroy(context.Background(), ref) })
	if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); err != nil {
		t.Fatalf("%v\n%s", err, e.Rec)
	}
	var ids []string
	for i := range n {
		j, err := e.M.Submit(ctx, ref, job(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	peak := 0
	testutil.Eventually(t, 3*time.Minute, "the burst makes the cluster grow", func() error {
		st, err := e.M.Status(ctx, ref)
		if err != nil {
			return err
		}
		peak = max(peak, st.Agent.AliveWorkers())
		if peak < 3 {
			return fmt.Errorf("%d alive workers; autoscaler: %+v", st.Agent.AliveWorkers(), st.Agent.Autoscale)
		}
		return nil
	})
	for _, id := range ids {
		j, err := e.M.Wait(ctx, ref, id, cluster.WaitOptions{})
		if err != nil || j.State != state.JobFinished {
			t.Fatalf("job %s: %+v %v", id, j, err)
		}
	}
	testutil.Eventually(t, 3*time.Minute, "idleness makes it shrink to workers.min", func() error {
		st, err := e.M.Status(ctx, ref)
		if err != nil {
			return err
		}
		if len(st.Nodes) != 2 || st.Agent.AliveWorkers() != 1 {
			return fmt.Errorf("%d nodes, %d alive workers; autoscaler: %+v", len(st.Nodes), st.Agent.AliveWorkers(), st.Agent.Autoscale)
		}
		return nil
	})
	st, _ := e.M.Status(ctx, ref)
	if a := st.Agent.Autoscale; a == nil || a.Policy != "spark" || a.LaunchLatency >= time.Minute {
		t.Errorf("autoscaler status: %+v (a measured local launch takes seconds, not the 90 s default)", a)
	}
	evs, _ := e.M.Events(ctx, ref, 0)
	var out, in bool
	for _, ev := range evs {
		out = out || ev.Kind == "autoscale" && strings.Contains(ev.Message, "scale out +") && strings.Contains(ev.Message, "waiting")
		in = in || ev.Kind == "autoscale" && strings.Contains(ev.Message, "scale in -") && strings.Contains(ev.Message, "idle for over 3s")
	}
	if !out || !in {
		t.Errorf("events lack a scale-out with its reason (%v) or a scale-in (%v):\n%+v", out, in, evs)
	}
}
