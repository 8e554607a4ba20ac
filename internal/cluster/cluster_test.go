package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/cluster/clustertest"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

func TestCreateSubmitDestroy(t *testing.T) {
	e := clustertest.NewEnv(t, sparktest.Home(t, "3.5.3"))
	ctx := context.Background()
	c := clustertest.Spec(t, "name: flow\nworkers: {count: 2, cores: 2, memory: 2g}\n")
	t.Cleanup(func() { e.M.Destroy(context.Background(), cluster.Ref{Name: "flow"}) })
	st, err := e.M.Create(ctx, c, cluster.CreateOptions{})
	if err != nil {
		t.Fatalf("%v\n%s", err, e.Rec)
	}
	if st.Agent.AliveWorkers() != 2 || st.Agent.Cores != 4 || st.State != cluster.StateRunning {
		t.Errorf("after create: %+v", st.Agent)
	}
	for _, want := range []string{"done Spark 3.5.3 at", "done master started (spark://127.0.0.1:", "done 2 worker(s) registered (4 cores, 4g)"} {
		if !strings.Contains(e.Rec.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, e.Rec)
		}
	}
	if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); !errors.As(err, new(*provider.ExistsError)) {
		t.Errorf("second create: %v", err)
	}
	ref := cluster.Ref{Name: "flow"}

	// A JVM job in cluster mode, with its driver's output streamed.
	jar := clustertest.App(t, "etl.jar", `work=1 print="rows: 42"`)
	job, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: jar, Class: "com.example.Etl", Args: []string{"2026-11-21"}})
	if err != nil {
		t.Fatal(err)
	}
	if job.DeployMode != spark.ClusterMode || job.Name != "Etl" {
		t.Errorf("job: %+v", job)
	}
	var out bytes.Buffer
	var states []string
	final, err := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{Stdout: &out, OnChange: func(j state.Job) { states = append(states, j.State) }})
	if err != nil {
		t.Fatal(err)
	}
	if final.State != state.JobFinished || final.DriverID == "" || final.AppID == "" || !strings.Contains(out.String(), "rows: 42") {
		t.Errorf("final %+v, output %q", final, out.String())
	}
	if states[len(states)-1] != state.JobFinished {
		t.Errorf("states seen: %v", states)
	}

	// A Python job runs in client mode on the master; its failure carries its exit status.
	py := clustertest.App(t, "fail.py", "work=0.2 exit=3")
	job, err = e.M.Submit(ctx, ref, cluster.JobSpec{Application: py})
	if err != nil {
		t.Fatal(err)
	}
	final, err = e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if final.DeployMode != spark.ClientMode || final.State != state.JobFailed || final.ExitCode == nil || *final.ExitCode == 0 || final.Message == "" {
		t.Errorf("python job: %+v", final)
	}

	// Bad submissions are refused with the reason.
	for _, js := range []cluster.JobSpec{
		{Application: "/nonexistent/app.py"},
		{Application: jar, Class: "X", Conf: map[string]string{"spark.master": "local"}},
		{Application: "ftp://example/app.jar", Class: "X"},
	} {
		if _, err := e.M.Submit(ctx, ref, js); err == nil {
			t.Errorf("submit %+v succeeded", js)
		}
	}

	if err := e.M.Destroy(ctx, ref); err != nil {
		t.Fatal(err)
	}
	e.NothingLeft(t, "flow")
	// The history outlives the cluster.
	jobs, err := e.M.Jobs(ctx, ref, 0)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("jobs after destroy: %v %v", jobs, err)
	}
	if _, err := e.M.Status(ctx, ref); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("status after destroy: %v", err)
	}
	var buf bytes.Buffer
	if err := e.M.Logs(ctx, ref, jobs[0].ID, agentapi.Stdout, false, &buf); err == nil || !strings.Contains(err.Error(), "went with it") {
		t.Errorf("logs after destroy: %v", err)
	}
	if err := e.M.Destroy(ctx, ref); err != nil {
		t.Errorf("destroy is idempotent: %v", err)
	}
}

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

