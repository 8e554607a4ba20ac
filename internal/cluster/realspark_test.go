package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/cluster/clustertest"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/state"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// The examples' classes and what they print (examples/jvm, examples/pi.py).
const (
	wordCount = sparktest.WordCount
	busy      = "dev.sparkplane.examples.Busy"
)

// realEnv is what one Spark line's tests share: its home, the JVM example built for it, and the
// repository's Python example.
type realEnv struct {
	line, home, jar, pi string
}

// newEnv is a manager over the local provider and this line's Spark; real JVMs start in seconds,
// or in minutes on a loaded 2-core machine.
func (r realEnv) newEnv(t *testing.T) *clustertest.Env {
	e := clustertest.NewEnv(t, r.home)
	e.M.ReadyTimeout = 4 * time.Minute
	return e
}

// forEachLine runs f once for every tested Spark line, each as a subtest named after it: for what
// Spark's version changes (its submission protocols, its JSON, its event logs).
func forEachLine(t *testing.T, f func(t *testing.T, r realEnv)) {
	for _, line := range sparktest.Lines() {
		onLine(t, line, f)
	}
}

// onLine runs f on one Spark line, as a subtest named after it: for what sparkplane does the same
// whatever Spark's version, which the tests of forEachLine already hold to each line.
func onLine(t *testing.T, line string, f func(t *testing.T, r realEnv)) {
	t.Run("Spark"+line, func(t *testing.T) {
		r := realEnv{line: line, home: sparktest.RealHome(t, line)}
		r.jar = sparktest.JVMExample(t, line)
		r.pi = filepath.Join(testutil.RepoRoot(t), "examples", "pi.py")
		f(t, r)
	})
}

