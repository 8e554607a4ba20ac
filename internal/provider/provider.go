// Package provider defines what a place to run clusters must do. A provider makes and unmakes the
// nodes of a cluster (processes, instances, pods, jobs) with an agent on each, keeps the cluster
// secret in its own secret store, and can rebuild what exists from its own resources alone, so that
// nothing depends on the machine that created a cluster.
//
// Everything Spark-specific happens in the agents; a provider only places them.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// Provider makes clusters in one kind of place. Every method takes the cluster's name; a provider
// keeps no state between calls beyond what its resources carry.
type Provider interface {
	// Name is the provider's name in specs ("local", "aws", …).
	Name() string
	// Capabilities says what this provider can do.
	Capabilities() Capabilities
	// Plan says what Create would make, and changes nothing.
	Plan(ctx context.Context, c *spec.Cluster) (*Plan, error)
	// Create makes the master node and the initial workers, each with its agent, and returns once
	// the master's agent answers. On error, whatever was made is left for Destroy.
	Create(ctx context.Context, c *spec.Cluster, opts CreateOptions) (*Cluster, error)
	// Get describes a cluster from the provider's own resources. ErrNotFound when none exist.
	Get(ctx context.Context, name string) (*Cluster, error)
	// List describes every cluster this provider can see.
	List(ctx context.Context) ([]Cluster, error)
	// Secret returns the cluster's secret (the agent API token and Spark's shared secret).
	Secret(ctx context.Context, name string) (string, error)
	// EventLogDir is where the cluster's Spark applications write their event logs, as a URL
	// Spark reads (file:///…, s3a://…). It depends only on the name and the spec, and it
	// outlives the cluster, so that a history server can read the logs after Destroy.
	EventLogDir(name string, c *spec.Cluster) string
	// AddWorkers makes n more workers and returns their node ids.
	AddWorkers(ctx context.Context, name string, n int) ([]string, error)
	// RemoveWorkers stops and removes exactly the given workers. Draining their Spark work first
	// is the caller's job.
	RemoveWorkers(ctx context.Context, name string, nodes []string) error
	// Destroy removes everything the cluster has. It succeeds when nothing is there, and it works
	// after a Create that failed half-way.
	Destroy(ctx context.Context, name string) error
}

// Capabilities are declared, so that callers never learn by trying.
type Capabilities struct {
	// LocalSpark: nodes run on this machine and use a Spark distribution from it.
	LocalSpark bool
	// SharedFilesystem: every node sees the same files, so job files need no upload to workers.
	SharedFilesystem bool
	// Spot: workers can run on interruptible capacity.
	Spot bool
	// Autoscale lists the autoscale policies the provider supports besides "off".
	Autoscale []string
	// LaunchLatency is how long a new worker typically takes to join Spark; the autoscaler
	// assumes it until it has measured launches of its own.
	LaunchLatency time.Duration
	// ShipsSpark: the provider takes a Spark distribution from this machine to its nodes
	// (CreateOptions.Spark), so that they never depend on Apache's mirrors.
	ShipsSpark bool
	// ScaledFromHere: the cluster's agents cannot make or unmake nodes (they hold no credential
	// to reach the others), so this machine adds and removes workers through the provider, with
	// the master's agent draining them in Spark first. The master's agent neither replaces lost
	// workers nor autoscales.
	ScaledFromHere bool
	// S3A: the provider puts the S3A connector of CreateOptions.S3A on its nodes, for a cluster
	// whose jobs use S3. Without it such a cluster gets none, and create says so.
	S3A bool
}

// A Finder finds clusters where a spec says to look (the hosts provider: on the machines the
// spec names), whichever machine made them, and remembers them, so that Get and the rest work
// on them here.
type Finder interface {
	Find(ctx context.Context, c *spec.Cluster) ([]Cluster, error)
}

// A HostAdder adds workers on machines the caller names, rather than on new ones it makes.
type HostAdder interface {
	AddHosts(ctx context.Context, name string, hosts []string) ([]string, error)
}

// AgentTransport is implemented by providers whose agents serve TLS with the cluster's own
// certificate: the client callers must use to reach them.
type AgentTransport interface {
	AgentHTTPClient(ctx context.Context, name string) (*http.Client, error)
}

// AgentClient is a client for a cluster's agent at url, over the provider's transport when it
// has one.
func AgentClient(ctx context.Context, p Provider, name, url, token string) (*agentapi.Client, error) {
	c := &agentapi.Client{BaseURL: url, Token: token}
	if t, ok := p.(AgentTransport); ok {
		h, err := t.AgentHTTPClient(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("the agents of %s: %w", name, err)
		}
		c.HTTP = h
	}
	return c, nil
}

// CreateOptions are what the cluster manager hands to Create besides the spec.
type CreateOptions struct {
	Secret string              // generated by the manager; the provider stores it
	Spark  *spark.Distribution // for providers with LocalSpark or ShipsSpark
	// S3A is Hadoop's S3A connector for Spark, for a cluster whose jobs use S3 (spec UsesS3).
	S3A *spark.Connector
	// Progress, when set, receives one line per step the provider finishes.
	Progress func(line string)
}

