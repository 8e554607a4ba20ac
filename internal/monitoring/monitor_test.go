package monitoring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/cluster/clustertest"
	"github.com/sparkplane/sparkplane/internal/monitoring"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/state"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// exposed scrapes every target the generated files list, as Prometheus would, and returns the
// names of the series they expose.
func exposed(t *testing.T, dir string) map[string]bool {
	t.Helper()
	names, err := scrapeTargets(dir)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func scrapeTargets(dir string) (map[string]bool, error) {
	token, err := os.ReadFile(filepath.Join(dir, monitoring.TokenFile))
	if err != nil {
		return nil, err
	}
	names := map[string]bool{"up": true, "scrape_duration_seconds": true} // Prometheus' own, per target
	for _, f := range []struct {
		file, path string
		auth       bool
	}{{monitoring.AgentsFile, monitoring.MetricsPath, true}, {monitoring.SparkFile, "", false}} {
		var groups []monitoring.TargetGroup
		b, _ := os.ReadFile(filepath.Join(dir, f.file))
		if err := json.Unmarshal(b, &groups); err != nil {
			return nil, fmt.Errorf("%s: %v", f.file, err)
		}
		for _, g := range groups {
			path := f.path
			if path == "" {
				path = g.Labels["__metrics_path__"]
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+g.Targets[0]+path, nil)
			if f.auth {
				req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return nil, fmt.Errorf("scrape %s: %v", req.URL, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			p := expfmt.NewTextParser(model.UTF8Validation)
			fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
			if err != nil || resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("scrape %s (%s): HTTP %d, %v\n%.300s", req.URL, g.Labels["component"], resp.StatusCode, err, body)
			}
			for name, fam := range fams {
				names[name] = true
				if fam.GetType() == dto.MetricType_HISTOGRAM {
					for _, s := range []string{"_bucket", "_sum", "_count"} {
						names[name+s] = true
					}
				}
			}
		}
	}
	return names, nil
}

// promQuery asks Prometheus for an instant vector.
func promQuery(base, q string) (model.Vector, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := testutil.PrometheusAPI(base, "/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, nil // scalars are not asked for by value
	}
	var v model.Vector
	return v, json.Unmarshal(data.Result, &v)
}

// single is the value of a query that must return exactly one series.
func single(base, q string) (float64, error) {
	v, err := promQuery(base, q)
	if err != nil {
		return 0, err
	}
	if len(v) != 1 {
		return 0, fmt.Errorf("%s: %d series: %v", q, len(v), v)
	}
	return float64(v[0].Value), nil
}

// TestMonitorLocalCluster runs a local cluster, writes its Prometheus configuration, checks that
// the dashboards read only metrics the agents and Spark really expose, and then has a real
// Prometheus scrape the cluster through that configuration and answers queries on it.
func TestMonitorLocalCluster(t *testing.T) {
	e := clustertest.NewEnv(t, sparktest.Home(t, "3.5.3"))
	ctx := context.Background()
	c := clustertest.Spec(t, "name: mon\nworkers: {count: 2, min: 2, max: 4, cores: 2, memory: 1g}\nautoscale: {policy: spark, interval: 1s, keepAlive: 1h}\nlifetime: {maxAge: 2h}\n")
	t.Cleanup(func() { e.M.Destroy(context.Background(), cluster.Ref{Name: "mon"}) })
	if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); err != nil {
		t.Fatalf("%v\n%s", err, e.Rec)
	}
	ref := cluster.Ref{Name: "mon"}
	job, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: clustertest.App(t, "etl.jar", "work=0.3"), Class: "com.example.Etl"})
	if err != nil {
		t.Fatal(err)
	}
	if j, err := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{}); err != nil || j.State != state.JobFinished {
		t.Fatalf("job: %+v %v", j, err)
	}
	// A job that runs while Prometheus looks, so that its driver is a target too.
	long, err := e.M.Submit(ctx, ref, cluster.JobSpec{Application: clustertest.App(t, "long.jar", "duration=10m"), Class: "com.example.Long"})
	if err != nil {
		t.Fatal(err)
	}

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

	// Every metric a dashboard reads is one that something in the cluster exposes.
	testutil.Eventually(t, 30*time.Second, "the running job's driver is a target", func() error {
		if err := e.M.Monitor(ctx, ref, cluster.MonitorOptions{Dir: dir, Listen: listen, ConfigOnly: true}); err != nil {
			return err
		}
		b, _ := os.ReadFile(filepath.Join(dir, monitoring.SparkFile))
		if !strings.Contains(string(b), `"component": "driver"`) {
			return fmt.Errorf("no driver in %s", b)
		}
		return nil
	})
	names := exposed(t, dir)
	for _, q := range monitoring.DashboardQueries(t) {
		missing, err := monitoring.Missing(monitoring.GrafanaVars(q.Expr(), "mon"), names)
		if err != nil {
			t.Errorf("%s: %v", q.Where(), err)
		}
		if len(missing) > 0 {
			t.Errorf("%s reads %v, which nothing exposes", q.Where(), missing)
		}
	}
	// The check can fail.
	if missing, _ := monitoring.Missing("sparkplane_no_such_metric", names); len(missing) != 1 {
		t.Errorf("an unknown metric went unnoticed: %v", missing)
	}

	promtool := testutil.Tool(t, "promtool", "apt-get install prometheus")
	if out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
	testutil.Tool(t, "prometheus", "apt-get install prometheus")

	// A real Prometheus, run by sparkplane on the same directory, scraping every second.
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
		`sparkplane_workers{cluster="mon",state="ALIVE"}`:                                    2,
		`sparkplane_cluster_cores{cluster="mon"}`:                                            4,
		`sparkplane_cluster_memory_bytes{cluster="mon"}`:                                     2 << 30,
		`sparkplane_jobs_finished_total{cluster="mon",state="FINISHED"}`:                     1,
		`sparkplane_job_duration_seconds_count{cluster="mon",state="FINISHED"}`:              1,
		`sparkplane_jobs_active{cluster="mon"}`:                                              1,
		`count(up{job="sparkplane",cluster="mon"} == 1)`:                                     3,
		`sparkplane_worker_cores{cluster="mon",node="worker-2"}`:                             2,
		`metrics_master_aliveWorkers_Value{cluster="mon"}`:                                   2,
		`count(up{job="spark",cluster="mon",component="worker"} == 1)`:                       2,
		`count(up{job="spark",cluster="mon",component="driver"} == 1)`:                       1,
		`sparkplane_autoscaler_decisions_total{cluster="mon",direction="up",cause="demand"}`: 0,
	}
	testutil.Eventually(t, time.Minute, "Prometheus has scraped the cluster", func() error { return answers(base, checks) })

	// Every dashboard query runs in Prometheus without error.
	for _, q := range monitoring.DashboardQueries(t) {
		if _, err := promQuery(base, monitoring.GrafanaVars(q.Expr(), "mon")); err != nil {
			t.Errorf("%s: %v", q.Where(), err)
		}
	}

	// Targets follow the cluster: a new worker is scraped within moments.
	if _, err := e.M.Add(ctx, ref, 1); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, "the new worker's agent is scraped", func() error {
		n, err := single(base, `count(up{job="sparkplane",cluster="mon"} == 1)`)
		if err != nil || n != 4 {
			return fmt.Errorf("%v agents up (%v)", n, err)
		}
		return nil
	})
	if _, err := e.M.Kill(ctx, ref, long.ID); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, "the killed job is counted", func() error {
		n, err := single(base, `sparkplane_jobs_finished_total{cluster="mon",state="KILLED"}`)
		if err != nil || n != 1 {
			return fmt.Errorf("%v killed (%v)", n, err)
		}
		return nil
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
}