// TestRealSparkCluster takes one cluster per Spark line through what users do with it: create,
// a JVM job in cluster mode and a Python one in client mode with their output checked, a job from
// git, logs, cancel, add, remove with Spark's decommissioning, a worker's agent killed with
// SIGKILL and replaced, and destroy, after which no process, port or file of it remains.
func TestRealSparkCluster(t *testing.T) {
	forEachLine(t, func(t *testing.T, r realEnv) {
		e := r.newEnv(t)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		ref := cluster.Ref{Name: "real"}
		c := clustertest.Spec(t, "name: real\nworkers: {count: 1, cores: 2, memory: 3g, min: 1, max: 4}\n"+
			"spark:\n  conf: {spark.executor.memory: 512m, spark.driver.memory: 512m}\n")
		t.Cleanup(func() { e.M.Destroy(context.Background(), ref) })
		st, err := e.M.Create(ctx, c, cluster.CreateOptions{})
		if err != nil {
			t.Fatalf("%v\n%s", err, e.Rec)
		}
		d, _ := spark.OpenHome(r.home)
		if st.Agent.AliveWorkers() != 1 || st.Agent.Cores != 2 || st.State != cluster.StateRunning ||
			st.Agent.Master.Version != d.Version || st.Agent.Master.State != "ALIVE" {
			t.Fatalf("after create: %s %+v", st.State, st.Agent)
		}
		for _, want := range []string{"done Spark " + d.Version + " at", "done master started (spark://127.0.0.1:", "done 1 worker(s) registered (2 cores, 3g)"} {
			if !strings.Contains(e.Rec.String(), want) {
				t.Errorf("progress lacks %q:\n%s", want, e.Rec)
			}
		}
		if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); !errors.As(err, new(*provider.ExistsError)) {
			t.Errorf("second create: %v", err)
		}
		// Spark 4 starts its unauthenticated REST submission server unless told not to.
		masterLog := filepath.Join(e.Root, "clusters", "real", "nodes", "master", "logs", "spark-master.out")
		if b, _ := os.ReadFile(masterLog); strings.Contains(string(b), "Started REST server") || !strings.Contains(string(b), "Starting Spark master") {
			t.Errorf("the master runs a REST submission server it was not asked for:\n%s", b)
		}

		t.Run("JVM job in cluster mode", func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "counts")
			in, want, printed := sparktest.WordsInput(t, out)
			job, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: r.jar, Class: wordCount, Args: []string{in, out}})
			if err != nil {
				t.Fatal(err)
			}
			if job.DeployMode != spark.ClusterMode || job.Name != "WordCount" {
				t.Errorf("job: %+v", job)
			}
			var stdout bytes.Buffer
			var states []string
			final, err := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{Stdout: &stdout, OnChange: func(j state.Job) { states = append(states, j.State) }})
			if err != nil || final.State != state.JobFinished || final.DeployMode != spark.ClusterMode || final.DriverID == "" || final.AppID == "" {
				t.Fatalf("%+v %v\n%s", final, err, stdout.String())
			}
			if len(states) == 0 || states[len(states)-1] != state.JobFinished {
				t.Errorf("states seen: %v", states)
			}
			if !strings.Contains(stdout.String(), printed) {
				t.Errorf("the driver's output lacks %q:\n%s", printed, stdout.String())
			}
			if got := sparktest.ReadPart(t, out); got != want {
				t.Errorf("counts:\n%s\nwant:\n%s", got, want)
			}
			var logs bytes.Buffer
			if err := e.M.Logs(ctx, ref, job.ID, agentapi.Stderr, false, &logs); err != nil || !strings.Contains(logs.String(), "SparkContext") {
				t.Errorf("the driver's stderr (%v) shows no SparkContext:\n%s", err, testutil.TailString(logs.String(), 10))
			}
		})

		t.Run("Python job in client mode", func(t *testing.T) {
			job, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: r.pi, Args: []string{"4"}})
			if err != nil {
				t.Fatal(err)
			}
			var stdout bytes.Buffer
			final, err := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{Stdout: &stdout})
			if err != nil || final.State != state.JobFinished || final.DeployMode != spark.ClientMode || final.AppID == "" || !strings.Contains(stdout.String(), "Pi is roughly 3.1") {
				var logs bytes.Buffer
				e.M.Logs(ctx, ref, job.ID, agentapi.Stderr, false, &logs)
				t.Fatalf("%+v %v\nstdout:\n%s\nstderr:\n%s", final, err, stdout.String(), testutil.TailString(logs.String(), 30))
			}
		})

		t.Run("failing Python job", func(t *testing.T) {
			// pi.py takes a number of partitions: int("many") raises, and the exit status shows.
			job, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: r.pi, Args: []string{"many"}})
			if err != nil {
				t.Fatal(err)
			}
			final, err := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{})
			if err != nil || final.DeployMode != spark.ClientMode || final.State != state.JobFailed || final.ExitCode == nil || *final.ExitCode == 0 || final.Message == "" {
				t.Errorf("python job: %+v %v", final, err)
			}
		})

		t.Run("bad submissions are refused", func(t *testing.T) {
			for _, js := range []cluster.JobSpec{
				{Application: "/nonexistent/app.py"},
				{Application: r.jar, Class: "X", Conf: map[string]string{"spark.master": "local"}},
				{Application: "ftp://example/app.jar", Class: "X"},
			} {
				if _, err := e.M.Submit(ctx, ref, js); err == nil {
					t.Errorf("submit %+v succeeded", js)
				}
			}
		})

		// What the agent does alone, the same whatever Spark's version, runs on one line:
		// a job fetched from git (newest), a killed agent replaced (oldest).
		versionFree := func(line, name string, f func(t *testing.T)) {
			if r.line == line {
				t.Run(name, f)
			}
		}

		versionFree(sparktest.Newest(), "job from git", func(t *testing.T) {
			repo := t.TempDir()
			os.MkdirAll(filepath.Join(repo, "jobs"), 0o755)
			pi, _ := os.ReadFile(r.pi)
			os.WriteFile(filepath.Join(repo, "jobs", "pi.py"), pi, 0o644)
			for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "x"}, {"tag", "v1"}} {
				if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
					t.Fatalf("git %v: %v %s", args, err, out)
				}
			}
			job, err := e.M.Submit(ctx, ref, cluster.JobSpec{Git: &agentapi.Git{URL: "file://" + repo, Ref: "v1", Path: "jobs/pi.py"}, Args: []string{"2"}})
			if err != nil {
				t.Fatal(err)
			}
			var stdout bytes.Buffer
			final, err := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{Stdout: &stdout})
			if err != nil || final.State != state.JobFinished || !strings.Contains(stdout.String(), "Pi is roughly") {
				t.Fatalf("%+v %v %q", final, err, stdout.String())
			}
			job, err = e.M.Submit(ctx, ref, cluster.JobSpec{Git: &agentapi.Git{URL: "file://" + repo, Path: "missing.py"}})
			if err != nil {
				t.Fatal(err)
			}
			if final, _ = e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{}); final.State != state.JobFailed || !strings.Contains(final.Message, "missing.py is not in") {
				t.Errorf("a path the repository lacks: %+v", final)
			}
		})

		t.Run("cancel", func(t *testing.T) {
			long, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: r.jar, Class: busy, Args: []string{"1", "600"}})
			if err != nil {
				t.Fatal(err)
			}
			waitState(t, ctx, e, ref, long.ID, state.JobRunning)
			if _, err := e.M.Kill(ctx, ref, long.ID); err != nil {
				t.Fatal(err)
			}
			if final, _ := e.M.Wait(ctx, ref, long.ID, cluster.WaitOptions{}); final.State != state.JobKilled {
				t.Errorf("cancelled JVM job: %+v", final)
			}
		})

		t.Run("failing job", func(t *testing.T) {
			job, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: r.jar, Class: wordCount, Args: []string{"/nonexistent/input", filepath.Join(t.TempDir(), "o")}})
			if err != nil {
				t.Fatal(err)
			}
			if final, _ := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{}); final.State != state.JobFailed {
				t.Errorf("a job whose input is missing: %+v", final)
			}
		})

		t.Run("add, remove with decommission", func(t *testing.T) {
			added, err := e.M.Add(ctx, ref, 2)
			if err != nil || len(added) != 2 {
				t.Fatalf("add: %v %v", added, err)
			}
			st := waitAliveWorkers(t, ctx, e, ref, 3)
			if _, err := e.M.Add(ctx, ref, 2); err == nil || !strings.Contains(err.Error(), "above workers.max 4") {
				t.Errorf("add beyond max: %v", err)
			}
			// A worker that runs a driver is refused by name, and not chosen by count. One core
			// for its executor: Spark would otherwise give the application every free core.
			long, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: r.jar, Class: busy, Args: []string{"1", "600"}, Conf: map[string]string{"spark.cores.max": "1"}})
			if err != nil {
				t.Fatal(err)
			}
			waitState(t, ctx, e, ref, long.ID, state.JobRunning)
			var driverOn string
			testutil.Eventually(t, time.Minute, "the driver's worker is known", func() error {
				st, err := e.M.Status(ctx, ref)
				if err != nil {
					return err
				}
				for _, w := range st.Agent.Workers {
					if w.Drivers > 0 {
						driverOn = w.NodeID
						return nil
					}
				}
				return errors.New("no worker runs a driver yet")
			})
			if _, err := e.M.Remove(ctx, ref, agentapi.RemoveWorkersRequest{Nodes: []string{driverOn}}); err == nil || !strings.Contains(err.Error(), "runs 1 driver") {
				t.Errorf("removing the driver's worker: %v", err)
			}
			removed, err := e.M.Remove(ctx, ref, agentapi.RemoveWorkersRequest{Count: 1})
			if err != nil || len(removed) != 1 || removed[0] == driverOn {
				t.Fatalf("remove: %v %v (the driver is on %s)", removed, err, driverOn)
			}
			if _, err := e.M.Kill(ctx, ref, long.ID); err != nil {
				t.Fatal(err)
			}
			var sparkID string
			for _, w := range st.Agent.Workers {
				if w.NodeID == removed[0] {
					sparkID = w.SparkID
				}
			}
			// Spark's master decommissioned it (and, once its agent stopped it, dropped it: DEAD).
			b, _ := os.ReadFile(masterLog)
			if !strings.Contains(string(b), "Decommissioning worker "+sparkID) {
				t.Errorf("the master's log does not show %s decommissioned:\n%s", sparkID, testutil.Tail(masterLog, 20))
			}
			ms, err := (&spark.UI{BaseURL: st.Agent.Master.UI}).MasterState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range ms.Workers {
				if w.ID == sparkID && w.State == spark.WorkerAlive {
					t.Errorf("Spark still has %s ALIVE", sparkID)
				}
			}
			waitAliveWorkers(t, ctx, e, ref, 2)
			if _, err := e.M.Remove(ctx, ref, agentapi.RemoveWorkersRequest{Count: 2, Force: true}); err == nil || !strings.Contains(err.Error(), "below workers.min 1") {
				t.Errorf("remove below min: %v", err)
			}
		})

		versionFree(sparktest.Oldest(), "a worker's agent killed is replaced", func(t *testing.T) {
			st, _ := e.M.Status(ctx, ref)
			victim := st.Agent.Workers[0].NodeID
			for _, w := range st.Agent.Workers {
				if w.State == "ALIVE" {
					victim = w.NodeID
				}
			}
			b, err := os.ReadFile(filepath.Join(e.Root, "clusters", "real", "nodes", victim, "agent.pid"))
			if err != nil {
				t.Fatal(err)
			}
			var pid int
			fmt.Sscan(string(b), &pid)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 3*time.Minute, victim+" replaced", func() error {
				st, err := e.M.Status(ctx, ref)
				if err != nil {
					return err
				}
				var ids []string
				for _, w := range st.Agent.Workers {
					if w.State == "ALIVE" {
						ids = append(ids, w.NodeID)
					}
				}
				if len(ids) != 2 || slices.Contains(ids, victim) {
					return fmt.Errorf("alive workers %v", ids)
				}
				return nil
			})
			// The replacement runs jobs.
			job, _ := e.M.Submit(ctx, ref, cluster.JobSpec{Application: r.jar, Class: busy, Args: []string{"4", "1"}})
			if final, err := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{}); err != nil || final.State != state.JobFinished {
				t.Errorf("a job after the replacement: %+v %v", final, err)
			}
		})

		// Every port the cluster's Spark and agents listen on, to check that destroy closes them.
		st, err = e.M.Status(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		addrs := []string{hostPort(st.Agent.Master.URL), hostPort(st.Agent.Master.UI)}
		for _, w := range st.Agent.Workers {
			addrs = append(addrs, hostPort(w.SparkUI), hostPort(w.Agent))
		}
		for _, n := range st.Nodes {
			addrs = append(addrs, hostPort(n.Agent))
		}
		before, err := e.M.Jobs(ctx, ref, 0)
		if err != nil || len(before) < 7 {
			t.Fatalf("jobs before destroy: %d %v", len(before), err)
		}
		if err := e.M.Destroy(ctx, ref); err != nil {
			t.Fatal(err)
		}
		e.NothingLeft(t, "real")
		// The jobs' history outlives the cluster; their logs went with it.
		jobs, err := e.M.Jobs(ctx, ref, 0)
		if err != nil || len(jobs) != len(before) {
			t.Errorf("jobs after destroy: %d of %d %v", len(jobs), len(before), err)
		}
		if _, err := e.M.Status(ctx, ref); !errors.Is(err, provider.ErrNotFound) {
			t.Errorf("status after destroy: %v", err)
		}
		if len(jobs) > 0 {
			var buf bytes.Buffer
			if err := e.M.Logs(ctx, ref, jobs[0].ID, agentapi.Stdout, false, &buf); err == nil || !strings.Contains(err.Error(), "went with it") {
				t.Errorf("logs after destroy: %v", err)
			}
		}
		if err := e.M.Destroy(ctx, ref); err != nil {
			t.Errorf("destroy is idempotent: %v", err)
		}
		for _, a := range addrs {
			if a == "" {
				continue
			}
			if conn, err := net.DialTimeout("tcp", a, time.Second); err == nil {
				conn.Close()
				t.Errorf("%s still accepts connections after destroy", a)
			}
		}
	})
}