// Cluster is what a provider knows of a cluster.
type Cluster struct {
	Name      string        `json:"name"`
	Provider  string        `json:"provider"`
	Spec      *spec.Cluster `json:"spec,omitempty"`
	Agent     string        `json:"agent,omitempty"` // the master agent's API URL, when known
	Nodes     []Node        `json:"nodes"`
	CreatedAt time.Time     `json:"createdAt"`
	// Stopped says why and when, for a cluster that ended its own instances (its lifetime ran
	// out) and left what costs nothing for Destroy.
	Stopped string `json:"stopped,omitempty"`
}

// Node states.
const (
	NodeRunning  = "running"
	NodeStarting = "starting"
	NodeStopped  = "stopped"
)

// Node is one machine (or process) of a cluster.
type Node struct {
	ID        string    `json:"id"`
	Role      string    `json:"role"` // master | worker
	State     string    `json:"state"`
	Address   string    `json:"address,omitempty"`
	Agent     string    `json:"agent,omitempty"`
	Detail    string    `json:"detail,omitempty"` // provider-specific: pid, instance id, …
	CreatedAt time.Time `json:"createdAt,omitzero"`
}

// Workers returns the cluster's worker nodes.
func (c *Cluster) Workers() []Node {
	var out []Node
	for _, n := range c.Nodes {
		if n.Role == "worker" {
			out = append(out, n)
		}
	}
	return out
}

// Plan is what a mutating verb would do.
type Plan struct {
	Provider string   `json:"provider"`
	Changes  []Change `json:"changes"`
	// Detail is provider-specific text (a Terraform plan, say), shown as is.
	Detail string `json:"detail,omitempty"`
}

// Change actions.
const (
	Create  = "create"
	Update  = "update"
	Destroy = "destroy"
)

// Change is one resource a plan would create, change or destroy.
type Change struct {
	Action   string `json:"action"`
	Resource string `json:"resource"`
	Detail   string `json:"detail,omitempty"`
}

// ErrNotFound means the provider has no cluster of that name.
var ErrNotFound = errors.New("no such cluster")

// ExistsError means a cluster of that name is already there.
type ExistsError struct{ Name, Provider string }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("a cluster named %q already exists on provider %s; destroy it first (sparkplane destroy %s) or choose another name", e.Name, e.Provider, e.Name)
}

// Factory makes a provider. Providers are made on demand, so that one whose tools are missing
// costs nothing until it is used.
type Factory func() (Provider, error)

// Registry maps provider names to factories. It is built explicitly (no init side effects).
type Registry struct {
	factories map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{factories: map[string]Factory{}} }

// Register adds a provider.
func (r *Registry) Register(name string, f Factory) { r.factories[name] = f }

// UnavailableError names a provider this build does not have.
type UnavailableError struct {
	Name      string
	Available []string
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("provider %q is not in this build of sparkplane, which has %s", e.Name, strings.Join(e.Available, ", "))
}

// Get makes the named provider.
func (r *Registry) Get(name string) (Provider, error) {
	f, ok := r.factories[name]
	if !ok {
		return nil, &UnavailableError{Name: name, Available: r.Names()}
	}
	return f()
}

// Names lists the registered providers.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.factories))
	for n := range r.factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// EventLogFetcher is a provider whose event logs are in storage that Spark's history server on
// this machine cannot read as it is (s3://); FetchEventLogs copies what is new into a local
// directory, returns it and counts what it copied. It works after Destroy on what Destroy kept.
type EventLogFetcher interface {
	FetchEventLogs(ctx context.Context, name string) (dir string, fetched int, err error)
}

// Scrapable is implemented by providers whose agents a Prometheus needs more to reach than
// their addresses: a certificate to trust, or a cloud API to find them in.
type Scrapable interface {
	ScrapeInfo(ctx context.Context, name string) (*ScrapeInfo, error)
}

// ScrapeInfo says how a Prometheus reaches a cluster's agents.
type ScrapeInfo struct {
	AgentCA    []byte // PEM of the certificate every agent serves, when they serve TLS
	ServerName string // the name in it
	// EC2, when the agents can be found by the cluster's tag among EC2 instances.
	EC2 *EC2Scrape
}

// EC2Scrape is where EC2 discovery looks.
type EC2Scrape struct {
	Region   string
	Endpoint string // the EC2 API, when not AWS's own
	Port     int    // the agents' API port
}

// NodesEventLogDir is the event log directory of a provider whose nodes keep the logs
// themselves until a shared store is set: storage.bucket in S3, else storage.path, else
// /var/tmp/sparkplane/NAME/event-logs on the master's node.
func NodesEventLogDir(name string, c *spec.Cluster) string {
	if c != nil && c.Storage.Bucket != "" {
		prefix := c.Storage.Prefix
		if prefix == "" {
			prefix = "clusters/" + name + "/"
		}
		return fmt.Sprintf("s3a://%s/%sevent-logs/", c.Storage.Bucket, prefix)
	}
	if c != nil && c.Storage.Path != "" {
		return "file://" + c.Storage.Path
	}
	return "file:///var/tmp/sparkplane/" + name + "/event-logs"
}
