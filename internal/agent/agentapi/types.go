// Package agentapi is the agent's contract: its configuration file, the JSON of its HTTP API,
// and a typed client. It depends on nothing else of the agent, so that providers and the CLI can
// use it without importing the agent itself.
package agentapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"time"

	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
)

// Roles of a node.
const (
	RoleMaster = "master"
	RoleWorker = "worker"
)

// Config is an agent's configuration file, written by the provider that starts the agent. It
// holds no secret: the cluster secret is read from TokenFile.
type Config struct {
	Cluster   string `json:"cluster"`
	Provider  string `json:"provider"`
	Role      string `json:"role"`
	NodeID    string `json:"nodeId"`
	Dir       string `json:"dir"`    // the node's directory: conf, logs, work, jobs
	Listen    string `json:"listen"` // API address; port 0 picks one
	Host      string `json:"host"`   // the address Spark and the API advertise
	SparkHome string `json:"sparkHome"`
	JavaHome  string `json:"javaHome,omitempty"`
	TokenFile string `json:"tokenFile"`
	// S3AConnector is a directory on this node holding Hadoop's S3A connector for its Spark
	// (spark.Connector), for a cluster whose jobs use S3; empty otherwise.
	S3AConnector string       `json:"s3aConnector,omitempty"`
	Spec         spec.Cluster `json:"spec"`
	CreatedAt    time.Time    `json:"createdAt"`
	// OneHost says that every node of the cluster runs on this host (the local provider), so
	// that what describes the host (SPARK_LOCAL_IP) holds on every node.
	OneHost bool `json:"oneHost,omitempty"`

	// Master only.
	StateDB     string `json:"stateDB,omitempty"`     // the user's state database, when it is on this machine
	EventLogDir string `json:"eventLogDir,omitempty"` // Spark event logs
	// Worker only: the master's agent, which tells the worker where the Spark master is.
	MasterAgent string `json:"masterAgent,omitempty"`

	// TLS, when set, makes the API HTTPS with this certificate and key; agents trust exactly
	// this certificate when they call each other.
	TLS *TLSFiles `json:"tls,omitempty"`
}

// TLSFiles are a PEM certificate and key.
type TLSFiles struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// TLSServerName is the name in every cluster's agent certificate; clients check it rather than
// an address, since nodes come and go with new addresses.
const TLSServerName = "sparkplane-agent"

// PinnedClient is an HTTP client for agents that serve TLS: it trusts exactly the certificate in
// certPEM, under TLSServerName.
func PinnedClient(certPEM []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		return nil, errors.New("the cluster's agent certificate is not PEM")
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: TLSServerName, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment}}, nil
}

// Interruption is notice that this node is going away (a spot interruption, a termination by
// its group): the agent drains what it can, then calls Done.
type Interruption struct {
	Reason string // "spot-interruption", "terminating"
	// Deadline is when the node goes regardless.
	Deadline time.Time
	// Done is called once the node is drained, or given up on.
	Done func()
}

// Endpoint is what an agent writes next to its config once its API listens.
type Endpoint struct {
	URL       string    `json:"url"` // API base URL
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"startedAt"`
}

// EndpointFile is the endpoint's file name in the node's directory.
const EndpointFile = "endpoint.json"

// Health is the unauthenticated answer of /v1/health.
type Health struct {
	OK      bool   `json:"ok"`
	Role    string `json:"role"`
	Version string `json:"version"`
}

// Daemon is the state of the Spark daemon an agent supervises.
type Daemon struct {
	Running   bool      `json:"running"`
	PID       int       `json:"pid,omitempty"`
	Restarts  int       `json:"restarts"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	LastError string    `json:"lastError,omitempty"`
}

// MasterInfo is the Spark master as its agent sees it.
type MasterInfo struct {
	URL     string `json:"url"`   // spark://host:port
	UI      string `json:"ui"`    // http://host:port
	State   string `json:"state"` // Spark's RecoveryState, or "" when the master does not answer
	REST    string `json:"rest,omitempty"`
	Daemon  Daemon `json:"daemon"`
	Version string `json:"sparkVersion,omitempty"`
}

// WorkerStatus is one worker: the agent's node joined with Spark's view of it.
type WorkerStatus struct {
	NodeID      string    `json:"nodeId"`
	Agent       string    `json:"agent,omitempty"`   // the worker agent's API URL
	SparkID     string    `json:"sparkId,omitempty"` // Spark's worker id
	SparkUI     string    `json:"sparkUI,omitempty"` // the Spark worker's web UI
	State       string    `json:"state"`             // Spark's worker state, or STARTING / LOST
	Cores       int       `json:"cores"`
	CoresUsed   int       `json:"coresUsed"`
	MemoryMiB   int       `json:"memoryMiB"`
	MemoryUsed  int       `json:"memoryUsedMiB"`
	Drivers     int       `json:"drivers"`   // drivers running on it
	Executors   int       `json:"executors"` // applications with executors on it
	LastSeen    time.Time `json:"lastSeen,omitzero"`
	Registering bool      `json:"registering,omitempty"`
	// Interrupted says why the node is going away (spot-interruption, terminating), if it is.
	Interrupted string `json:"interrupted,omitempty"`
}

// AppStatus is one Spark application.
type AppStatus struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	State    string        `json:"state"`
	Cores    int           `json:"cores"`
	Duration time.Duration `json:"duration"`
	UI       string        `json:"ui,omitempty"` // its driver's web UI, when the master's agent knows it
}

