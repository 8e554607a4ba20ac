package aws

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/sparkplane/sparkplane/internal/spec"
)

// Defaults for what a spec leaves open on AWS.
const (
	DefaultMasterType = "m5.large"
	DefaultWorkerType = "m5.xlarge"
	AgentPort         = 7443
)

// armTypeRe matches Graviton instance types: family letters, a generation digit, then g among the
// attribute letters (m6g, c7gn, r6gd, t4g, im4gn, x2gd, g5g), and the first generation, a1.
var armTypeRe = regexp.MustCompile(`^([a-z]+[0-9]+[a-z]*g[a-z]*|a1)\.`)

// Architecture is the CPU architecture of instance types ("x86_64" or "arm64"); types of both
// kinds in one cluster are an error, as one AMI and one binary serve every node.
func Architecture(types ...string) (string, error) {
	arch := ""
	for _, t := range types {
		a := "x86_64"
		if armTypeRe.MatchString(t) {
			a = "arm64"
		}
		if arch != "" && a != arch {
			return "", fmt.Errorf("instance types %s mix x86_64 and arm64 machines; pick types of one architecture", strings.Join(types, ", "))
		}
		arch = a
	}
	if arch == "" {
		arch = "x86_64"
	}
	return arch, nil
}

// GoArch is Go's name for an instance architecture: the suffix of the binary the nodes run.
func GoArch(arch string) string {
	if arch == "arm64" {
		return "arm64"
	}
	return "amd64"
}

// Prefix is the cluster's key prefix in its bucket.
func Prefix(c *spec.Cluster) string {
	if c.Storage.Prefix != "" {
		return strings.TrimSuffix(c.Storage.Prefix, "/") + "/"
	}
	return "clusters/" + c.Name + "/"
}

// ParameterPath is the SSM path of the cluster's secrets.
func ParameterPath(name string) string { return "/sparkplane/" + name + "/" }

// Inputs are the module's variables for a cluster, with its bucket already chosen.
func Inputs(c *spec.Cluster, bucket string) (map[string]any, error) {
	a := c.AWS
	if a == nil {
		a = &spec.AWS{Zones: 1}
	}
	master := c.Master.InstanceType
	if master == "" {
		master = DefaultMasterType
	}
	workers := c.Workers.InstanceTypes
	if len(workers) == 0 {
		workers = []string{DefaultWorkerType}
	}
	arch, err := Architecture(append([]string{master}, workers...)...)
	if err != nil {
		return nil, err
	}
	onDemandBase := 0
	if c.Workers.Spot {
		onDemandBase = 1 // drivers (cluster deploy mode) need a worker that stays
	}
	in := map[string]any{
		"name":                   c.Name,
		"zones":                  max(1, a.Zones),
		"allowed_cidrs":          a.AllowedCIDRs,
		"agent_port":             AgentPort,
		"architecture":           arch,
		"master_instance_type":   master,
		"master_data_volume_gib": c.Master.DiskGiB,
		"worker_instance_types":  workers,
		"worker_data_volume_gib": c.Workers.DiskGiB,
		"workers_min":            c.Workers.Min,
		"workers_max":            c.Workers.Max,
		"workers_desired":        c.Workers.Count,
		"spot":                   c.Workers.Spot,
		"on_demand_base":         onDemandBase,
		"gateway":                a.Gateway,
		"bucket_name":            bucket,
		"s3_prefix":              Prefix(c),
		"parameter_path":         ParameterPath(c.Name),
		"spark_version":          c.Spark.Version,
		"autoscale_policy":       c.Autoscale.Policy,
		"tags":                   map[string]string{"sparkplane/managed-by": "sparkplane"},
	}
	if a.VPCID != "" {
		in["vpc_id"], in["subnet_ids"] = a.VPCID, a.SubnetIDs
	}
	if a.KeyName != "" {
		in["ssh_key_name"] = a.KeyName
	}
	if m := c.Monitoring; m.Prometheus || m.Grafana {
		in["prometheus"], in["grafana"] = true, m.Grafana
	}
	return in, nil
}