func TestIdleClusterDestroysItself(t *testing.T) {
	e := clustertest.NewEnv(t, sparktest.Home(t, "3.5.3"))
	ctx := context.Background()
	c := clustertest.Spec(t, "name: idle\nworkers: {count: 1}\nlifetime: {idleTimeout: 3s}\n")
	t.Cleanup(func() { e.M.Destroy(context.Background(), cluster.Ref{Name: "idle"}) })
	if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A job keeps it busy; the idle clock starts when the job ends.
	job, err := e.M.Submit(ctx, cluster.Ref{Name: "idle"}, cluster.JobSpec{Application: clustertest.App(t, "slow.py", "duration=4s")})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testutil.Eventually(t, time.Minute, "cluster gone", func() error {
		if _, err := e.Prov.Get(ctx, "idle"); !errors.Is(err, provider.ErrNotFound) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	if took := time.Since(start); took < 6*time.Second {
		t.Errorf("destroyed after %s: the 4s job and the 3s idle timeout should have kept it longer", took)
	}
	e.NothingLeft(t, "idle")
	j, err := e.Store.GetJob(ctx, job.ID)
	if err != nil || j.State != state.JobFinished {
		t.Errorf("the job ran to its end: %+v %v", j, err)
	}
	evs, _ := e.Store.ListEvents(ctx, "idle", 0)
	last := evs[len(evs)-1]
	if !strings.Contains(last.Message, "cluster destroyed by its agent: it ran no job for lifetime.idleTimeout (3s)") {
		t.Errorf("last event: %+v", last)
	}
	_, err = e.M.Status(ctx, cluster.Ref{Name: "idle"})
	var nf *cluster.NotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("status of a self-destroyed cluster: %v", err)
	}
}

func TestMaxAgeEndsRunningJobs(t *testing.T) {
	e := clustertest.NewEnv(t, sparktest.Home(t, "3.5.3"))
	ctx := context.Background()
	c := clustertest.Spec(t, "name: aged\nworkers: {count: 1}\nlifetime: {maxAge: 5s}\n")
	t.Cleanup(func() { e.M.Destroy(context.Background(), cluster.Ref{Name: "aged"}) })
	if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	job, err := e.M.Submit(ctx, cluster.Ref{Name: "aged"}, cluster.JobSpec{Application: clustertest.App(t, "forever.py", "duration=10m")})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, "cluster gone", func() error {
		if _, err := e.Prov.Get(ctx, "aged"); !errors.Is(err, provider.ErrNotFound) {
			return errors.New("still there")
		}
		return nil
	})
	e.NothingLeft(t, "aged")
	j, _ := e.Store.GetJob(ctx, job.ID)
	if j.State != state.JobKilled || !strings.Contains(j.Message, "lifetime.maxAge") {
		t.Errorf("job: %+v", j)
	}
}

func TestGitSubmission(t *testing.T) {
	repo := t.TempDir()
	os.MkdirAll(filepath.Join(repo, "jobs"), 0o755)
	os.WriteFile(filepath.Join(repo, "jobs", "daily.py"), []byte("# standin: work=0.2 print=\"from git\"\n"), 0o644)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "x"}, {"tag", "v1"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	e := clustertest.NewEnv(t, sparktest.Home(t, "3.5.3"))
	ctx := context.Background()
	t.Cleanup(func() { e.M.Destroy(context.Background(), cluster.Ref{Name: "gitjob"}) })
	if _, err := e.M.Create(ctx, clustertest.Spec(t, "name: gitjob\nworkers: {count: 1}\n"), cluster.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ref := cluster.Ref{Name: "gitjob"}
	job, err := e.M.Submit(ctx, ref, cluster.JobSpec{Git: &agentapi.Git{URL: "file://" + repo, Ref: "v1", Path: "jobs/daily.py"}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	final, err := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{Stdout: &out})
	if err != nil || final.State != state.JobFinished || !strings.Contains(out.String(), "from git") {
		t.Fatalf("%+v %v %q", final, err, out.String())
	}
	job, _ = e.M.Submit(ctx, ref, cluster.JobSpec{Git: &agentapi.Git{URL: "file://" + repo, Path: "missing.py"}})
	final, _ = e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{})
	if final.State != state.JobFailed || !strings.Contains(final.Message, "missing.py is not in") {
		t.Errorf("missing file: %+v", final)
	}
}

func TestRESTSubmission(t *testing.T) {
	e := clustertest.NewEnv(t, sparktest.Home(t, "3.5.3"))
	ctx := context.Background()
	t.Cleanup(func() { e.M.Destroy(context.Background(), cluster.Ref{Name: "rest"}) })
	c := clustertest.Spec(t, "name: rest\nworkers: {count: 1}\nspark: {authenticate: false, submit: rest}\n")
	if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ref := cluster.Ref{Name: "rest"}
	jar := clustertest.App(t, "app.jar", `work=0.5 print="via REST"`)
	job, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: jar, Class: "com.example.App"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	final, err := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{Stdout: &out})
	if err != nil || final.State != state.JobFinished || final.DriverID == "" || !strings.Contains(out.String(), "via REST") {
		t.Fatalf("%+v %v %q", final, err, out.String())
	}
	long, _ := e.M.Submit(ctx, ref, cluster.JobSpec{Application: clustertest.App(t, "long.jar", "duration=10m"), Class: "com.example.Long"})
	testutil.Eventually(t, time.Minute, "running", func() error {
		j, err := e.M.Job(ctx, ref, long.ID)
		if err != nil || j.State != state.JobRunning {
			return fmt.Errorf("%v %v", j, err)
		}
		return nil
	})
	if _, err := e.M.Kill(ctx, ref, long.ID); err != nil {
		t.Fatal(err)
	}
	final, _ = e.M.Wait(ctx, ref, long.ID, cluster.WaitOptions{})
	if final.State != state.JobKilled {
		t.Errorf("kill through REST: %+v", final)
	}
}

