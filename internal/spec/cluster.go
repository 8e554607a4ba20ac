// Package spec reads, defaults and validates cluster specs.
//
// A spec is YAML of a versioned kind (today only sparkplane.dev/v1alpha1). It is decoded strictly
// into the versioned types, so an unknown or misspelled field is an error; command-line overrides
// are applied to the YAML tree before decoding, so they are checked the same way; the result is
// converted to the internal Cluster type, defaulted and validated. Every error names where the
// value came from (file:line:column, or the flag), the field path, and how to mend it.
package spec

import (
	"strings"
	"time"

	"github.com/sparkplane/sparkplane/internal/spark"
)

// Providers this build knows by name. Whether one can be used is the provider registry's answer.
var Providers = []string{"local", "aws", "kubernetes", "nomad", "hosts"}

// Autoscale policies.
const (
	PolicyOff   = "off"
	PolicySpark = "spark"
	PolicyCPU   = "cpu"
)

// Submission paths.
const (
	SubmitSparkSubmit = "spark-submit"
	SubmitREST        = "rest"
)

// DefaultSparkVersion is the Spark release used when a spec names none: the newest release
// sparkplane is tested with.
var DefaultSparkVersion = spark.DefaultVersion()

// Cluster is the internal, defaulted and validated form of a spec. It is what the rest of the
// program uses; it is stored as JSON in the state database and in the agents' configuration.
type Cluster struct {
	Name       string      `json:"name"`
	Provider   string      `json:"provider"`
	Spark      Spark       `json:"spark"`
	Master     Master      `json:"master"`
	Workers    Workers     `json:"workers"`
	Autoscale  Autoscale   `json:"autoscale"`
	Lifetime   Lifetime    `json:"lifetime"`
	Storage    Storage     `json:"storage"`
	Monitoring Monitoring  `json:"monitoring"`
	AWS        *AWS        `json:"aws,omitempty"`
	Kubernetes *Kubernetes `json:"kubernetes,omitempty"`
	Nomad      *Nomad      `json:"nomad,omitempty"`
	Hosts      *Hosts      `json:"hosts,omitempty"`

	// Origin says where each field came from, for errors found after loading (by a provider, say).
	// It is nil for specs built in code.
	Origin *Origin `json:"-"`
}

type Spark struct {
	Version      string            `json:"version"`
	Home         string            `json:"home,omitempty"`
	Mirror       string            `json:"mirror,omitempty"`
	Conf         map[string]string `json:"conf,omitempty"`
	Authenticate bool              `json:"authenticate"`
	Submit       string            `json:"submit"`
}

type Master struct {
	InstanceType string `json:"instanceType,omitempty"`
	DiskGiB      int    `json:"diskGiB,omitempty"`
}

type Workers struct {
	Count         int      `json:"count"`
	Min           int      `json:"min"`
	Max           int      `json:"max"`
	Cores         int      `json:"cores"`
	MemoryMiB     int      `json:"memoryMiB"`
	InstanceTypes []string `json:"instanceTypes,omitempty"`
	Spot          bool     `json:"spot,omitempty"`
	DiskGiB       int      `json:"diskGiB,omitempty"`
}

type Autoscale struct {
	Policy    string        `json:"policy"`
	Headroom  int           `json:"headroom,omitempty"`
	Interval  time.Duration `json:"interval"`
	KeepAlive time.Duration `json:"keepAlive,omitempty"` // 0: derived from launch latency
}

type Lifetime struct {
	IdleTimeout time.Duration `json:"idleTimeout,omitempty"`
	MaxAge      time.Duration `json:"maxAge,omitempty"`
}

type Storage struct {
	Bucket    string `json:"bucket,omitempty"`
	Prefix    string `json:"prefix,omitempty"`
	Path      string `json:"path,omitempty"`
	Endpoint  string `json:"endpoint,omitempty"`
	PathStyle bool   `json:"pathStyle,omitempty"`
}

// UsesS3 says that the cluster's jobs read and write S3 (s3a://), so that its nodes need Hadoop's
// S3A connector: every AWS cluster, and any other whose storage names a bucket or an endpoint.
func (c *Cluster) UsesS3() bool {
	return c.Provider == "aws" || c.Storage.Bucket != "" || c.Storage.Endpoint != ""
}

type Monitoring struct {
	Prometheus bool `json:"prometheus,omitempty"`
	Grafana    bool `json:"grafana,omitempty"`
}

