package aws_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/monitoring"
	sparkaws "github.com/sparkplane/sparkplane/internal/provider/aws"
	"github.com/sparkplane/sparkplane/internal/provider/aws/awstest"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// checkMonitoring runs sparkplane monitor on an AWS cluster with a real Prometheus, which must
// scrape every agent over TLS (trusting the cluster's certificate); then it has a Prometheus
// configured for inside the cluster's network find the agents in the EC2 API by tag.
func checkMonitoring(t *testing.T, e *env, ref cluster.Ref, workers []string) {
	t.Helper()
	bin := testutil.Tool(t, "prometheus", "apt-get install prometheus")
	ctx, cancel := context.WithCancel(context.Background())
	listen := testutil.FreeAddr(t)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- e.m.Monitor(ctx, ref, cluster.MonitorOptions{Dir: t.TempDir(), Prometheus: bin, Listen: listen,
			ScrapeInterval: time.Second, Refresh: time.Second, Ready: func(cluster.MonitorInfo) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("monitor: %v", err)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatal("monitor did not start Prometheus")
	}
	defer func() { cancel(); <-done }()
	testutil.Eventually(t, time.Minute, "Prometheus scrapes every agent over TLS", func() error {
		var v struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		}
		if err := testutil.PrometheusAPI("http://"+listen, "/api/v1/query?query="+url.QueryEscape(`up{job="sparkplane"} == 1`), &v); err != nil {
			return err
		}
		var up []string
		for _, r := range v.Result {
			up = append(up, r.Metric["node"])
		}
		sort.Strings(up)
		want := append([]string{"master"}, workers...)
		sort.Strings(want)
		if strings.Join(up, ",") != strings.Join(want, ",") {
			return fmt.Errorf("agents up: %v, want %v", up, want)
		}
		return nil
	})
	var workersSeen struct {
		Result []any `json:"result"`
	}
	if err := testutil.PrometheusAPI("http://"+listen, "/api/v1/query?query=sparkplane_workers", &workersSeen); err != nil || len(workersSeen.Result) == 0 {
		t.Errorf("the master agent's cluster view is not in Prometheus: %v %v", workersSeen, err)
	}

	// Inside the network: the agents from the EC2 API (moto), by the cluster's tag.
	dir := t.TempDir()
	if err := e.m.Monitor(ctx, ref, cluster.MonitorOptions{Dir: dir, ConfigOnly: true, Discovery: cluster.DiscoverEC2, ScrapeInterval: time.Second}); err != nil {
		t.Fatal(err)
	}
	listen2 := testutil.FreeAddr(t)
	srv, err := monitoring.StartPrometheus(ctx, monitoring.ServerOptions{Bin: bin, Dir: dir, Listen: listen2})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	discoversAgents(t, http.DefaultClient, nil, "http://"+listen2, ref.Name, workers)
}

// discoversAgents waits until the Prometheus at base has found, by the cluster's tag in the EC2
// API, the master's and exactly these workers' agents, to be scraped over TLS on the agent port.
func discoversAgents(t *testing.T, client *http.Client, sign func(*http.Request), base, cluster string, workers []string) {
	t.Helper()
	testutil.Eventually(t, time.Minute, "Prometheus finds the master and every worker by tag", func() error {
		var tg struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				ScrapeURL string            `json:"scrapeUrl"`
			} `json:"activeTargets"`
		}
		if err := testutil.PrometheusAPIAs(client, sign, base, "/api/v1/targets", &tg); err != nil {
			return err
		}
		var nodes []string
		for _, a := range tg.ActiveTargets {
			if a.Labels["job"] != monitoring.AgentsJob {
				continue
			}
			if a.Labels["cluster"] != cluster || !strings.HasPrefix(a.ScrapeURL, "https://") || !strings.HasSuffix(a.ScrapeURL, ":7443/metrics") {
				return fmt.Errorf("target %+v", a)
			}
			nodes = append(nodes, a.Labels["node"])
		}
		sort.Strings(nodes)
		want := append([]string{"master"}, workers...)
		sort.Strings(want)
		if strings.Join(nodes, ",") != strings.Join(want, ",") {
			return fmt.Errorf("discovered %v, want %v", nodes, want)
		}
		return nil
	})
}