// answers checks that each query returns one series of the value given.
func answers(base string, checks map[string]float64) error {
	var errs []string
	for _, q := range sortedKeys(checks) {
		if got, err := single(base, q); err != nil {
			errs = append(errs, err.Error())
		} else if got != checks[q] {
			errs = append(errs, fmt.Sprintf("%s = %v, want %v", q, got, checks[q]))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

func sortedKeys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestWriteConfigAndTargets checks the generated files on their own: promtool accepts the
// configuration, and targets are rewritten only when they change.
func TestWriteConfigAndTargets(t *testing.T) {
	dir := t.TempDir()
	if err := monitoring.WriteConfig(dir, "s3cret", monitoring.Options{ScrapeInterval: 15 * time.Second}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "prometheus.yml"))
	for _, want := range []string{"scrape_interval: 15s", "credentials_file: token", "honor_labels: true", "- targets/agents.json"} {
		if !bytes.Contains(cfg, []byte(want)) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	tg := monitoring.Targets{Agents: []monitoring.TargetGroup{{Targets: []string{"127.0.0.1:1"}, Labels: map[string]string{"node": "master"}}}}
	for i, want := range []bool{true, false} {
		changed, err := monitoring.WriteTargets(dir, tg)
		if err != nil || changed != want {
			t.Errorf("write %d: changed %v, want %v (%v)", i, changed, want, err)
		}
	}
	if _, err := monitoring.TargetsOf("c", "not a url", nil); err == nil {
		t.Error("a master agent that is not a URL was accepted")
	}
	promtool := testutil.Tool(t, "promtool", "apt-get install prometheus")
	if out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
	// A configuration promtool refuses is told apart (the check can fail).
	os.WriteFile(filepath.Join(dir, "bad.yml"), []byte("scrape_configs:\n  - job_name: x\n    scrape_interval: soon\n"), 0o644)
	if err := exec.Command(promtool, "check", "config", filepath.Join(dir, "bad.yml")).Run(); err == nil {
		t.Error("promtool accepted a bad configuration")
	}
}

// On AWS the agents serve TLS and, from inside the cluster's network, are found by tag.
func TestWriteConfigForTLSAgentsFoundOnEC2(t *testing.T) {
	dir := t.TempDir()
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	err := monitoring.WriteConfig(dir, "s3cret", monitoring.Options{
		AgentTLS: &monitoring.AgentTLS{CA: ca, ServerName: "sparkplane-agent"},
		EC2:      &monitoring.EC2Discovery{Cluster: "analytics", Region: "eu-west-1", Port: 7443},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "prometheus.yml"))
	for _, want := range []string{"scheme: https", "ca_file: agent-ca.pem", "server_name: sparkplane-agent", "ec2_sd_configs:",
		"tag:sparkplane/cluster", "- analytics", "port: 7443", "__meta_ec2_tag_sparkplane_role", "replacement: master"} {
		if !bytes.Contains(cfg, []byte(want)) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if bytes.Contains(cfg, []byte("targets/agents.json")) {
		t.Errorf("the agents are found on EC2, yet the config reads the targets file:\n%s", cfg)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, monitoring.AgentCAFile)); !bytes.Equal(got, ca) {
		t.Errorf("agent-ca.pem: %q", got)
	}
	promtool := testutil.Tool(t, "promtool", "apt-get install prometheus")
	if out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
}
