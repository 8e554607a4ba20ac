package cli

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparkplane/sparkplane/internal/cluster"
)

func newMonitorCmd(f *Factory) *cobra.Command {
	var rf refFlags
	var dir, prom, output, discovery string
	var port int
	var configOnly bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "monitor NAME",
		Short: "Watch a cluster with Prometheus, with Grafana dashboards ready to load",
		Long: `Write a Prometheus configuration for a cluster and run Prometheus on it, on this machine,
until Ctrl-C. Prometheus scrapes every agent's /metrics (with the cluster token) and Spark's own
metrics on the master, the workers and running drivers; its targets follow the cluster as
workers come and go. Its data stays in the monitoring directory for the next run.

The directory also holds Grafana dashboards (cluster, jobs, autoscaler) and the files that
provision them and the Prometheus datasource: start Grafana with
  cfg:default.paths.provisioning=DIR/grafana/provisioning
With --config-only, nothing runs: point a Prometheus of your own at DIR/prometheus.yml.

On AWS the agents serve TLS; the configuration trusts their certificate (DIR/agent-ca.pem).
From outside the cluster only the master's agent is reachable, and its metrics hold the whole
cluster's view. For a Prometheus inside the cluster's network (on the gateway, say), use
--discovery ec2 --config-only: it finds every agent by the cluster's tag through the EC2 API.

The metrics are listed in docs/monitoring.md.`,
		Example: `  sparkplane monitor spark
  sparkplane monitor spark --port 9091
  sparkplane monitor spark --config-only -o json
  sparkplane monitor analytics --discovery ec2 --config-only --dir /etc/prometheus/analytics`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, ref, _, err := f.forCluster(&rf, args)
			if err != nil {
				return err
			}
			if err := checkPort(port); err != nil {
				return err
			}
			if discovery != cluster.DiscoverAgents && discovery != cluster.DiscoverEC2 {
				return usagef("--discovery %s: use %s or %s", discovery, cluster.DiscoverAgents, cluster.DiscoverEC2)
			}
			if dir == "" {
				home, err := f.Home()
				if err != nil {
					return err
				}
				dir = filepath.Join(home, "monitoring", ref.Name)
			}
			f.quietInterrupt()
			o := cluster.MonitorOptions{Dir: dir, Prometheus: prom, Listen: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
				ConfigOnly: configOnly, ScrapeInterval: interval, Discovery: discovery}
			o.Ready = func(info cluster.MonitorInfo) {
				if output != FormatTable {
					f.IO.Print(output, info)
					return
				}
				out := f.IO.Out
				if configOnly {
					fmt.Fprintf(out, "Prometheus configuration: %s\n", info.Config)
				} else {
					fmt.Fprintf(out, "Prometheus:  %s\n", info.URL)
					fmt.Fprintf(out, "Config:      %s\n", info.Config)
				}
				fmt.Fprintf(out, "Targets:     %d agent(s), %d Spark endpoint(s), refreshed as the cluster changes\n", info.Agents, info.Spark)
				fmt.Fprintf(out, "Grafana:     grafana server cfg:default.paths.provisioning=%s\n", info.Grafana)
				if !configOnly {
					f.IO.Info("Ctrl-C stops Prometheus; its data stays in %s", dir)
				}
			}
			return m.Monitor(cmd.Context(), ref, o)
		},
	}
	rf.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&dir, "dir", "", "monitoring directory (default: $SPARKPLANE_HOME/monitoring/NAME)")
	fl.StringVar(&prom, "prometheus", "", "the Prometheus binary (default: prometheus on PATH)")
	fl.IntVar(&port, "port", 9090, "port for Prometheus on 127.0.0.1")
	fl.BoolVar(&configOnly, "config-only", false, "write the configuration and dashboards, run nothing")
	fl.StringVar(&discovery, "discovery", cluster.DiscoverAgents, "how Prometheus finds the agents: agents (from the master's agent) or ec2 (by tag, from inside an AWS cluster's network)")
	fl.DurationVar(&interval, "scrape-interval", 10*time.Second, "how often Prometheus scrapes")
	addOutputFlag(cmd, &output)
	return cmd
}

func newHistoryCmd(f *Factory) *cobra.Command {
	var rf refFlags
	var port int
	var output, sparkHome string
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "Browse a cluster's finished applications in Spark's history server",
		Long: `Run Spark's history server on this machine, on the cluster's Spark event logs, until Ctrl-C.
Every application writes its event log as it runs (spark.eventLog.enabled is on in every
cluster), to the cluster's storage: storage.path for a local cluster, by default
$SPARKPLANE_HOME/event-logs/NAME. The logs outlive the cluster, so history works after
destroy, and after run.

It runs on the Spark the cluster was made with when that is still on this machine; --spark-home
names another (an unpacked Spark or a pip-installed pyspark package directory).

The history server listens on 127.0.0.1 only: it has no authentication.`,
		Example: `  sparkplane history spark
  sparkplane history nightly --port 18081`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, ref, _, err := f.forCluster(&rf, args)
			if err != nil {
				return err
			}
			if err := checkPort(port); err != nil {
				return err
			}
			home, err := f.Home()
			if err != nil {
				return err
			}
			f.quietInterrupt()
			return m.History(cmd.Context(), ref, cluster.HistoryOptions{Dir: filepath.Join(home, "history-server", ref.Name), Port: port, SparkHome: sparkHome,
				Ready: func(info cluster.HistoryInfo) {
					if output != FormatTable {
						f.IO.Print(output, info)
						return
					}
					fmt.Fprintf(f.IO.Out, "History server: %s\n", info.URL)
					fmt.Fprintf(f.IO.Out, "Event logs:     %s (%d application(s))\n", info.EventLogs, info.Applications)
					f.IO.Info("Ctrl-C stops it; its log is %s", info.Log)
				}})
		},
	}
	rf.add(cmd)
	cmd.Flags().IntVar(&port, "port", 18080, "port for the history server's web UI on 127.0.0.1")
	cmd.Flags().StringVar(&sparkHome, "spark-home", "", "the Spark to run the history server with (default: the one the cluster was made with)")
	addOutputFlag(cmd, &output)
	return cmd
}

func checkPort(port int) error {
	if port < 1 || port > 65535 {
		return usagef("--port %d is not a TCP port", port)
	}
	return nil
}
