package aws

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/fsutil"
	"github.com/sparkplane/sparkplane/internal/node"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// NodeConfig is what the module's user-data writes to /etc/sparkplane/node.json: where a node's
// cluster keeps its things. It holds no secret.
type NodeConfig struct {
	Cluster       string `json:"cluster"`
	Role          string `json:"role"` // master | worker | gateway | monitoring
	Region        string `json:"region"`
	Bucket        string `json:"bucket"`
	Prefix        string `json:"prefix"`
	ParameterPath string `json:"parameterPath"`
	MasterHost    string `json:"masterHost"`
	AgentPort     int    `json:"agentPort"`
	SparkVersion  string `json:"sparkVersion"`
}

// Node-side environment overrides, for running a node outside EC2 (tests, other clouds' VMs).
const (
	EnvRoot   = "SPARKPLANE_EC2_ROOT"     // default /var/lib/sparkplane
	EnvListen = "SPARKPLANE_AGENT_LISTEN" // default :<agentPort>
)

// ec2Node is where a node of a cluster on EC2 finds its cluster (node.Source): its identity
// from IMDSv2, the secret and TLS key from SSM, the certificate, spec and Spark from S3, the
// master's agent from the endpoint it publishes there, and spot notices and terminations by the
// group from IMDSv2.
type ec2Node struct {
	nc   NodeConfig
	cfg  aws.Config
	meta *imds.Client
	a    *artifacts
	log  *slog.Logger

	instanceID, privateIP, publicIP string
	doc                             *SpecDoc
	inside                          *Provider
}

// NodeSource reads a node's node.json, written by the module's user-data, for `sparkplane agent
// --ec2` (node.Run).
func NodeSource(ctx context.Context, path string, log *slog.Logger) (node.Source, error) {
	var nc NodeConfig
	if err := fsutil.ReadJSON(path, &nc); err != nil {
		return nil, err
	}
	if nc.Cluster == "" || nc.Bucket == "" || nc.Prefix == "" {
		return nil, fmt.Errorf("%s lacks the cluster, bucket or prefix", path)
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(nc.Region))
	if err != nil {
		return nil, err
	}
	return &ec2Node{nc: nc, cfg: cfg, meta: imds.NewFromConfig(cfg), a: &artifacts{s3: newS3(cfg), bucket: nc.Bucket, prefix: nc.Prefix}, log: log}, nil
}

func (e *ec2Node) Identity(ctx context.Context) (node.Identity, error) {
	var err error
	if e.instanceID, err = metadata(ctx, e.meta, "instance-id"); err != nil {
		return node.Identity{}, fmt.Errorf("IMDS: %w", err)
	}
	if e.privateIP, err = metadata(ctx, e.meta, "local-ipv4"); err != nil {
		return node.Identity{}, fmt.Errorf("IMDS: %w", err)
	}
	e.publicIP, _ = metadata(ctx, e.meta, "public-ipv4") // none in a private subnet
	id := node.Identity{Cluster: e.nc.Cluster, Provider: Name, Role: e.nc.Role, NodeID: e.nc.Role, Host: e.privateIP,
		Root: cmp.Or(os.Getenv(EnvRoot), "/var/lib/sparkplane"), Listen: cmp.Or(os.Getenv(EnvListen), ":"+strconv.Itoa(e.nc.AgentPort)),
		NoSpark: e.nc.Role == RoleMonitoring}
	if e.nc.Role == agentapi.RoleWorker {
		id.NodeID = e.instanceID
	}
	return id, nil
}

func (e *ec2Node) spec(ctx context.Context) (*SpecDoc, error) {
	if e.doc != nil {
		return e.doc, nil
	}
	b, err := node.Retry(ctx, e.log, "the spec", func() ([]byte, error) { return e.a.get(ctx, keySpec) })
	if err != nil {
		return nil, err
	}
	var doc SpecDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("spec.json: %w", err)
	}
	e.doc = &doc
	return e.doc, nil
}

func (e *ec2Node) Cluster(ctx context.Context) (spec.Cluster, time.Time, error) {
	doc, err := e.spec(ctx)
	if err != nil {
		return spec.Cluster{}, time.Time{}, err
	}
	return doc.Spec, doc.CreatedAt, nil
}

func (e *ec2Node) Secrets(ctx context.Context) (node.Secrets, error) {
	params := ssm.NewFromConfig(e.cfg)
	secret, err := getParameter(ctx, params, e.nc.Cluster, secretParam)
	if err != nil {
		return node.Secrets{}, err
	}
	key, err := getParameter(ctx, params, e.nc.Cluster, tlsKeyParam)
	if err != nil {
		return node.Secrets{}, err
	}
	cert, err := e.a.get(ctx, keyCert)
	if err != nil {
		return node.Secrets{}, err
	}
	return node.Secrets{Token: secret, TLSKey: []byte(key), Cert: cert}, nil
}

// Spark is the distribution create uploaded to the cluster's prefix.
func (e *ec2Node) Spark(ctx context.Context, version, dir string) (string, error) {
	return node.UnpackSpark(ctx, version, dir, func(ctx context.Context, tgz string) error {
		return e.a.download(ctx, keySpark+spark.TarballName(version), tgz)
	})
}

// MasterAgent is the private URL in the endpoint the master's agent published.
func (e *ec2Node) MasterAgent(ctx context.Context) (string, error) {
	ep, err := node.Retry(ctx, e.log, "the master's endpoint", func() (*Endpoint, error) { return e.a.endpoint(ctx) })
	if err != nil {
		return "", err
	}
	return ep.PrivateURL, nil
}