// TestRealSparkCreateEightWorkers: eight real Spark workers register, and destroy removes them.
func TestRealSparkCreateEightWorkers(t *testing.T) {
	onLine(t, sparktest.Oldest(), func(t *testing.T, r realEnv) {
		e := r.newEnv(t)
		ctx := context.Background()
		ref := cluster.Ref{Name: "eight"}
		t.Cleanup(func() { e.M.Destroy(context.Background(), ref) })
		start := time.Now()
		st, err := e.M.Create(ctx, clustertest.Spec(t, "name: eight\nworkers: {count: 8, cores: 1, memory: 1g}\n"), cluster.CreateOptions{})
		if err != nil {
			t.Fatalf("%v\n%s", err, e.Rec)
		}
		t.Logf("Spark %s: 8 workers registered %.1fs after create began", r.line, time.Since(start).Seconds())
		if st.Agent.AliveWorkers() != 8 || st.Agent.Cores != 8 {
			t.Fatalf("after create: %+v", st.Agent)
		}
		if err := e.M.Destroy(ctx, ref); err != nil {
			t.Fatal(err)
		}
		e.NothingLeft(t, "eight")
	})
}

// TestRealSparkLifetimes: an idle cluster and an aged one remove themselves, on real Spark.
func TestRealSparkLifetimes(t *testing.T) {
	t.Parallel() // it mostly waits for its clusters' clocks: beside TestRealSparkHistory
	// The clocks are minutes long: both run from the agent's start, so a create slowed by a
	// loaded machine (over a minute, in CI) must end well within them.
	onLine(t, sparktest.Newest(), func(t *testing.T, r realEnv) {
		e := r.newEnv(t)
		ctx := context.Background()
		t.Cleanup(func() {
			e.M.Destroy(context.Background(), cluster.Ref{Name: "idle"})
			e.M.Destroy(context.Background(), cluster.Ref{Name: "aged"})
		})
		if _, err := e.M.Create(ctx, clustertest.Spec(t, "name: aged\nworkers: {count: 1}\nlifetime: {maxAge: 3m}\n"), cluster.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		long, err := e.M.Submit(ctx, cluster.Ref{Name: "aged"}, cluster.JobSpec{Application: r.jar, Class: busy, Args: []string{"1", "600"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.M.Create(ctx, clustertest.Spec(t, "name: idle\nworkers: {count: 1}\nlifetime: {idleTimeout: 2m}\n"), cluster.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// A job keeps the idle one busy; the idle clock starts when it ends.
		short, err := e.M.Submit(ctx, cluster.Ref{Name: "idle"}, cluster.JobSpec{Application: r.jar, Class: busy, Args: []string{"1", "5"}})
		if err != nil {
			t.Fatal(err)
		}
		submitted := time.Now()
		for _, name := range []string{"idle", "aged"} {
			testutil.Eventually(t, 6*time.Minute, name+" gone", func() error {
				if _, err := e.Prov.Get(ctx, name); !errors.Is(err, provider.ErrNotFound) {
					return fmt.Errorf("still there (%v)", err)
				}
				return nil
			})
			if name == "idle" {
				if took := time.Since(submitted); took < 125*time.Second {
					t.Errorf("destroyed %s after the job's submission: its 5s job and its 2m idle timeout should have kept it longer", took)
				}
			}
			e.NothingLeft(t, name)
		}
		if j, err := e.Store.GetJob(ctx, short.ID); err != nil || j.State != state.JobFinished {
			t.Errorf("the idle cluster's job ran to its end: %+v %v", j, err)
		}
		evs, _ := e.Store.ListEvents(ctx, "idle", 0)
		if len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Message, "cluster destroyed by its agent: it ran no job for lifetime.idleTimeout (2m0s)") {
			t.Errorf("the idle cluster's events: %+v", evs)
		}
		if _, err := e.M.Status(ctx, cluster.Ref{Name: "idle"}); !errors.As(err, new(*cluster.NotFoundError)) {
			t.Errorf("status of a self-destroyed cluster: %v", err)
		}
		if j, _ := e.Store.GetJob(ctx, long.ID); j.State != state.JobKilled || !strings.Contains(j.Message, "lifetime.maxAge") {
			t.Errorf("the aged cluster's job: %+v", j)
		}
	})
}

// TestRealSparkREST: a cluster with Spark's REST submission server takes a JVM job and its cancel
// through it.
func TestRealSparkREST(t *testing.T) {
	forEachLine(t, func(t *testing.T, r realEnv) {
		e := r.newEnv(t)
		ctx := context.Background()
		ref := cluster.Ref{Name: "rest"}
		t.Cleanup(func() { e.M.Destroy(context.Background(), ref) })
		c := clustertest.Spec(t, "name: rest\nworkers: {count: 1, cores: 2, memory: 2g}\nspark: {authenticate: false, submit: rest}\n")
		st, err := e.M.Create(ctx, c, cluster.CreateOptions{})
		if err != nil {
			t.Fatalf("%v\n%s", err, e.Rec)
		}
		if st.Agent.Master.REST == "" {
			t.Fatalf("the master's REST server is not known: %+v", st.Agent.Master)
		}
		out := filepath.Join(t.TempDir(), "counts")
		in, want, _ := sparktest.WordsInput(t, out)
		job, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: r.jar, Class: wordCount, Args: []string{in, out}})
		if err != nil {
			t.Fatal(err)
		}
		var stdout bytes.Buffer
		final, err := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{Stdout: &stdout})
		if err != nil || final.State != state.JobFinished || final.DriverID == "" || sparktest.ReadPart(t, out) != want {
			t.Fatalf("%+v %v %q", final, err, stdout.String())
		}
		long, _ := e.M.Submit(ctx, ref, cluster.JobSpec{Application: r.jar, Class: busy, Args: []string{"1", "600"}})
		waitState(t, ctx, e, ref, long.ID, state.JobRunning)
		if _, err := e.M.Kill(ctx, ref, long.ID); err != nil {
			t.Fatal(err)
		}
		if final, _ = e.M.Wait(ctx, ref, long.ID, cluster.WaitOptions{}); final.State != state.JobKilled {
			t.Errorf("kill through REST: %+v", final)
		}
		if err := e.M.Destroy(ctx, ref); err != nil {
			t.Fatal(err)
		}
		e.NothingLeft(t, "rest")
	})
}

// TestRealSparkRun: throw-away runs create a cluster, run the Python example (once to its end, once
// failing), and destroy it; a run whose job cannot be submitted makes no cluster.
func TestRealSparkRun(t *testing.T) {
	onLine(t, sparktest.Newest(), func(t *testing.T, r realEnv) {
		e := r.newEnv(t)
		ctx := context.Background()
		logs := t.TempDir()
		var stdout bytes.Buffer
		job, err := e.M.Run(ctx, clustertest.Spec(t, "name: once\nworkers: {count: 1, cores: 1}\n"), cluster.JobSpec{Application: r.pi, Args: []string{"2"}},
			cluster.RunOptions{SaveLogs: logs, Wait: cluster.WaitOptions{Stdout: &stdout}})
		if err != nil || job.State != state.JobFinished || !strings.Contains(stdout.String(), "Pi is roughly") {
			t.Fatalf("run: %+v %v %q", job, err, stdout.String())
		}
		if saved, _ := os.ReadFile(filepath.Join(logs, job.ID+".stdout")); !strings.Contains(string(saved), "Pi is roughly") {
			t.Errorf("saved stdout: %q", saved)
		}
		e.NothingLeft(t, "once")
		job, err = e.M.Run(ctx, clustertest.Spec(t, "name: twice\nworkers: {count: 1, cores: 1}\n"), cluster.JobSpec{Application: r.pi, Args: []string{"many"}}, cluster.RunOptions{})
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
	})
}

func waitState(t *testing.T, ctx context.Context, e *clustertest.Env, ref cluster.Ref, id, want string) {
	t.Helper()
	testutil.Eventually(t, 2*time.Minute, "job "+id+" "+want, func() error {
		j, err := e.M.Job(ctx, ref, id)
		if err != nil {
			return err
		}
		if j.State != want {
			return fmt.Errorf("job is %s (%s)", j.State, j.Message)
		}
		return nil
	})
}

func waitAliveWorkers(t *testing.T, ctx context.Context, e *clustertest.Env, ref cluster.Ref, n int) *cluster.Status {
	t.Helper()
	var st *cluster.Status
	testutil.Eventually(t, 2*time.Minute, fmt.Sprintf("%d workers alive", n), func() error {
		var err error
		if st, err = e.M.Status(ctx, ref); err != nil {
			return err
		}
		if got := st.Agent.AliveWorkers(); got != n || len(st.Nodes) != n+1 {
			return fmt.Errorf("%d alive, %d nodes", got, len(st.Nodes))
		}
		return nil
	})
	return st
}

// hostPort is the host:port of a spark:// or http:// URL, or "" for none.
func hostPort(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return ""
	}
	return p.Host
}

// TestRealSparkAutoscale: the spark policy on real applications with dynamic allocation. A burst
// of jobs makes the cluster grow, idleness shrinks it back to workers.min, and no job fails. On
// each line: the demand it reads is the drivers' /api/v1, which no other test reads.
func TestRealSparkAutoscale(t *testing.T) {
	forEachLine(t, func(t *testing.T, r realEnv) {
		e := r.newEnv(t)
		autoscaleBurst(t, e, `spark.dynamicAllocation.executorIdleTimeout: 3s, spark.executor.memory: 512m, spark.driver.memory: 512m, spark.executor.cores: "1"`, 3,
			func(int) cluster.JobSpec {
				return cluster.JobSpec{Application: r.jar, Class: busy, Args: []string{"16", "3"}}
			})
	})
}
