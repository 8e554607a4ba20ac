// Package monitoring watches a cluster with Prometheus: it derives the scrape targets of a
// cluster (every agent's /metrics, and Spark's own PrometheusServlet on the master, the workers
// and the drivers), writes a Prometheus configuration that finds them through file-based service
// discovery, runs Prometheus, and ships Grafana dashboards with the files that provision them.
//
// A monitoring directory holds everything, with paths relative to it, so that it can be copied
// to another machine as it is:
//
//	prometheus.yml          the configuration
//	token                   the cluster token, for the agents' /metrics (mode 0600)
//	agent-ca.pem            the agents' certificate, when they serve TLS (AWS)
//	targets/agents.json     sparkplane agents, rewritten as workers come and go
//	targets/spark.json      Spark's daemons and drivers
//	data/                   Prometheus' storage
//	prometheus.log          its log, when sparkplane runs it
//	grafana/provisioning/   datasource and dashboard provisioning for Grafana
//	grafana/dashboards/     the dashboards
package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/fsutil"
)

// Files of a monitoring directory.
const (
	ConfigFile  = "prometheus.yml"
	TokenFile   = "token"
	AgentCAFile = "agent-ca.pem"
	AgentsFile  = "targets/agents.json"
	SparkFile   = "targets/spark.json"
	DataDir     = "data"
	LogFile     = "prometheus.log"
	GrafanaDir  = "grafana"
	AgentsJob   = "sparkplane"
	SparkJob    = "spark"
	MetricsPath = "/metrics"
)

// Spark's PrometheusServlet paths, as spark.MetricsProperties configures them.
const (
	sparkMasterPath = "/metrics/master/prometheus"
	sparkAppsPath   = "/metrics/applications/prometheus"
	sparkPath       = "/metrics/prometheus"
	// PrometheusResource on each driver (spark.ui.prometheus.enabled): its executors' metrics.
	sparkExecutorsPath = "/metrics/executors/prometheus"
)

// TargetGroup is one entry of a file_sd file: targets that share labels.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// Targets are what Prometheus scrapes of one cluster.
type Targets struct {
	Agents []TargetGroup `json:"agents"` // sparkplane agents: /metrics, with the cluster token
	Spark  []TargetGroup `json:"spark"`  // Spark's PrometheusServlet on the master, workers and drivers
}

// TargetsOf derives a cluster's targets from its master agent's URL and status. Every series
// gets the labels cluster and node; Spark's also get component (master, applications, worker,
// driver, executors), and a driver's its application id.
func TargetsOf(cluster, masterAgent string, st *agentapi.ClusterStatus) (Targets, error) {
	var t Targets
	add := func(list *[]TargetGroup, rawURL string, labels map[string]string) error {
		if rawURL == "" {
			return nil
		}
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("cluster %s: %q is not a URL of a host and port", cluster, rawURL)
		}
		labels["cluster"] = cluster
		*list = append(*list, TargetGroup{Targets: []string{u.Host}, Labels: labels})
		return nil
	}
	if err := add(&t.Agents, masterAgent, map[string]string{"node": agentapi.RoleMaster}); err != nil {
		return t, err
	}
	if st == nil {
		return t, nil
	}
	ui := st.Master.UI
	for _, err := range []error{
		add(&t.Spark, ui, map[string]string{"node": agentapi.RoleMaster, "component": "master", "__metrics_path__": sparkMasterPath}),
		add(&t.Spark, ui, map[string]string{"node": agentapi.RoleMaster, "component": "applications", "__metrics_path__": sparkAppsPath}),
	} {
		if err != nil {
			return t, err
		}
	}
	for _, w := range st.Workers {
		if w.NodeID == "" || w.State == "LOST" {
			continue
		}
		if err := add(&t.Agents, w.Agent, map[string]string{"node": w.NodeID}); err != nil {
			return t, err
		}
		if err := add(&t.Spark, w.SparkUI, map[string]string{"node": w.NodeID, "component": "worker", "__metrics_path__": sparkPath}); err != nil {
			return t, err
		}
	}
	for _, a := range st.Apps {
		for _, err := range []error{
			add(&t.Spark, a.UI, map[string]string{"component": "driver", "app": a.ID, "__metrics_path__": sparkPath}),
			add(&t.Spark, a.UI, map[string]string{"component": "executors", "app": a.ID, "__metrics_path__": sparkExecutorsPath}),
		} {
			if err != nil {
				return t, err
			}
		}
	}
	return t, nil
}

// Options shape the Prometheus configuration.
type Options struct {
	// ScrapeInterval is how often every target is scraped (default 10s).
	ScrapeInterval time.Duration
	// AgentTLS, when the agents serve TLS with the cluster's own certificate.
	AgentTLS *AgentTLS
	// EC2, when set, has Prometheus find the agents itself, by the cluster's tag, instead of
	// in the targets file: for a Prometheus inside the cluster's network.
	EC2 *EC2Discovery
}

// AgentTLS is the certificate the agents serve and the name in it.
type AgentTLS struct {
	CA         []byte // PEM
	ServerName string
}

// EC2Discovery finds a cluster's agents among EC2 instances by the cluster's tag.
type EC2Discovery struct {
	Cluster  string
	Region   string
	Port     int    // the agents' API port
	Endpoint string // the EC2 API, when not AWS's own (moto)
}

// config is the part of Prometheus' configuration file that sparkplane writes.
type config struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
}

