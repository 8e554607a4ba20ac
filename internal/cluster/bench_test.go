package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/cluster/clustertest"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

func benchEnv(b *testing.B) *clustertest.Env {
	return clustertest.NewEnv(b, sparktest.Home(b, "3.5.3"))
}

// BenchmarkCreate measures create until every worker is registered in Spark, with the stand-in;
// destroy is not timed.
func BenchmarkCreate(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			e := benchEnv(b)
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				c, err := spec.Default(spec.Options{DefaultName: fmt.Sprintf("bench-%d-%d", workers, i),
					Overrides: []spec.Override{{Path: []string{"workers", "count"}, Value: strconv.Itoa(workers), Flag: "bench"}}})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := e.M.Destroy(ctx, cluster.Ref{Name: c.Name}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// rssMiB reads a process's resident set size.
func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.Fields(rest)[0])
			return float64(kb) / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// BenchmarkIdleCluster reports the agents' memory at idle and how long status takes, through the
// sparkplane binary (what a user waits for) and through the library.
func BenchmarkIdleCluster(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	c, _ := spec.Default(spec.Options{DefaultName: "idle-bench"})
	if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.M.Destroy(context.Background(), cluster.Ref{Name: c.Name}) })
	time.Sleep(5 * time.Second) // let the agents settle into their idle loops
	st, err := e.M.Status(ctx, cluster.Ref{Name: c.Name})
	if err != nil {
		b.Fatal(err)
	}
	var master, worker float64
	for _, n := range st.Nodes {
		pid, _ := strconv.Atoi(strings.TrimPrefix(n.Detail, "pid "))
		rss, err := rssMiB(pid)
		if err != nil {
			b.Fatal(err)
		}
		if n.Role == "master" {
			master = rss
		} else {
			worker = max(worker, rss)
		}
	}
	bin := testutil.Build(b, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	b.Run("status-cli", func(b *testing.B) {
		b.ReportMetric(master, "master-agent-RSS-MiB")
		b.ReportMetric(worker, "worker-agent-RSS-MiB")
		for i := 0; i < b.N; i++ {
			cmd := exec.Command(bin, "status", c.Name, "-o", "json")
			cmd.Env = append(os.Environ(), "SPARKPLANE_HOME="+e.Root)
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := cmd.Run(); err != nil || !strings.Contains(out.String(), `"state": "running"`) {
				b.Fatalf("status: %v %s", err, out.String())
			}
		}
	})
	b.Run("status-library", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := e.M.Status(ctx, cluster.Ref{Name: c.Name}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRealSpark gives the closing figures on real Spark, per tested line: create until every
// worker is registered (1 and 8 workers; destroy not timed), the JVM example's submit → FINISHED
// round trip, and the memory at idle of the agents and of Spark's master and worker JVMs.
//
//	go test -run '^$' -bench RealSpark -benchtime 3x ./internal/cluster/
func BenchmarkRealSpark(b *testing.B) {
	for _, line := range sparktest.Lines() {
		b.Run("Spark"+line, func(b *testing.B) {
			home, jar := sparktest.RealHome(b, line), sparktest.JVMExample(b, line)
			e := clustertest.NewEnv(b, home)
			e.M.ReadyTimeout = 4 * time.Minute
			ctx := context.Background()
			for _, workers := range []int{1, 8} {
				b.Run(fmt.Sprintf("create/workers=%d", workers), func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						name := fmt.Sprintf("rb-%d-%d", workers, i)
						c := clustertest.Spec(b, fmt.Sprintf("name: %s\nworkers: {count: %d, cores: 1, memory: 1g}\n", name, workers))
						b.StartTimer()
						if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); err != nil {
							b.Fatal(err)
						}
						b.StopTimer()
						if err := e.M.Destroy(ctx, cluster.Ref{Name: name}); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			ref := cluster.Ref{Name: "rb-idle"}
			c := clustertest.Spec(b, "name: rb-idle\nworkers: {count: 2, cores: 2, memory: 2g}\nspark:\n  conf: {spark.executor.memory: 512m, spark.driver.memory: 512m}\n")
			if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { e.M.Destroy(context.Background(), ref) })
			b.Run("jvm-example-round-trip", func(b *testing.B) {
				in := filepath.Join(b.TempDir(), "input.txt")
				os.WriteFile(in, []byte("the quick brown fox\njumps over the lazy dog\n"), 0o644)
				for i := 0; i < b.N; i++ {
					out := filepath.Join(b.TempDir(), "counts")
					job, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: jar, Class: wordCount, Args: []string{in, out}})
					if err != nil {
						b.Fatal(err)
					}
					if j, err := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{}); err != nil || j.State != "FINISHED" {
						b.Fatalf("%+v %v", j, err)
					}
				}
			})
			b.Run("idle-rss", func(b *testing.B) {
				time.Sleep(10 * time.Second) // let the JVMs and agents settle after the jobs
				dir := filepath.Join(e.Root, "clusters", "rb-idle", "nodes")
				st, err := e.M.Status(ctx, ref)
				if err != nil {
					b.Fatal(err)
				}
				var agentMaster, agentWorker, jvmMaster, jvmWorker float64
				for _, n := range st.Nodes {
					pid, _ := strconv.Atoi(strings.TrimPrefix(n.Detail, "pid "))
					rss, err := rssMiB(pid)
					if err != nil {
						b.Fatal(err)
					}
					class := "org.apache.spark.deploy.worker.Worker"
					if n.Role == "master" {
						agentMaster, class = rss, "org.apache.spark.deploy.master.Master"
					} else {
						agentWorker = max(agentWorker, rss)
					}
					jvm := processRSS(b, filepath.Join(dir, n.ID), class)
					if n.Role == "master" {
						jvmMaster = jvm
					} else {
						jvmWorker = max(jvmWorker, jvm)
					}
				}
				b.ReportMetric(agentMaster, "master-agent-RSS-MiB")
				b.ReportMetric(agentWorker, "worker-agent-RSS-MiB")
				b.ReportMetric(jvmMaster, "master-JVM-RSS-MiB")
				b.ReportMetric(jvmWorker, "worker-JVM-RSS-MiB")
			})
		})
	}
}

// processRSS is the RSS of the one process whose command line names both dir and class.
func processRSS(b *testing.B, dir, class string) float64 {
	entries, _ := os.ReadDir("/proc")
	for _, en := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte(dir)) || !bytes.Contains(cmd, []byte(class)) {
			continue
		}
		pid, _ := strconv.Atoi(en.Name())
		if rss, err := rssMiB(pid); err == nil {
			return rss
		}
	}
	b.Fatalf("no %s process of %s", class, dir)
	return 0
}
