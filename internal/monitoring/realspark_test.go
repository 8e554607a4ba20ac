package monitoring_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/cluster/clustertest"
	"github.com/sparkplane/sparkplane/internal/monitoring"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/state"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// TestRealSparkMonitoring: sparkplane writes a Prometheus configuration that promtool accepts; a
// real Prometheus, run by sparkplane monitor, scrapes the agents and real Spark's
// PrometheusServlet endpoints (master, workers, a running driver and its executors); every
// Grafana dashboard query returns at least one series; targets follow an added worker; and
// Prometheus stops with monitor.
func TestRealSparkMonitoring(t *testing.T) {
	testutil.Tool(t, "prometheus", "apt-get install prometheus")
	for _, line := range sparktest.Lines() {
		t.Run("Spark"+line, func(t *testing.T) {
			e := clustertest.NewEnv(t, sparktest.RealHome(t, line))
			e.M.ReadyTimeout = 3 * time.Minute
			jar := sparktest.JVMExample(t, line)
			ctx := context.Background()
			ref := cluster.Ref{Name: "mon"}
			c := clustertest.Spec(t, "name: mon\nworkers: {count: 2, min: 2, max: 3, cores: 2, memory: 2g}\n"+
				"autoscale: {policy: spark, interval: 1s, keepAlive: 1h}\nlifetime: {maxAge: 2h}\n"+
				"spark:\n  conf: {spark.executor.memory: 512m, spark.driver.memory: 512m}\n")
			t.Cleanup(func() { e.M.Destroy(context.Background(), ref) })
			if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); err != nil {
				t.Fatalf("%v\n%s", err, e.Rec)
			}
			// One job done (the finished-job series), one failed, one running while Prometheus looks.
			for _, args := range [][]string{{"2", "1"}, {"not-a-number", "1"}} {
				job, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: jar, Class: "dev.sparkplane.examples.Busy", Args: args})
				if err != nil {
					t.Fatal(err)
				}
				if j, err := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{}); err != nil || !state.JobDone(j.State) {
					t.Fatalf("job: %+v %v", j, err)
				}
			}
			long, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: jar, Class: "dev.sparkplane.examples.Busy", Args: []string{"2", "600"},
				Conf: map[string]string{"spark.cores.max": "2"}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.M.Kill(context.Background(), ref, long.ID) })

			dir := filepath.Join(t.TempDir(), "monitoring")
			listen := testutil.FreeAddr(t)
			var info cluster.MonitorInfo
			if err := e.M.Monitor(ctx, ref, cluster.MonitorOptions{Dir: dir, Listen: listen, ConfigOnly: true,
				Ready: func(i cluster.MonitorInfo) { info = i }}); err != nil {
				t.Fatal(err)
			}
			if info.Agents != 3 || info.Config != filepath.Join(dir, "prometheus.yml") {
				t.Errorf("config only: %+v", info)
			}
			if st, err := os.Stat(filepath.Join(dir, monitoring.TokenFile)); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("token file: %v %v", st, err)
			}
			promtool := testutil.Tool(t, "promtool", "apt-get install prometheus")
			if out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
				t.Errorf("promtool check config: %v\n%s", err, out)
			}
			testutil.Eventually(t, 2*time.Minute, "the running job's driver and executors are targets", func() error {
				if err := e.M.Monitor(ctx, ref, cluster.MonitorOptions{Dir: dir, Listen: listen, ConfigOnly: true}); err != nil {
					return err
				}
				b, _ := os.ReadFile(filepath.Join(dir, monitoring.SparkFile))
				for _, want := range []string{`"component": "driver"`, `"component": "executors"`} {
					if !strings.Contains(string(b), want) {
						return fmt.Errorf("no %s in %s", want, b)
					}
				}
				return nil
			})
			// A driver's UI answers a moment before its metrics servlets are attached (404).
			var names map[string]bool
			testutil.Eventually(t, time.Minute, "every target answers", func() (err error) {
				names, err = scrapeTargets(dir)
				return err
			})
			for _, q := range monitoring.DashboardQueries(t) {
				if missing, err := monitoring.Missing(monitoring.GrafanaVars(q.Expr(), "mon"), names); err != nil || len(missing) > 0 {
					t.Errorf("%s reads %v, which real Spark %s and the agents do not expose (%v)", q.Where(), missing, line, err)
				}
			}
			// The check can fail.
			if missing, _ := monitoring.Missing("sparkplane_no_such_metric", names); len(missing) != 1 {
				t.Errorf("an unknown metric went unnoticed: %v", missing)
			}

			mctx, stop := context.WithCancel(ctx)
			ready := make(chan cluster.MonitorInfo, 1)
			done := make(chan error, 1)
			go func() {
				done <- e.M.Monitor(mctx, ref, cluster.MonitorOptions{Dir: dir, Listen: listen, Refresh: 500 * time.Millisecond,
					ScrapeInterval: time.Second, Ready: func(i cluster.MonitorInfo) { ready <- i }})
			}()
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					stop()
					<-done
				}
			})
			var base string
			select {
			case i := <-ready:
				base = i.URL
			case err := <-done:
				t.Fatalf("monitor: %v", err)
			}
			checks := map[string]float64{
				`count(up{job="spark",cluster="mon",component="master"} == 1)`:    1,
				`count(up{job="spark",cluster="mon",component="worker"} == 1)`:    2,
				`count(up{job="spark",cluster="mon",component="driver"} == 1)`:    1,
				`count(up{job="spark",cluster="mon",component="executors"} == 1)`: 1,
				`count(up{job="sparkplane",cluster="mon"} == 1)`:                  3,
				`metrics_master_aliveWorkers_Value{cluster="mon"}`:                2,
				// The agents' own series.
				`sparkplane_workers{cluster="mon",state="ALIVE"}`:                       2,
				`sparkplane_cluster_cores{cluster="mon"}`:                               4,
				`sparkplane_cluster_memory_bytes{cluster="mon"}`:                        4 << 30,
				`sparkplane_worker_cores{cluster="mon",node="worker-2"}`:                2,
				`sparkplane_jobs_finished_total{cluster="mon",state="FINISHED"}`:        1,
				`sparkplane_jobs_finished_total{cluster="mon",state="FAILED"}`:          1,
				`sparkplane_job_duration_seconds_count{cluster="mon",state="FINISHED"}`: 1,
				`sparkplane_jobs_active{cluster="mon"}`:                                 1,
			}
			testutil.Eventually(t, 2*time.Minute, "Prometheus has scraped real Spark", func() error { return answers(base, checks) })
			// Every dashboard query answers with at least one series from this cluster. Rates need
			// two samples, so give Prometheus a few scrapes.
			testutil.Eventually(t, time.Minute, "every dashboard query returns a series", func() error {
				var empty []string
				for _, q := range monitoring.DashboardQueries(t) {
					v, err := promQuery(base, monitoring.GrafanaVars(q.Expr(), "mon"))
					if err != nil {
						return fmt.Errorf("%s: %v", q.Where(), err)
					}
					if len(v) == 0 {
						empty = append(empty, q.Where()+": "+q.Expr())
					}
				}
				if len(empty) > 0 {
					return fmt.Errorf("%d queries return nothing:\n%s", len(empty), strings.Join(empty, "\n"))
				}
				return nil
			})

			// Targets follow the cluster: a new worker is scraped within moments.
			if _, err := e.M.Add(ctx, ref, 1); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 2*time.Minute, "the new worker's agent and Spark worker are scraped", func() error {
				return answers(base, map[string]float64{
					`count(up{job="sparkplane",cluster="mon"} == 1)`:               4,
					`count(up{job="spark",cluster="mon",component="worker"} == 1)`: 3,
				})
			})
			if _, err := e.M.Kill(ctx, ref, long.ID); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, time.Minute, "the killed job is counted", func() error {
				return answers(base, map[string]float64{`sparkplane_jobs_finished_total{cluster="mon",state="KILLED"}`: 1})
			})
			stop()
			stopped = true
			if err := <-done; err != nil {
				t.Errorf("monitor: %v", err)
			}
			if _, err := http.Get(base + "/-/ready"); err == nil {
				t.Error("Prometheus still answers after monitor returned")
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
				t.Errorf("Prometheus' data: %v", err)
			}
		})
	}
}
