package spec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// APIVersion is the only version of the spec this build reads.
const APIVersion = "sparkplane.dev/v1alpha1"

// The v1alpha1 types mirror the YAML a user writes. Pointers mark fields whose absence differs
// from their zero value, so that defaults apply only to what was left out. Every field carries a
// doc tag; docs/spec.md is checked against them.

type clusterV1 struct {
	APIVersion string        `yaml:"apiVersion" doc:"always sparkplane.dev/v1alpha1"`
	Kind       string        `yaml:"kind" doc:"always Cluster"`
	Name       string        `yaml:"name" doc:"cluster name: lower-case letters, digits and '-', at most 40"`
	Provider   string        `yaml:"provider" doc:"local (default), aws, kubernetes, nomad or hosts"`
	Spark      sparkV1       `yaml:"spark" doc:"the Spark distribution and its configuration"`
	Master     masterV1      `yaml:"master" doc:"the master node"`
	Workers    workersV1     `yaml:"workers" doc:"the worker nodes"`
	Autoscale  autoscaleV1   `yaml:"autoscale" doc:"how the worker count changes by itself"`
	Lifetime   lifetimeV1    `yaml:"lifetime" doc:"limits after which the cluster destroys itself"`
	Storage    storageV1     `yaml:"storage" doc:"where artifacts and event logs go"`
	Monitoring monitoringV1  `yaml:"monitoring" doc:"metrics and dashboards"`
	AWS        *awsV1        `yaml:"aws" doc:"settings for provider aws"`
	Kubernetes *kubernetesV1 `yaml:"kubernetes" doc:"settings for provider kubernetes"`
	Nomad      *nomadV1      `yaml:"nomad" doc:"settings for provider nomad"`
	Hosts      *hostsV1      `yaml:"hosts" doc:"settings for provider hosts"`
}

type sparkV1 struct {
	Version      string            `yaml:"version" doc:"Spark release, e.g. 4.3.0 or 3.5.9 (default: the newest release sparkplane is tested with; sparkplane version shows it)"`
	Home         string            `yaml:"home" doc:"an unpacked Spark, or a pip-installed pyspark package directory, to use instead of downloading one (local provider), or the Spark every client node has (nomad)"`
	Mirror       string            `yaml:"mirror" doc:"base URL to download Spark releases from (default https://dlcdn.apache.org, then https://archive.apache.org/dist)"`
	Conf         map[string]string `yaml:"conf" doc:"extra spark-defaults.conf properties, all values strings"`
	Authenticate *bool             `yaml:"authenticate" doc:"turn on spark.authenticate with a generated secret (default true)"`
	Submit       string            `yaml:"submit" doc:"spark-submit (default) or rest; rest needs authenticate: false"`
}

type masterV1 struct {
	InstanceType string `yaml:"instanceType" doc:"machine type of the master (cloud providers)"`
	DiskGiB      *int   `yaml:"diskGiB" doc:"size of the master's data volume in GiB (cloud providers)"`
}

type workersV1 struct {
	Count         *int     `yaml:"count" doc:"workers at creation (default 2)"`
	Min           *int     `yaml:"min" doc:"fewest workers the cluster may scale to (default 0)"`
	Max           *int     `yaml:"max" doc:"most workers the cluster may scale to (default the larger of count and 10)"`
	Cores         *int     `yaml:"cores" doc:"cores each worker offers to Spark (local and hosts; default 2)"`
	Memory        string   `yaml:"memory" doc:"memory each worker offers to Spark, as Spark writes it: 512m, 2g (local and hosts; default 2g)"`
	InstanceTypes []string `yaml:"instanceTypes" doc:"machine types for workers, most preferred first (cloud providers)"`
	Spot          *bool    `yaml:"spot" doc:"use spot capacity for workers (cloud providers; default false)"`
	DiskGiB       *int     `yaml:"diskGiB" doc:"size of each worker's data volume in GiB (cloud providers)"`
}

