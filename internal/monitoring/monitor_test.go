package monitoring_test

import (
	"bytes"
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

	"github.com/sparkplane/sparkplane/internal/monitoring"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// scrapeTargets scrapes every target the generated files list, as Prometheus would, and returns
// the names of the series they expose.
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