// Lifetime says when the cluster will remove itself.
type Lifetime struct {
	CreatedAt    time.Time     `json:"createdAt"`
	MaxAge       time.Duration `json:"maxAge,omitempty"`
	IdleTimeout  time.Duration `json:"idleTimeout,omitempty"`
	IdleSince    time.Time     `json:"idleSince,omitzero"` // zero while busy
	DestroyAt    time.Time     `json:"destroyAt,omitzero"` // the earlier of the two limits, if any
	DestroyCause string        `json:"destroyCause,omitempty"`
}

// ClusterStatus is the master agent's /v1/status.
type ClusterStatus struct {
	Cluster    string           `json:"cluster"`
	Provider   string           `json:"provider"`
	Master     MasterInfo       `json:"master"`
	Workers    []WorkerStatus   `json:"workers"`
	Apps       []AppStatus      `json:"apps"`
	Jobs       []state.Job      `json:"jobs"` // the most recent ones
	Lifetime   Lifetime         `json:"lifetime"`
	Autoscale  *AutoscaleStatus `json:"autoscale,omitempty"`
	Events     []state.Event    `json:"events,omitempty"`
	Cores      int              `json:"cores"` // over alive workers
	CoresUsed  int              `json:"coresUsed"`
	MemoryMiB  int              `json:"memoryMiB"`
	MemoryUsed int              `json:"memoryUsedMiB"`
}

// AliveWorkers counts the workers Spark has registered and not lost.
func (s *ClusterStatus) AliveWorkers() int {
	n := 0
	for _, w := range s.Workers {
		if w.State == "ALIVE" {
			n++
		}
	}
	return n
}

// AutoscaleStatus is what the autoscaler is doing.
type AutoscaleStatus struct {
	Policy         string        `json:"policy"`
	LastDecision   string        `json:"lastDecision"`
	LastDecisionAt time.Time     `json:"lastDecisionAt,omitzero"`
	LaunchLatency  time.Duration `json:"launchLatency"` // the estimate the policy uses
	Requested      int           `json:"requested"`     // workers asked for, not yet in Spark
	Draining       int           `json:"draining"`
	Recent         []Decision    `json:"recent,omitempty"` // the last decisions carried out, latest last
}

// Decision is one scaling decision the autoscaler carried out.
type Decision struct {
	At      time.Time `json:"at"`
	Summary string    `json:"summary"` // "scale out +2: …"
	Cause   string    `json:"cause"`
	Nodes   []string  `json:"nodes,omitempty"` // the workers added or removed
	Error   string    `json:"error,omitempty"`
}

// Git names code to clone on the master node (seed 003's throw-away runs).
type Git struct {
	URL  string `json:"url"`
	Ref  string `json:"ref,omitempty"`
	Path string `json:"path"` // the application inside the repository
}

// JobRequest is a submission. Resource is a URL, or the name of an uploaded file; Git, when set,
// replaces Resource.
type JobRequest struct {
	Name     string            `json:"name,omitempty"`
	Resource string            `json:"resource,omitempty"`
	Git      *Git              `json:"git,omitempty"`
	Class    string            `json:"class,omitempty"`
	Conf     map[string]string `json:"conf,omitempty"`
	Args     []string          `json:"args,omitempty"`
	PyFiles  []string          `json:"pyFiles,omitempty"` // URLs or uploaded names
	Jars     []string          `json:"jars,omitempty"`
	Files    []string          `json:"files,omitempty"`
}

// AddWorkersRequest starts Count more workers.
type AddWorkersRequest struct {
	Count int `json:"count"`
}

// RemoveWorkersRequest drains and stops workers: the named ones, or Count idle ones.
type RemoveWorkersRequest struct {
	Nodes        []string      `json:"nodes,omitempty"`
	Count        int           `json:"count,omitempty"`
	DrainTimeout time.Duration `json:"drainTimeout,omitempty"`
	Force        bool          `json:"force,omitempty"` // stop even workers that still run drivers
	// DrainOnly: decommission the workers in Spark and let go of them, but leave their nodes to
	// the caller, who removes them through the provider (Capabilities.ScaledFromHere).
	DrainOnly bool `json:"drainOnly,omitempty"`
}

// WorkersResult lists the workers an add or remove touched.
type WorkersResult struct {
	Nodes []string `json:"nodes"`
}

// Registration is what a worker agent tells the master's agent, at start and then periodically.
type Registration struct {
	NodeID    string `json:"nodeId"`
	Agent     string `json:"agent"`             // the worker agent's API URL
	SparkUI   string `json:"sparkUI,omitempty"` // its Spark worker's web UI
	SparkID   string `json:"sparkId,omitempty"` // its Spark worker's id, once Spark registered it
	Executors int    `json:"executors"`         // executors running on it
	Daemon    Daemon `json:"daemon"`
	// Interrupted says why the node is going away (spot-interruption, terminating), once it knows.
	Interrupted string `json:"interrupted,omitempty"`
}

// RegistrationReply tells a worker agent where the Spark master is.
type RegistrationReply struct {
	MasterURL string `json:"masterURL"`
	// SparkState, for a worker that says it is going away, is its state in the Spark master
	// (DECOMMISSIONED once the master has heard of it), or "" if the master does not list it.
	SparkState string `json:"sparkState,omitempty"`
}

// WorkerNodeStatus is a worker agent's own /v1/status.
type WorkerNodeStatus struct {
	NodeID         string `json:"nodeId"`
	SparkID        string `json:"sparkId,omitempty"`
	SparkUI        string `json:"sparkUI"`
	Daemon         Daemon `json:"daemon"`
	Executors      int    `json:"executors"`
	Decommissioned bool   `json:"decommissioned"`
}

// Log streams.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Headers of a log chunk response.
const (
	HeaderOffset = "X-Sparkplane-Offset" // where the next read starts
	HeaderDone   = "X-Sparkplane-Done"   // "true" once nothing more will be written
)

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
	Hint  string `json:"hint,omitempty"`
}