type autoscaleV1 struct {
	Policy    string    `yaml:"policy" doc:"off (default), spark or cpu"`
	Headroom  *int      `yaml:"headroom" doc:"idle cores the spark policy keeps beyond demand, so that arriving jobs need not wait for a launch (default 0)"`
	Interval  *duration `yaml:"interval" doc:"how often the autoscaler decides (default 10s)"`
	KeepAlive *duration `yaml:"keepAlive" doc:"how long the spark policy keeps an idle worker (default: one measured launch latency, at least 1m)"`
}

type lifetimeV1 struct {
	IdleTimeout *duration `yaml:"idleTimeout" doc:"destroy the cluster after it ran no job for this long, e.g. 30m"`
	MaxAge      *duration `yaml:"maxAge" doc:"destroy the cluster this long after it was created, e.g. 12h"`
}

type storageV1 struct {
	Bucket    string `yaml:"bucket" doc:"S3 bucket for artifacts and event logs (cloud providers); on any provider it puts Hadoop's S3A connector on every node, so that jobs read and write s3a://"`
	Prefix    string `yaml:"prefix" doc:"key prefix inside the bucket (default clusters/<name>/)"`
	Path      string `yaml:"path" doc:"directory for Spark event logs (local provider; relative to the spec file; default $SPARKPLANE_HOME/event-logs/<name>, kept after destroy)"`
	Endpoint  string `yaml:"endpoint" doc:"S3 endpoint URL for an S3-compatible store (MinIO, moto), e.g. http://127.0.0.1:9000; default AWS's endpoint for the region"`
	PathStyle *bool  `yaml:"pathStyle" doc:"address buckets by path (endpoint/bucket/key) rather than by host name, as most S3-compatible stores need (default true when endpoint is set)"`
}

type monitoringV1 struct {
	Prometheus *bool `yaml:"prometheus" doc:"run Prometheus for the cluster"`
	Grafana    *bool `yaml:"grafana" doc:"run Grafana with sparkplane's dashboards"`
}

type awsV1 struct {
	Region       string   `yaml:"region" doc:"AWS region (default from the environment or shared config)"`
	Zones        *int     `yaml:"zones" doc:"number of availability zones to spread workers over (default 1)"`
	AllowedCIDRs []string `yaml:"allowedCIDRs" doc:"networks allowed to reach the agent API"`
	VPCID        string   `yaml:"vpcId" doc:"existing VPC to use instead of creating one"`
	SubnetIDs    []string `yaml:"subnetIds" doc:"existing subnets to use (with vpcId)"`
	KeyName      string   `yaml:"keyName" doc:"EC2 key pair for SSH; no SSH when empty"`
	Gateway      *bool    `yaml:"gateway" doc:"add a gateway instance for client-mode work"`
	Endpoint     string   `yaml:"endpoint" doc:"override AWS API endpoints (S3-compatible and test servers)"`
	State        *stateV1 `yaml:"state" doc:"where Terraform keeps the cluster's state (default: local, in sparkplane's home)"`
}

type stateV1 struct {
	Backend string `yaml:"backend" doc:"local or s3"`
	Bucket  string `yaml:"bucket" doc:"S3 bucket for the state (backend s3)"`
	Key     string `yaml:"key" doc:"object key of the state (default sparkplane/NAME/terraform.tfstate)"`
	Region  string `yaml:"region" doc:"the state bucket's region (default the cluster's)"`
}

type kubernetesV1 struct {
	Kubeconfig string `yaml:"kubeconfig" doc:"path to a kubeconfig (default the usual lookup)"`
	Context    string `yaml:"context" doc:"kubeconfig context to use"`
	Namespace  string `yaml:"namespace" doc:"namespace for the cluster's objects (default sparkplane)"`
}

