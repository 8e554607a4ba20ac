package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// scrape reads and parses an agent's metrics.
func scrape(t testing.TB, c *agentapi.Client) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	body, err := c.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse the exposition: %v\n%s", err, body)
	}
	return fams, body
}

// value is the value of the series of a family whose labels include want; it fails the test when
// there is no such series.
func value(t testing.TB, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			match = match && labels[want[i]] == want[i+1]
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}

func TestMetrics(t *testing.T) {
	c := startCluster(t, 2, spec.Lifetime{IdleTimeout: time.Hour}, func(c *spec.Cluster) { c.Workers.Cores, c.Workers.MemoryMiB = 3, 1024 })
	ctx := context.Background()

	if _, err := (&agentapi.Client{BaseURL: c.master.BaseURL}).Metrics(ctx); !errors.Is(err, agentapi.ErrUnauthorized) {
		t.Errorf("metrics without the token: %v, want refused", err)
	}

	jar := appFile(t, "app.jar", `work=0.2`)
	job, err := c.master.Submit(ctx, agentapi.JobRequest{Resource: "app.jar", Class: "com.example.App"}, map[string]string{"app.jar": jar})
	if err != nil {
		t.Fatal(err)
	}
	if j := waitJob(t, c.master, job.ID); j.State != state.JobFinished {
		t.Fatalf("job: %+v", j)
	}
	bad := appFile(t, "bad.jar", `exit=3`)
	job, err = c.master.Submit(ctx, agentapi.JobRequest{Resource: "bad.jar", Class: "com.example.App"}, map[string]string{"bad.jar": bad})
	if err != nil {
		t.Fatal(err)
	}
	if j := waitJob(t, c.master, job.ID); j.State != state.JobFailed {
		t.Fatalf("job: %+v", j)
	}

	fams, body := scrape(t, c.master)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sparkplane_spark_master_up", nil, 1},
		{"sparkplane_spark_daemon_up", nil, 1},
		{"sparkplane_spark_daemon_restarts_total", nil, 0},
		{"sparkplane_agent_info", []string{"role", "master", "cluster", "inproc", "spark_version", "3.5.3"}, 1},
		{"sparkplane_workers", []string{"state", "ALIVE"}, 2},
		{"sparkplane_workers", []string{"state", "LOST"}, 0},
		{"sparkplane_worker_cores", []string{"node", "worker-1"}, 3},
		{"sparkplane_worker_memory_bytes", []string{"node", "worker-2"}, 1024 << 20},
		{"sparkplane_cluster_cores", nil, 6},
		{"sparkplane_cluster_memory_bytes", nil, 2048 << 20},
		{"sparkplane_spark_drivers", []string{"state", "completed"}, 2},
		{"sparkplane_spark_drivers", []string{"state", "active"}, 0},
		{"sparkplane_spark_applications", []string{"state", "completed"}, 2},
		{"sparkplane_jobs_submitted_total", nil, 2},
		{"sparkplane_jobs_finished_total", []string{"state", "FINISHED"}, 1},
		{"sparkplane_jobs_finished_total", []string{"state", "FAILED"}, 1},
		{"sparkplane_jobs_finished_total", []string{"state", "KILLED"}, 0},
		{"sparkplane_job_duration_seconds", []string{"state", "FINISHED"}, 1}, // observations
		{"sparkplane_job_wait_seconds", nil, 2},
		{"sparkplane_jobs_active", nil, 0},
	} {
		if got := value(t, fams, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// The idle countdown starts at the master's next look after the last job ended.
	testutil.Eventually(t, 10*time.Second, "the idle countdown", func() error {
		fams, _ := scrape(t, c.master)
		if _, ok := fams["sparkplane_lifetime_remaining_seconds"]; !ok {
			return errors.New("no sparkplane_lifetime_remaining_seconds")
		}
		if r := value(t, fams, "sparkplane_lifetime_remaining_seconds", "rule", "idleTimeout"); r <= 0 || r > 3600 {
			t.Errorf("lifetime remaining %v, want in (0, 3600]", r)
		}
		return nil
	})
	if _, ok := fams["sparkplane_autoscaler_decisions_total"]; ok {
		t.Error("autoscaler metrics without an autoscaler")
	}
	if _, ok := fams["process_resident_memory_bytes"]; !ok {
		t.Error("no process metrics")
	}
	checkMetrics(t, "master", body)

	st, _ := c.master.Status(ctx)
	for _, w := range st.Workers {
		wfams, wbody := scrape(t, &agentapi.Client{BaseURL: w.Agent, Token: c.master.Token})
		if v := value(t, wfams, "sparkplane_agent_info", "role", "worker", "node", w.NodeID); v != 1 {
			t.Errorf("%s: agent info %v", w.NodeID, v)
		}
		if v := value(t, wfams, "sparkplane_spark_daemon_up"); v != 1 {
			t.Errorf("%s: daemon up %v", w.NodeID, v)
		}
		if v := value(t, wfams, "sparkplane_last_heartbeat_time_seconds"); v < float64(time.Now().Add(-time.Hour).Unix()) {
			t.Errorf("%s: last heartbeat %v", w.NodeID, v)
		}
		value(t, wfams, "sparkplane_spark_executors")
		checkMetrics(t, w.NodeID, wbody)
	}
}

// checkMetrics runs promtool check metrics on an exposition: Prometheus' own lint of names,
// units, help texts and counters.
func checkMetrics(t *testing.T, who string, body []byte) {
	t.Helper()
	promtool := testutil.Tool(t, "promtool", "apt-get install prometheus")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics on the %s agent's exposition: %v\n%s", who, err, strings.TrimSpace(string(out)))
	}
}

// BenchmarkMetricsScrape measures one scrape of the master's agent of a cluster of 50 workers:
// time, allocations, and the bytes Prometheus receives (plain and gzipped, as it asks for them).
func BenchmarkMetricsScrape(b *testing.B) {
	c := startCluster(b, 50, spec.Lifetime{}, func(c *spec.Cluster) {
		c.Workers.Count, c.Workers.Max = 50, 50
		c.Autoscale = spec.Autoscale{Policy: spec.PolicySpark, Interval: time.Second}
	})
	ctx := context.Background()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.master.BaseURL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+c.master.Token)
	req.Header.Set("Accept-Encoding", "gzip")
	tr := &http.Transport{DisableCompression: true}
	var plain, gz int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		gz = len(body)
		if resp.Header.Get("Content-Encoding") == "gzip" {
			r, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			raw, _ := io.ReadAll(r)
			plain = len(raw)
		} else {
			plain = len(body)
		}
	}
	b.StopTimer()
	fams, body := scrape(b, c.master)
	if n := value(b, fams, "sparkplane_workers", "state", "ALIVE"); n != 50 {
		b.Fatalf("%v alive workers, want 50", n)
	}
	series := 0
	for _, l := range bytes.Split(body, []byte("\n")) {
		if len(l) > 0 && l[0] != '#' {
			series++
		}
	}
	b.ReportMetric(float64(series), "series/scrape")
	b.ReportMetric(float64(plain), "bytes/scrape")
	b.ReportMetric(float64(gz), "gzip-bytes/scrape")
}