type AWS struct {
	Region       string   `json:"region,omitempty"`
	Zones        int      `json:"zones"`
	AllowedCIDRs []string `json:"allowedCIDRs,omitempty"`
	VPCID        string   `json:"vpcId,omitempty"`
	SubnetIDs    []string `json:"subnetIds,omitempty"`
	KeyName      string   `json:"keyName,omitempty"`
	Gateway      bool     `json:"gateway,omitempty"`
	Endpoint     string   `json:"endpoint,omitempty"`
	State        State    `json:"state"`
}

// State is where Terraform keeps a cluster's state: locally (the default), or in S3 with
// Terraform's S3 lockfile, so that a team shares it.
type State struct {
	Backend string `json:"backend"`
	Bucket  string `json:"bucket,omitempty"`
	Key     string `json:"key,omitempty"`
	Region  string `json:"region,omitempty"`
}

// State backends.
const (
	StateLocal = "local"
	StateS3    = "s3"
)

type Kubernetes struct {
	Kubeconfig string `json:"kubeconfig,omitempty"`
	Context    string `json:"context,omitempty"`
	Namespace  string `json:"namespace"`
}

type Nomad struct {
	Address     string   `json:"address,omitempty"`
	Region      string   `json:"region,omitempty"`
	Namespace   string   `json:"namespace,omitempty"`
	Datacenters []string `json:"datacenters,omitempty"`
	Driver      string   `json:"driver"`
	Image       string   `json:"image,omitempty"` // the docker driver's image
	Sparkplane  string   `json:"sparkplane"`
	NodePool    string   `json:"nodePool,omitempty"`
	// Constraints apply to every group of the cluster's job.
	Constraints []NomadConstraint `json:"constraints,omitempty"`
	// Spot names what marks a client node as spot capacity: workers.spot puts the workers on such
	// nodes (and false keeps them off); the master never runs on one.
	Spot *NomadConstraint `json:"spot,omitempty"`
	// Artifacts are what the client nodes download by Nomad's artifact block, checked against
	// their checksums, instead of finding them installed.
	Artifacts NomadArtifacts `json:"artifacts,omitzero"`
}

// NomadArtifacts are the files a Nomad cluster's tasks download.
type NomadArtifacts struct {
	Sparkplane *Artifact `json:"sparkplane,omitempty"` // the sparkplane binary for the client nodes
	Spark      *Artifact `json:"spark,omitempty"`      // a Spark release tarball of spark.version
}

// Artifact is a file at a URL, pinned by its SHA-256.
type Artifact struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
}

// NomadConstraint is one of Nomad's placement constraints: attribute, operator, value.
type NomadConstraint struct {
	Attribute string `json:"attribute"`
	Operator  string `json:"operator,omitempty"`
	Value     string `json:"value,omitempty"`
}

// Nomad task drivers sparkplane runs its agents under.
const (
	DriverRawExec = "raw_exec"
	DriverExec    = "exec"
	DriverDocker  = "docker"
)

type Hosts struct {
	Master       string   `json:"master"`
	Workers      []string `json:"workers,omitempty"`
	User         string   `json:"user,omitempty"`
	Port         int      `json:"port"`
	IdentityFile string   `json:"identityFile,omitempty"`
	KnownHosts   string   `json:"knownHosts,omitempty"` // "": ~/.ssh/known_hosts
	// Dir is where each host keeps the cluster's files ("": /var/lib/sparkplane for root,
	// ~/.local/share/sparkplane for another user).
	Dir string `json:"dir,omitempty"`
	// Jump is the host every other is reached through ([user@]host[:port]), or "".
	Jump string `json:"jump,omitempty"`
}

// Origin records where each field of a loaded spec came from.
type Origin struct {
	File string
	pos  map[string]Pos
}

// Pos returns where the field at path was set; for a field the spec left out, where its nearest
// enclosing block was set (the place to add it); else the file alone.
func (o *Origin) Pos(path string) Pos {
	if o == nil {
		return Pos{}
	}
	for p := path; p != ""; {
		if pos, ok := o.pos[p]; ok {
			return pos
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return Pos{File: o.File}
}

// Errorf makes a FieldError for the field at path, placed where the spec set it.
func (o *Origin) Errorf(path, hint, format string, args ...any) *FieldError {
	return newFieldError(o.Pos(path), path, hint, format, args...)
}
