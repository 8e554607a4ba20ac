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
	"go.yaml.in/yaml/v3"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
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

// A Prometheus that listens beyond loopback is behind a login over TLS: without it, with a wrong
// password, or in plain HTTP it refuses; with it, its API answers. The web configuration holds a
// bcrypt hash, never the password. Grafana's datasource signs in with the password from its
// environment and trusts the certificate.
func TestPrometheusBehindALogin(t *testing.T) {
	bin := testutil.Tool(t, "prometheus", "apt-get install prometheus")
	dir := t.TempDir()
	if err := monitoring.WriteConfig(dir, "agent-token", monitoring.Options{}); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := agentapi.NewCertificate("analytics", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(cert, certPEM, 0o644)
	os.WriteFile(key, keyPEM, 0o600)
	login := &monitoring.Login{User: "admin", Password: "the-cluster-secret", CertFile: cert, KeyFile: key, CA: certPEM}
	listen := testutil.FreeAddr(t)
	srv, err := monitoring.StartPrometheus(context.Background(), monitoring.ServerOptions{Bin: bin, Dir: dir, Listen: listen, Login: login})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if srv.URL != "https://"+listen {
		t.Errorf("URL %s", srv.URL)
	}
	web, _ := os.ReadFile(filepath.Join(dir, monitoring.WebConfigFile))
	if bytes.Contains(web, []byte("the-cluster-secret")) || !bytes.Contains(web, []byte("$2a$")) {
		t.Errorf("web.yml holds the password, or no bcrypt hash:\n%s", web)
	}
	if fi, err := os.Stat(filepath.Join(dir, monitoring.WebConfigFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("web.yml: %v %v", fi.Mode(), err)
	}
	client, sign, err := login.Client()
	if err != nil {
		t.Fatal(err)
	}
	var build map[string]string
	if err := testutil.PrometheusAPIAs(client, sign, srv.URL, "/api/v1/status/buildinfo", &build); err != nil || build["version"] == "" {
		t.Errorf("with the login: %v %v", build, err)
	}
	wrong := &monitoring.Login{User: "admin", Password: "guess", CA: certPEM}
	_, signWrong, _ := wrong.Client()
	for name, sign := range map[string]func(*http.Request){"no login": nil, "a wrong password": signWrong} {
		if err := testutil.PrometheusAPIAs(client, sign, srv.URL, "/api/v1/status/buildinfo", &build); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("with %s: %v, want 401", name, err)
		}
	}
	if resp, err := http.Get("http://" + listen + "/api/v1/status/buildinfo"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP answered %s", resp.Status)
		}
	}

	if err := monitoring.WriteGrafana(dir, srv.URL, login); err != nil {
		t.Fatal(err)
	}
	ds, _ := os.ReadFile(filepath.Join(dir, monitoring.GrafanaDir, "provisioning", "datasources", "sparkplane.yaml"))
	var parsed struct {
		Datasources []struct {
			URL           string            `yaml:"url"`
			BasicAuth     bool              `yaml:"basicAuth"`
			BasicAuthUser string            `yaml:"basicAuthUser"`
			JSONData      map[string]any    `yaml:"jsonData"`
			Secure        map[string]string `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(ds, &parsed); err != nil || len(parsed.Datasources) != 1 {
		t.Fatalf("datasource: %v\n%s", err, ds)
	}
	d := parsed.Datasources[0]
	if d.URL != srv.URL || !d.BasicAuth || d.BasicAuthUser != "admin" || d.JSONData["tlsAuthWithCACert"] != true ||
		d.JSONData["serverName"] != agentapi.TLSServerName || d.Secure["tlsCACert"] != string(certPEM) ||
		d.Secure["basicAuthPassword"] != "${"+monitoring.EnvGrafanaPrometheusPassword+"}" || bytes.Contains(ds, []byte("the-cluster-secret")) {
		t.Errorf("datasource:\n%s", ds)
	}
}