type scrapeConfig struct {
	JobName       string         `yaml:"job_name"`
	MetricsPath   string         `yaml:"metrics_path,omitempty"`
	HonorLabels   bool           `yaml:"honor_labels,omitempty"`
	Scheme        string         `yaml:"scheme,omitempty"`
	Authorization *authorization `yaml:"authorization,omitempty"`
	TLS           *tlsConfig     `yaml:"tls_config,omitempty"`
	FileSD        []fileSD       `yaml:"file_sd_configs,omitempty"`
	EC2SD         []ec2SD        `yaml:"ec2_sd_configs,omitempty"`
	Relabel       []relabel      `yaml:"relabel_configs,omitempty"`
}

type tlsConfig struct {
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
}

type ec2SD struct {
	Region          string      `yaml:"region"`
	Endpoint        string      `yaml:"endpoint,omitempty"`
	Port            int         `yaml:"port"`
	RefreshInterval string      `yaml:"refresh_interval"`
	Filters         []ec2Filter `yaml:"filters"`
}

type ec2Filter struct {
	Name   string   `yaml:"name"`
	Values []string `yaml:"values"`
}

type relabel struct {
	SourceLabels []string `yaml:"source_labels,omitempty"`
	Separator    string   `yaml:"separator,omitempty"`
	Regex        string   `yaml:"regex,omitempty"`
	TargetLabel  string   `yaml:"target_label,omitempty"`
	Replacement  string   `yaml:"replacement,omitempty"`
	Action       string   `yaml:"action,omitempty"`
}

// ec2Agents discovers the master's and the workers' agents (the gateway runs none) and labels
// them as the targets file does: node is "master" or the worker's instance id.
func ec2Agents(d *EC2Discovery, refresh string) ([]ec2SD, []relabel) {
	sd := ec2SD{Region: d.Region, Endpoint: d.Endpoint, Port: d.Port, RefreshInterval: refresh, Filters: []ec2Filter{
		{Name: "tag:sparkplane/cluster", Values: []string{d.Cluster}},
		{Name: "instance-state-name", Values: []string{"running"}},
	}}
	role := "__meta_ec2_tag_sparkplane_role"
	return []ec2SD{sd}, []relabel{
		{SourceLabels: []string{role}, Regex: "master|worker", Action: "keep"},
		{SourceLabels: []string{role, "__meta_ec2_instance_id"}, Separator: ";", Regex: "master;.*", TargetLabel: "node", Replacement: "master"},
		{SourceLabels: []string{role, "__meta_ec2_instance_id"}, Separator: ";", Regex: "worker;(.*)", TargetLabel: "node", Replacement: "$1"},
		{TargetLabel: "cluster", Replacement: d.Cluster},
	}
}

type authorization struct {
	Type            string `yaml:"type"`
	CredentialsFile string `yaml:"credentials_file"`
}

type fileSD struct {
	Files           []string `yaml:"files"`
	RefreshInterval string   `yaml:"refresh_interval"`
}

// WriteConfig writes the Prometheus configuration, the token and (when they do not exist yet)
// empty target files into dir.
func WriteConfig(dir, token string, o Options) error {
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = 10 * time.Second
	}
	var c config
	c.Global.ScrapeInterval = o.ScrapeInterval.String()
	c.Global.EvaluationInterval = o.ScrapeInterval.String()
	refresh := o.ScrapeInterval.String()
	// The agents label their own series where it matters (the master's per-worker series carry
	// the worker's node), so their labels win over the target's.
	agents := scrapeConfig{JobName: AgentsJob, MetricsPath: MetricsPath, HonorLabels: true,
		Authorization: &authorization{Type: "Bearer", CredentialsFile: TokenFile}}
	if o.EC2 != nil {
		agents.EC2SD, agents.Relabel = ec2Agents(o.EC2, refresh)
	} else {
		agents.FileSD = []fileSD{{Files: []string{AgentsFile}, RefreshInterval: refresh}}
	}
	if o.AgentTLS != nil {
		agents.Scheme = "https"
		agents.TLS = &tlsConfig{CAFile: AgentCAFile, ServerName: o.AgentTLS.ServerName}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, AgentCAFile), o.AgentTLS.CA, 0o644); err != nil {
			return err
		}
	}
	c.ScrapeConfigs = []scrapeConfig{
		agents,
		{
			// Spark's servlet paths differ by daemon; each target carries its own.
			JobName: SparkJob,
			FileSD:  []fileSD{{Files: []string{SparkFile}, RefreshInterval: refresh}},
		},
	}
	var buf bytes.Buffer
	buf.WriteString("# Written by sparkplane monitor; paths are relative to this file's directory.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "targets"), 0o755); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, TokenFile), []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	for _, f := range []string{AgentsFile, SparkFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); os.IsNotExist(err) {
			if err := fsutil.WriteFileAtomic(filepath.Join(dir, f), []byte("[]\n"), 0o644); err != nil {
				return err
			}
		}
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, ConfigFile), buf.Bytes(), 0o644)
}

// WriteTargets replaces the target files, atomically: Prometheus never reads half of one.
// It reports whether anything changed.
func WriteTargets(dir string, t Targets) (bool, error) {
	changed := false
	for f, groups := range map[string][]TargetGroup{AgentsFile: t.Agents, SparkFile: t.Spark} {
		sort.SliceStable(groups, func(i, j int) bool { return groups[i].Targets[0] < groups[j].Targets[0] })
		if groups == nil {
			groups = []TargetGroup{}
		}
		b, err := json.MarshalIndent(groups, "", "  ")
		if err != nil {
			return false, err
		}
		b = append(b, '\n')
		path := filepath.Join(dir, f)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
			continue
		}
		if err := fsutil.WriteFileAtomic(path, b, 0o644); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}