// checkMonitoringInstance checks the module's monitoring instance: its Prometheus (run by its
// agent) is behind a login over TLS (the user admin, the cluster's secret, the cluster's
// certificate), finds the agents by tag, and scrapes Spark's master, whose port it learns from
// the master's agent.
func checkMonitoringInstance(t *testing.T, e *env, boot *awstest.Booter, cluster string, workers []string) {
	t.Helper()
	ctx := context.Background()
	secret, err := e.p.Secret(ctx, cluster)
	if err != nil {
		t.Fatal(err)
	}
	client, err := e.p.AgentHTTPClient(ctx, cluster)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(r *http.Request) { r.SetBasicAuth(sparkaws.PrometheusUser, secret) }
	var base string
	testutil.Eventually(t, time.Minute, "the monitoring instance runs Prometheus", func() error {
		if base = boot.Prometheus(); base == "" {
			return fmt.Errorf("no monitoring instance booted\n%s", boot.Logs())
		}
		req, _ := http.NewRequest(http.MethodGet, base+"/-/ready", nil)
		sign(req)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ready: %s", resp.Status)
		}
		return nil
	})
	if !strings.HasPrefix(base, "https://") {
		t.Errorf("the monitoring instance's Prometheus serves %s, not TLS", base)
	}
	var targets any
	if err := testutil.PrometheusAPIAs(client, nil, base, "/api/v1/targets", &targets); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("the monitoring instance's Prometheus without a login: %v, want 401", err)
	}
	discoversAgents(t, client, sign, base, cluster, workers)
	testutil.Eventually(t, time.Minute, "the monitoring instance scrapes Spark's master", func() error {
		var v struct {
			Result []any `json:"result"`
		}
		if err := testutil.PrometheusAPIAs(client, sign, base, "/api/v1/query?query="+url.QueryEscape(`up{job="spark",component="master"} == 1`), &v); err != nil {
			return err
		}
		if len(v.Result) != 1 {
			return fmt.Errorf("Spark master targets up: %v", v.Result)
		}
		return nil
	})
}

// Grafana on the monitoring instance starts with the cluster's secret as its admin password, in
// its environment only, serves TLS with the cluster's certificate, and has sign-up and anonymous
// access off.
func TestGrafanaAdminPasswordIsTheClusterSecret(t *testing.T) {
	login := &monitoring.Login{User: sparkaws.PrometheusUser, Password: "the-cluster-secret", CertFile: "/node/tls/agent.crt", KeyFile: "/node/tls/agent.key"}
	cmd := sparkaws.GrafanaCommandForTest("/usr/sbin/grafana-server", t.TempDir(), t.TempDir(), "the-cluster-secret", login)
	for _, want := range []string{"cfg:default.server.protocol=https", "cfg:default.server.cert_file=/node/tls/agent.crt", "cfg:default.server.cert_key=/node/tls/agent.key"} {
		if !slices.Contains(cmd.Args, want) {
			t.Errorf("Grafana does not serve TLS with the cluster's certificate: %v lacks %s", cmd.Args, want)
		}
	}
	if strings.Contains(strings.Join(cmd.Args, " "), "the-cluster-secret") {
		t.Errorf("the secret is on the command line: %v", cmd.Args)
	}
	for _, want := range []string{"GF_SECURITY_ADMIN_PASSWORD=the-cluster-secret", monitoring.EnvGrafanaPrometheusPassword + "=the-cluster-secret",
		"GF_USERS_ALLOW_SIGN_UP=false", "GF_AUTH_ANONYMOUS_ENABLED=false"} {
		if !slices.Contains(cmd.Env, want) {
			t.Errorf("Grafana's environment lacks %s", want)
		}
	}
}