func TestRun(t *testing.T) {
	e := clustertest.NewEnv(t, sparktest.Home(t, "3.5.3"))
	ctx := context.Background()
	logs := t.TempDir()
	var out bytes.Buffer
	job, err := e.M.Run(ctx, clustertest.Spec(t, "name: once\nworkers: {count: 1}\n"), cluster.JobSpec{Application: clustertest.App(t, "pi.py", `work=0.2 print="pi!"`)},
		cluster.RunOptions{SaveLogs: logs, Wait: cluster.WaitOptions{Stdout: &out}})
	if err != nil || job.State != state.JobFinished || !strings.Contains(out.String(), "pi!") {
		t.Fatalf("%+v %v %q", job, err, out.String())
	}
	saved, _ := os.ReadFile(filepath.Join(logs, job.ID+".stdout"))
	if !strings.Contains(string(saved), "pi!") {
		t.Errorf("saved stdout: %q", saved)
	}
	e.NothingLeft(t, "once")

	job, err = e.M.Run(ctx, clustertest.Spec(t, "name: twice\nworkers: {count: 1}\n"), cluster.JobSpec{Application: clustertest.App(t, "bad.py", "exit=2")}, cluster.RunOptions{})
	if err != nil || job.State != state.JobFailed {
		t.Errorf("failing run: %+v %v", job, err)
	}
	e.NothingLeft(t, "twice")

	// A job that cannot be submitted makes no cluster at all.
	if _, err := e.M.Run(ctx, clustertest.Spec(t, "name: never\n"), cluster.JobSpec{Application: "/no/such.py"}, cluster.RunOptions{}); err == nil {
		t.Error("run with a missing application succeeded")
	}
	if _, err := e.Prov.Get(ctx, "never"); !errors.Is(err, provider.ErrNotFound) {
		t.Error("a cluster was made for a job that could not be submitted")
	}
}

func TestScale(t *testing.T) {
	e := clustertest.NewEnv(t, sparktest.Home(t, "3.5.3"))
	ctx := context.Background()
	t.Cleanup(func() { e.M.Destroy(context.Background(), cluster.Ref{Name: "scale"}) })
	if _, err := e.M.Create(ctx, clustertest.Spec(t, "name: scale\nworkers: {count: 1, min: 1, max: 3}\n"), cluster.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ref := cluster.Ref{Name: "scale"}
	added, err := e.M.Add(ctx, ref, 2)
	if err != nil || len(added) != 2 {
		t.Fatalf("add: %v %v", added, err)
	}
	if _, err := e.M.Add(ctx, ref, 1); err == nil || !strings.Contains(err.Error(), "above workers.max 3") {
		t.Errorf("add beyond max: %v", err)
	}
	// A busy worker is not chosen; one that runs a driver is refused by name.
	// One core for its executor: Spark would otherwise give the application every free core.
	job, _ := e.M.Submit(ctx, ref, cluster.JobSpec{Application: clustertest.App(t, "busy.jar", "duration=10m"), Class: "Busy",
		Conf: map[string]string{"spark.cores.max": "1"}})
	var busy string
	testutil.Eventually(t, time.Minute, "driver placed", func() error {
		st, err := e.M.Status(ctx, ref)
		if err != nil {
			return err
		}
		for _, w := range st.Agent.Workers {
			if w.Drivers > 0 {
				busy = w.NodeID
				return nil
			}
		}
		return errors.New("no driver yet")
	})
	if _, err := e.M.Remove(ctx, ref, agentapi.RemoveWorkersRequest{Nodes: []string{busy}}); err == nil || !strings.Contains(err.Error(), "runs 1 driver") {
		t.Errorf("removing the driver's worker: %v", err)
	}
	removed, err := e.M.Remove(ctx, ref, agentapi.RemoveWorkersRequest{Count: 1})
	if err != nil || len(removed) != 1 || removed[0] == busy {
		t.Fatalf("remove: %v %v (busy %s)", removed, err, busy)
	}
	st, _ := e.M.Status(ctx, ref)
	if st.Agent.AliveWorkers() != 2 || len(st.Nodes) != 3 {
		t.Errorf("after remove: %d alive, nodes %+v", st.Agent.AliveWorkers(), st.Nodes)
	}
	e.M.Kill(ctx, ref, job.ID)
	if _, err := e.M.Remove(ctx, ref, agentapi.RemoveWorkersRequest{Count: 2, Force: true}); err == nil || !strings.Contains(err.Error(), "below workers.min 1") {
		t.Errorf("remove below min: %v", err)
	}
}

// The spark policy on a local cluster: a burst of jobs makes it grow, idleness makes it shrink
// back to workers.min, and no job fails.
func TestAutoscaleSparkPolicy(t *testing.T) {
	e := clustertest.NewEnv(t, sparktest.Home(t, "3.5.3"))
	autoscaleBurst(t, e, "spark.dynamicAllocation.executorIdleTimeout: 2s", 4, func(i int) cluster.JobSpec {
		return cluster.JobSpec{Application: clustertest.App(t, fmt.Sprintf("burst%d.py", i), "tasks=12 task=1s")}
	})
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
