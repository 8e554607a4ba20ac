// Package aws is the AWS provider: clusters of EC2 instances made by the Terraform module in
// terraform/aws, which sparkplane drives with terraform-exec, and run by the sparkplane agent on
// every node. Everything at run time (adding and removing workers, reading what exists, the
// secrets, the artifacts) goes through the AWS SDK, not Terraform.
//
// What a cluster is on AWS:
//
//   - Terraform's working directory, $SPARKPLANE_HOME/aws/NAME: the module, a root module
//     (main.tf.json) with the cluster's inputs, the state (unless an S3 backend holds it) and
//     cluster.json (the spec and where its things are);
//   - the resources of the module, all tagged sparkplane/cluster=NAME;
//   - SSM SecureString parameters /sparkplane/NAME/secret (the cluster token and Spark's shared
//     secret) and /sparkplane/NAME/tls-key (the agent API's TLS key): never in Terraform's state
//     nor in user-data;
//   - objects under the cluster's S3 prefix: the sparkplane binary for the nodes' architecture,
//     the Spark tarball, spec.json, tls/agent.crt, and endpoint.json, which the master's agent
//     writes once it serves its API.
package aws

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// Name is the provider's name in specs.
const Name = "aws"

// Options configure the provider.
type Options struct {
	// Root is sparkplane's state directory; working directories go under Root/aws.
	Root string
	// Terraform is the terraform binary (default: terraform on PATH).
	Terraform string
	// PluginCache is Terraform's plugin cache, shared by every cluster's working directory
	// (none when empty).
	PluginCache string
	// Binary returns the sparkplane binary for linux and an architecture ("amd64", "arm64"), to
	// upload for the nodes (default: this executable when it is that, else
	// sparkplane-linux-ARCH next to it).
	Binary func(arch string) (string, error)
	// AWSConfig loads the SDK's configuration for a region (default: the environment, shared
	// config and profiles, SSO, as the AWS CLI does).
	AWSConfig func(ctx context.Context, region string) (aws.Config, error)
	// AgentWait bounds the wait for the master's agent after apply (default 10 minutes).
	AgentWait time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// InCluster, on a node, is the cluster the provider acts for from inside: no working
	// directory, no Terraform; the group and the instances only.
	InCluster *record
}

// Provider makes clusters on AWS.
type Provider struct {
	opts Options
}

var (
	_ provider.Provider        = (*Provider)(nil)
	_ provider.AgentTransport  = (*Provider)(nil)
	_ provider.Scrapable       = (*Provider)(nil)
	_ provider.EventLogFetcher = (*Provider)(nil)
)

// New returns the provider.
func New(o Options) *Provider {
	if o.Terraform == "" {
		o.Terraform = "terraform"
	}
	if o.Binary == nil {
		o.Binary = defaultBinary
	}
	if o.AWSConfig == nil {
		o.AWSConfig = func(ctx context.Context, region string) (aws.Config, error) {
			var opts []func(*config.LoadOptions) error
			if region != "" {
				opts = append(opts, config.WithRegion(region))
			}
			return config.LoadDefaultConfig(ctx, opts...)
		}
	}
	if o.AgentWait == 0 {
		o.AgentWait = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Provider{opts: o}
}

func (p *Provider) Name() string { return Name }

func (p *Provider) Capabilities() provider.Capabilities {
	return provider.Capabilities{Spot: true, Autoscale: []string{spec.PolicySpark, spec.PolicyCPU}, LaunchLatency: 90 * time.Second,
		ShipsSpark: true}
}

// EventLogDir: each node keeps Spark's event logs on its disk, and its agent copies them to the
// cluster's prefix; FetchEventLogs brings them to this machine, where destroy keeps a last copy.
func (p *Provider) EventLogDir(name string, c *spec.Cluster) string {
	bucket := c.Storage.Bucket
	if bucket == "" {
		if rec, err := p.readRecord(name); err == nil {
			bucket = rec.Bucket
		}
	}
	return fmt.Sprintf("s3://%s/%sevent-logs/", bucket, Prefix(c))
}

// defaultBinary finds the sparkplane binary for linux/arch.
func defaultBinary(arch string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if runtime.GOOS == "linux" && runtime.GOARCH == arch {
		return self, nil
	}
	name := "sparkplane-linux-" + arch
	candidate := filepath.Join(filepath.Dir(self), name)
	if _, err := os.Stat(candidate); err == nil {
		return candidate, nil
	}
	return "", fmt.Errorf("the nodes need sparkplane for linux/%s, and this is %s/%s: build it (make dist) and put %s next to %s",
		arch, runtime.GOOS, runtime.GOARCH, name, self)
}

// awsConfig is the SDK configuration for a cluster's region and endpoint.
func (p *Provider) awsConfig(ctx context.Context, c *spec.Cluster) (aws.Config, error) {
	region, endpoint := "", ""
	if c.AWS != nil {
		region, endpoint = c.AWS.Region, c.AWS.Endpoint
	}
	cfg, err := p.opts.AWSConfig(ctx, region)
	if err != nil {
		return cfg, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return cfg, errors.New("no AWS region: set aws.region in the spec, or AWS_REGION, or a region in your AWS profile")
	}
	if endpoint != "" {
		cfg.BaseEndpoint = aws.String(endpoint)
	}
	return cfg, nil
}

// validate checks what the spec must say for AWS.
func validate(c *spec.Cluster) error {
	if c.AWS == nil || len(c.AWS.AllowedCIDRs) == 0 {
		return c.Origin.Errorf("aws.allowedCIDRs", "list the networks you will reach the cluster from, e.g. your address as 198.51.100.7/32",
			"required for provider aws: only these networks may reach the agent API")
	}
	if c.Workers.Count < c.Workers.Min {
		return c.Origin.Errorf("workers.count", "", "%d workers is below workers.min %d", c.Workers.Count, c.Workers.Min)
	}
	for _, t := range append([]string{c.Master.InstanceType}, c.Workers.InstanceTypes...) {
		if t != "" && !strings.Contains(t, ".") {
			return c.Origin.Errorf("workers.instanceTypes", "e.g. m5.xlarge", "%q is not an EC2 instance type", t)
		}
	}
	return nil
}