type nomadV1 struct {
	Address     string              `yaml:"address" doc:"Nomad API address (default NOMAD_ADDR)"`
	Region      string              `yaml:"region" doc:"Nomad region"`
	Namespace   string              `yaml:"namespace" doc:"Nomad namespace"`
	Datacenters []string            `yaml:"datacenters" doc:"datacenters the job may run in"`
	Driver      string              `yaml:"driver" doc:"task driver: exec (default), docker (with image), or raw_exec where the clients enable it"`
	Image       string              `yaml:"image" doc:"the docker driver's image: Java, and sparkplane and Spark unless nomad.artifacts brings them"`
	Sparkplane  string              `yaml:"sparkplane" doc:"path of the sparkplane binary on the client nodes (default /usr/local/bin/sparkplane)"`
	NodePool    string              `yaml:"nodePool" doc:"node pool the job runs in (Nomad's default pool if unset)"`
	Constraints []nomadConstraintV1 `yaml:"constraints" doc:"placement constraints on every node of the cluster"`
	Artifacts   *nomadArtifactsV1   `yaml:"artifacts" doc:"files the client nodes download, pinned by checksum, instead of finding them installed"`
	Spot        *nomadSpotV1        `yaml:"spot" doc:"what marks a spot client node, e.g. {attribute: '${node.class}', value: spot}: workers.spot puts workers on such nodes, the master never"`
}

type nomadArtifactsV1 struct {
	Sparkplane *artifactV1 `yaml:"sparkplane" doc:"the sparkplane binary for the client nodes (instead of nomad.sparkplane)"`
	Spark      *artifactV1 `yaml:"spark" doc:"a Spark release tarball of spark.version (instead of spark.home)"`
}

type artifactV1 struct {
	URL    string `yaml:"url" doc:"http(s) URL the client nodes download it from"`
	SHA256 string `yaml:"sha256" doc:"its SHA-256, in hex (sha256sum FILE)"`
}

type nomadSpotV1 struct {
	Attribute string `yaml:"attribute" doc:"the node attribute that marks spot capacity, e.g. ${node.class}"`
	Value     string `yaml:"value" doc:"its value on spot nodes"`
}

type nomadConstraintV1 struct {
	Attribute string `yaml:"attribute" doc:"the node attribute, e.g. ${meta.rack} or ${node.class}"`
	Operator  string `yaml:"operator" doc:"Nomad's constraint operator (default =)"`
	Value     string `yaml:"value" doc:"the value to compare with"`
}

type hostsV1 struct {
	Master       string   `yaml:"master" doc:"host name or address of the master"`
	Workers      []string `yaml:"workers" doc:"host names or addresses of the workers"`
	User         string   `yaml:"user" doc:"SSH user"`
	Port         *int     `yaml:"port" doc:"SSH port (default 22)"`
	IdentityFile string   `yaml:"identityFile" doc:"SSH private key file"`
	KnownHosts   string   `yaml:"knownHosts" doc:"known_hosts file the hosts' keys are checked against (default ~/.ssh/known_hosts)"`
	Dir          string   `yaml:"dir" doc:"directory on each host for sparkplane's files (default /var/lib/sparkplane as root, else ~/.local/share/sparkplane)"`
	Jump         string   `yaml:"jump" doc:"a host to reach the others through, [user@]host[:port] as ssh -J takes it; the agents' API is reached through it too"`
}

// duration is a time.Duration written as Go writes it ("90s", "1h30m"), with "d" for days.
type duration struct{ time.Duration }

var dayRe = regexp.MustCompile(`^(\d+)d(.*)$`)

func (d *duration) decodeScalar(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// ParseDuration parses a duration as Go does, with a leading whole number of days allowed ("2d12h").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	orig := s
	var days time.Duration
	if m := dayRe.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 3650 {
			return 0, fmt.Errorf("%q is not a duration this program can hold", orig)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = m[2]
		if s == "" {
			return days, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write it like 90s, 30m, 12h or 2d", orig)
	}
	return days + v, nil
}
