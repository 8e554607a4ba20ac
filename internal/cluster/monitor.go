package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/sparkplane/sparkplane/internal/monitoring"
	"github.com/sparkplane/sparkplane/internal/provider"
)

// MonitorOptions say how to watch a cluster with Prometheus.
type MonitorOptions struct {
	Dir        string // the monitoring directory (configuration, targets, data)
	Prometheus string // the Prometheus binary; "" finds it on PATH
	Listen     string // host:port for Prometheus (default 127.0.0.1:9090)
	// ConfigOnly writes the configuration and returns, for a Prometheus the user runs.
	ConfigOnly bool
	// Refresh is how often the targets follow the cluster's workers (default 10s).
	Refresh time.Duration
	// ScrapeInterval is how often Prometheus scrapes (default 10s).
	ScrapeInterval time.Duration
	// Discovery is how Prometheus finds the agents: DiscoverAgents (default; the targets file,
	// kept up to date from the master's agent) or DiscoverEC2 (by the cluster's tag, for a
	// Prometheus inside the cluster's network).
	Discovery string
	// Ready, when set, is told once Prometheus runs (or the configuration is written).
	Ready func(MonitorInfo)
}

// Discovery modes of Monitor.
const (
	DiscoverAgents = "agents"
	DiscoverEC2    = "ec2"
)

// MonitorInfo says where things are.
type MonitorInfo struct {
	Cluster string `json:"cluster"`
	Dir     string `json:"dir"`
	Config  string `json:"config"`
	Grafana string `json:"grafanaProvisioning"`
	URL     string `json:"url"` // Prometheus; for ConfigOnly, where the datasource expects it
	Agents  int    `json:"agents"`
	Spark   int    `json:"spark"`
}

// Monitor writes a Prometheus configuration for a cluster and, unless o.ConfigOnly, runs
// Prometheus on it until ctx ends, keeping its targets in step with the cluster's nodes. When
// the cluster goes away Prometheus keeps running, so that its data can still be looked at.
func (m *Manager) Monitor(ctx context.Context, ref Ref, o MonitorOptions) error {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:9090"
	}
	if o.Refresh <= 0 {
		o.Refresh = 10 * time.Second
	}
	client, _, err := m.connect(ctx, ref)
	if err != nil {
		return err
	}
	var bin string
	if !o.ConfigOnly {
		if bin, err = monitoring.FindPrometheus(o.Prometheus); err != nil {
			return fmt.Errorf("%w; sparkplane monitor --config-only writes the configuration for a Prometheus of your own", err)
		}
	}
	mo := monitoring.Options{ScrapeInterval: o.ScrapeInterval}
	if err := m.scrapeOptions(ctx, ref, o.Discovery, &mo); err != nil {
		return err
	}
	if err := monitoring.WriteConfig(o.Dir, client.Token, mo); err != nil {
		return fmt.Errorf("write the Prometheus configuration: %w", err)
	}
	url := "http://" + o.Listen
	if err := monitoring.WriteGrafana(o.Dir, url, nil); err != nil {
		return fmt.Errorf("write the Grafana provisioning: %w", err)
	}
	targets := func(ctx context.Context) (monitoring.Targets, error) {
		st, err := client.Status(ctx)
		if err != nil {
			return monitoring.Targets{}, err
		}
		return monitoring.TargetsOf(ref.Name, client.BaseURL, st)
	}
	t, err := targets(ctx)
	if err != nil {
		return fmt.Errorf("ask %s for its nodes: %w", ref.Name, err)
	}
	if _, err := monitoring.WriteTargets(o.Dir, t); err != nil {
		return err
	}
	info := MonitorInfo{Cluster: ref.Name, Dir: o.Dir, Config: filepath.Join(o.Dir, monitoring.ConfigFile),
		Grafana: filepath.Join(o.Dir, monitoring.GrafanaDir, "provisioning"), URL: url, Agents: len(t.Agents), Spark: len(t.Spark)}
	if o.ConfigOnly {
		if o.Ready != nil {
			o.Ready(info)
		}
		return nil
	}

	p := m.progress()
	p.Start("starting Prometheus")
	srv, err := monitoring.StartPrometheus(ctx, monitoring.ServerOptions{Bin: bin, Dir: o.Dir, Listen: o.Listen})
	if err != nil {
		p.Fail("Prometheus did not start")
		return err
	}
	defer srv.Stop()
	p.Done(fmt.Sprintf("Prometheus at %s, scraping %d agent(s) and %d Spark endpoint(s)", srv.URL, len(t.Agents), len(t.Spark)))
	if o.Ready != nil {
		o.Ready(info)
	}

	tick := time.NewTicker(o.Refresh)
	defer tick.Stop()
	gone := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-srv.Done():
			return fmt.Errorf("prometheus exited (%v); see %s", srv.Err(), filepath.Join(o.Dir, monitoring.LogFile))
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, o.Refresh)
		t, err := targets(cctx)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			if !gone {
				p.Warn(fmt.Sprintf("%s does not answer (%v); Prometheus keeps what it has. Ctrl-C stops it", ref.Name, err))
				gone = true
			}
			continue
		}
		if gone {
			p.Info(ref.Name + " answers again")
			gone = false
		}
		if changed, err := monitoring.WriteTargets(o.Dir, t); err != nil {
			p.Warn("update the targets: " + err.Error())
		} else if changed {
			p.Info(fmt.Sprintf("targets: %d agent(s), %d Spark endpoint(s)", len(t.Agents), len(t.Spark)))
		}
	}
}

// scrapeOptions adds what the provider says Prometheus needs to reach the agents.
func (m *Manager) scrapeOptions(ctx context.Context, ref Ref, discovery string, o *monitoring.Options) error {
	p, err := m.resolve(ctx, ref)
	if err != nil {
		return err
	}
	var info *provider.ScrapeInfo
	if s, ok := p.(provider.Scrapable); ok {
		if info, err = s.ScrapeInfo(ctx, ref.Name); err != nil {
			return err
		}
	}
	switch discovery {
	case "", DiscoverAgents:
	case DiscoverEC2:
		if info == nil || info.EC2 == nil {
			return fmt.Errorf("%s is not on EC2; --discovery ec2 is for AWS clusters", ref.Name)
		}
		o.EC2 = &monitoring.EC2Discovery{Cluster: ref.Name, Region: info.EC2.Region, Endpoint: info.EC2.Endpoint, Port: info.EC2.Port}
	default:
		return fmt.Errorf("discovery %q: use %s or %s", discovery, DiscoverAgents, DiscoverEC2)
	}
	if info != nil && len(info.AgentCA) > 0 {
		o.AgentTLS = &monitoring.AgentTLS{CA: info.AgentCA, ServerName: info.ServerName}
	}
	return nil
}