// Publish writes endpoint.json to the cluster's prefix: the public address for users, the
// private one for the nodes.
func (e *ec2Node) Publish(ctx context.Context, apiURL string) error {
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(apiURL, "https://"))
	ep := Endpoint{URL: "https://" + net.JoinHostPort(cmp.Or(e.publicIP, e.privateIP), port), PrivateURL: "https://" + net.JoinHostPort(e.privateIP, port),
		InstanceID: e.instanceID, StartedAt: time.Now().UTC()}
	return e.a.put(ctx, keyEndpoint, jsonBody(ep))
}

// Provider acts through the group, not Terraform.
func (e *ec2Node) Provider() provider.Provider {
	if e.inside == nil {
		inCluster := &record{Region: e.nc.Region, Bucket: e.nc.Bucket}
		if e.doc != nil {
			inCluster.Spec, inCluster.CreatedAt = e.doc.Spec, e.doc.CreatedAt
		}
		e.inside = New(Options{InCluster: inCluster, AWSConfig: func(context.Context, string) (aws.Config, error) { return e.cfg, nil }})
	}
	return e.inside
}

func (e *ec2Node) Watch(ctx context.Context, out chan<- agentapi.Interruption) {
	watchInterruptions(ctx, e.meta, e.Provider().(*Provider), e.nc.Cluster, e.instanceID, out, e.log)
}

// Beside copies Spark's event logs to the cluster's prefix; on the monitoring instance it runs
// Prometheus (and Grafana) instead.
func (e *ec2Node) Beside(ctx context.Context, n *node.Node) error {
	if e.nc.Role == RoleMonitoring {
		doc, err := e.spec(ctx)
		if err != nil {
			return err
		}
		return runMonitoring(ctx, e.nc, &doc.Spec, e.a, n, e.log.With("cluster", e.nc.Cluster))
	}
	syncEventLogs(ctx, e.a, n.EventLogs, e.log)
	return nil
}

func metadata(ctx context.Context, c *imds.Client, path string) (string, error) {
	out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", err
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	return strings.TrimSpace(string(b)), err
}

// download streams an object to a file.
func (a *artifacts) download(ctx context.Context, key, path string) error {
	out, err := a.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(a.bucket), Key: aws.String(a.prefix + key)})
	if err != nil {
		return fmt.Errorf("read s3://%s/%s%s: %w", a.bucket, a.prefix, key, err)
	}
	defer out.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, out.Body); err != nil {
		tmp.Close()
		return fmt.Errorf("read s3://%s/%s%s: %w", a.bucket, a.prefix, key, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// watchInterruptions polls IMDSv2 for a spot interruption notice and for the group's target
// lifecycle state, and tells the agent of each once. A termination by the group is held by the
// decommission hook until the agent is done; then the action is completed.
func watchInterruptions(ctx context.Context, meta *imds.Client, p *Provider, cluster, instanceID string, out chan<- agentapi.Interruption, log *slog.Logger) {
	spotSeen, terminatingSeen := false, false
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		if !spotSeen {
			if body, err := metadata(ctx, meta, "spot/instance-action"); err == nil && body != "" {
				var action struct {
					Action string    `json:"action"`
					Time   time.Time `json:"time"`
				}
				json.Unmarshal([]byte(body), &action)
				if action.Time.IsZero() {
					action.Time = time.Now().Add(2 * time.Minute)
				}
				spotSeen = true
				log.Warn("spot interruption notice", "action", action.Action, "at", action.Time)
				node.Send(ctx, out, agentapi.Interruption{Reason: "spot-interruption", Deadline: action.Time, Done: func() {}})
			}
		}
		if !terminatingSeen {
			if state, err := metadata(ctx, meta, "autoscaling/target-lifecycle-state"); err == nil && state == "Terminated" {
				terminatingSeen = true
				log.Warn("the group is terminating this instance")
				node.Send(ctx, out, agentapi.Interruption{Reason: "terminating", Deadline: time.Now().Add(9 * time.Minute), Done: func() {
					if err := p.completeTermination(context.Background(), cluster, instanceID); err != nil {
						log.Error("complete the termination", "err", err)
					}
				}})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// syncEventLogs copies Spark's finished event logs from the node to the cluster's prefix, every
// half minute and once more at the end.
func syncEventLogs(ctx context.Context, a *artifacts, dir string, log *slog.Logger) {
	sent := map[string]int64{}
	copyNew := func(ctx context.Context) {
		// Event logs are files, or (Spark 4's rolling logs, on by default) directories of files.
		var files []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !e.IsDir() {
				files = append(files, e.Name())
				continue
			}
			inner, _ := os.ReadDir(filepath.Join(dir, e.Name()))
			for _, f := range inner {
				if !f.IsDir() {
					files = append(files, e.Name()+"/"+f.Name())
				}
			}
		}
		for _, rel := range files {
			info, err := os.Stat(filepath.Join(dir, rel))
			if err != nil || strings.HasSuffix(rel, ".inprogress") || sent[rel] == info.Size() {
				continue
			}
			if err := a.putFile(ctx, keyEvents+rel, filepath.Join(dir, rel)); err != nil {
				log.Warn("copy an event log to S3", "file", rel, "err", err)
				continue
			}
			sent[rel] = info.Size()
		}
	}
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), time.Minute)
			copyNew(final)
			cancel()
			return
		case <-tick.C:
			copyNew(ctx)
		}
	}
}
