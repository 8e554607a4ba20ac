package aws

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/daemon"
	"github.com/sparkplane/sparkplane/internal/monitoring"
	"github.com/sparkplane/sparkplane/internal/node"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// RoleMonitoring is the monitoring instance's role: its agent runs Prometheus (and Grafana)
// for the cluster instead of a Spark daemon.
const RoleMonitoring = "monitoring"

// PrometheusUser is the monitoring instance's Prometheus login; its password is the cluster's
// secret, as Grafana's is.
const PrometheusUser = "admin"

// EnvPrometheusListen overrides where the monitoring instance's Prometheus listens (default
// :9090), for running a node outside EC2.
const EnvPrometheusListen = "SPARKPLANE_PROMETHEUS_LISTEN"

// runMonitoring runs Prometheus on the monitoring instance until ctx ends: the agents found by
// the cluster's tag through the EC2 API and scraped over TLS with the cluster's certificate;
// Spark's servlets (whose ports the agents choose) from the master's agent, every 10 seconds.
// Grafana runs beside it, with sparkplane's dashboards, when the spec asks and it is installed.
func runMonitoring(ctx context.Context, nc NodeConfig, c *spec.Cluster, a *artifacts, n *node.Node, log *slog.Logger) error {
	secret, certPEM := n.Secret, n.Cert
	dir := filepath.Join(n.Identity.Root, "monitoring")
	err := monitoring.WriteConfig(dir, secret, monitoring.Options{
		AgentTLS: &monitoring.AgentTLS{CA: certPEM, ServerName: agentapi.TLSServerName},
		EC2:      &monitoring.EC2Discovery{Cluster: nc.Cluster, Region: nc.Region, Port: nc.AgentPort, Endpoint: endpointOf(c)},
	})
	if err != nil {
		return fmt.Errorf("write the Prometheus configuration: %w", err)
	}
	listen := cmp.Or(os.Getenv(EnvPrometheusListen), ":9090")
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("%s=%s: %w", EnvPrometheusListen, listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	// It listens beyond the instance, to allowedCIDRs: behind a login over TLS, the cluster's
	// certificate, whose key the node already holds.
	login := &monitoring.Login{User: PrometheusUser, Password: secret, CA: certPEM, CertFile: n.Files.Cert, KeyFile: n.Files.Key}
	local := "https://" + net.JoinHostPort(host, port)
	if err := monitoring.WriteGrafana(dir, local, login); err != nil {
		return err
	}
	bin, err := monitoring.FindPrometheus("")
	if err != nil {
		return err
	}
	srv, err := monitoring.StartPrometheus(ctx, monitoring.ServerOptions{Bin: bin, Dir: dir, Listen: listen, Login: login})
	if err != nil {
		return err
	}
	defer srv.Stop()
	log.Info("Prometheus started", "url", local, "config", filepath.Join(dir, monitoring.ConfigFile))
	if c.Monitoring.Grafana {
		if g, err := startGrafana(dir, secret, login); err != nil {
			log.Warn("Grafana did not start", "err", err)
		} else {
			defer g.Stop(30 * time.Second)
			log.Info("Grafana started", "port", 3000)
		}
	}

	httpClient, err := agentapi.PinnedClient(certPEM)
	if err != nil {
		return err
	}
	sparkTargets := func() error {
		ep, err := a.endpoint(ctx)
		if err != nil {
			return err
		}
		st, err := (&agentapi.Client{BaseURL: ep.PrivateURL, Token: secret, HTTP: httpClient}).Status(ctx)
		if err != nil {
			return err
		}
		t, err := monitoring.TargetsOf(nc.Cluster, ep.PrivateURL, st)
		if err != nil {
			return err
		}
		_, err = monitoring.WriteTargets(dir, monitoring.Targets{Spark: t.Spark}) // the agents come from EC2
		return err
	}
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		if err := sparkTargets(); err != nil && ctx.Err() == nil {
			log.Warn("follow Spark's targets", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-srv.Done():
			return fmt.Errorf("prometheus exited (%v); see %s", srv.Err(), filepath.Join(dir, monitoring.LogFile))
		case <-tick.C:
		}
	}
}

// startGrafana runs the distribution's grafana-server with sparkplane's provisioning.
func startGrafana(dir, secret string, login *monitoring.Login) (*daemon.Process, error) {
	bin, err := exec.LookPath("grafana-server")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, monitoring.GrafanaDir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	return daemon.Start("Grafana", grafanaCommand(bin, dir, data, secret, login), filepath.Join(dir, monitoring.GrafanaDir, "grafana.log"))
}

// grafanaCommand is grafana-server for the monitoring instance. Its admin password is the
// cluster's secret (in SSM, /sparkplane/NAME/secret), never Grafana's shipped default: it goes
// in the environment, not on the command line, which every user of the machine can read, as does
// the password its datasource signs in to Prometheus with. It serves TLS with the cluster's
// certificate, as Prometheus does, so that the password never crosses the network in the clear.
// Sign-up and anonymous access stay off.
func grafanaCommand(bin, dir, data, secret string, login *monitoring.Login) *exec.Cmd {
	cmd := exec.Command(bin, "--homepath", "/usr/share/grafana",
		"cfg:default.paths.provisioning="+filepath.Join(dir, monitoring.GrafanaDir, "provisioning"),
		"cfg:default.paths.data="+data, "cfg:default.server.http_port=3000", "cfg:default.server.protocol=https",
		"cfg:default.server.cert_file="+login.CertFile, "cfg:default.server.cert_key="+login.KeyFile)
	cmd.Env = append(os.Environ(), "GF_SECURITY_ADMIN_USER=admin", "GF_SECURITY_ADMIN_PASSWORD="+secret,
		monitoring.EnvGrafanaPrometheusPassword+"="+secret, "GF_USERS_ALLOW_SIGN_UP=false", "GF_AUTH_ANONYMOUS_ENABLED=false", "GF_SECURITY_DISABLE_GRAVATAR=true")
	return cmd
}
