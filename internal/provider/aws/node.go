package aws

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/sparkplane/sparkplane/internal/spark"
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

// Node is a node of a cluster on EC2, ready to run its agent.
type Node struct {
	Config   *agentapi.Config
	Provider *Provider // acting from inside the cluster: the group, not Terraform
	// Publish, on the master, makes the agent's endpoint known (endpoint.json) once it serves.
	Publish func(apiURL string)
	// Interruptions are spot interruption notices and terminations by the group.
	Interruptions <-chan agentapi.Interruption
	// Run runs what goes beside the agent (the interruption watcher, the event-log copier)
	// until ctx ends.
	Run func(ctx context.Context)
	// Monitor, on the monitoring instance, is all it runs (there is no Spark daemon there).
	Monitor func(ctx context.Context) error
}

// Node-side environment overrides, for running a node outside EC2 (tests, other clouds' VMs).
const (
	EnvRoot   = "SPARKPLANE_EC2_ROOT"     // default /var/lib/sparkplane
	EnvListen = "SPARKPLANE_AGENT_LISTEN" // default :<agentPort>
)

// Bootstrap prepares a node from its node.json: the instance's identity from IMDSv2, the secret
// and TLS key from SSM, the certificate, spec and Spark from S3, and the agent's configuration.
func Bootstrap(ctx context.Context, path string, log *slog.Logger) (*Node, error) {
	var nc NodeConfig
	if err := fsutil.ReadJSON(path, &nc); err != nil {
		return nil, err
	}
	if nc.Cluster == "" || nc.Bucket == "" || nc.Prefix == "" {
		return nil, fmt.Errorf("%s lacks the cluster, bucket or prefix", path)
	}
	root := os.Getenv(EnvRoot)
	if root == "" {
		root = "/var/lib/sparkplane"
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(nc.Region))
	if err != nil {
		return nil, err
	}
	meta := imds.NewFromConfig(cfg)
	instanceID, err := metadata(ctx, meta, "instance-id")
	if err != nil {
		return nil, fmt.Errorf("IMDS: %w", err)
	}
	privateIP, err := metadata(ctx, meta, "local-ipv4")
	if err != nil {
		return nil, fmt.Errorf("IMDS: %w", err)
	}
	publicIP, _ := metadata(ctx, meta, "public-ipv4") // none in a private subnet

	a := &artifacts{s3: newS3(cfg), bucket: nc.Bucket, prefix: nc.Prefix}
	var doc SpecDoc
	specJSON, err := retry(ctx, log, "the spec", func() ([]byte, error) { return a.get(ctx, keySpec) })
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(specJSON, &doc); err != nil {
		return nil, fmt.Errorf("spec.json: %w", err)
	}
	params := ssm.NewFromConfig(cfg)
	secret, err := getParameter(ctx, params, nc.Cluster, secretParam)
	if err != nil {
		return nil, err
	}
	tlsKey, err := getParameter(ctx, params, nc.Cluster, tlsKeyParam)
	if err != nil {
		return nil, err
	}
	certPEM, err := a.get(ctx, keyCert)
	if err != nil {
		return nil, err
	}
	files := map[string]struct {
		data []byte
		mode os.FileMode
	}{
		"token":         {[]byte(secret + "\n"), 0o600},
		"tls/agent.key": {[]byte(tlsKey), 0o600},
		"tls/agent.crt": {certPEM, 0o644},
	}
	for name, f := range files {
		if err := fsutil.WriteFileAtomic(filepath.Join(root, name), f.data, f.mode); err != nil {
			return nil, err
		}
	}
	if nc.Role == RoleMonitoring {
		return &Node{Monitor: func(ctx context.Context) error {
			return runMonitoring(ctx, nc, &doc.Spec, a, secret, certPEM, root, log.With("cluster", nc.Cluster))
		}}, nil
	}

	// Spark, from the cluster's prefix.
	sparkHome := filepath.Join(root, "spark-"+nc.SparkVersion)
	if _, err := os.Stat(filepath.Join(sparkHome, "bin", "spark-class")); err != nil {
		tgz := filepath.Join(root, spark.TarballName(nc.SparkVersion))
		if err := a.download(ctx, keySpark+spark.TarballName(nc.SparkVersion), tgz); err != nil {
			return nil, err
		}
		if err := spark.Unpack(tgz, sparkHome); err != nil {
			return nil, fmt.Errorf("unpack Spark: %w", err)
		}
		os.Remove(tgz)
	}
	javaHome, warning, err := spark.FindJavaFor(os.Getenv, nc.SparkVersion)
	if err != nil {
		return nil, err
	}
	if warning != "" {
		log.Warn(warning)
	}
	events := filepath.Join(root, "event-logs")
	if err := os.MkdirAll(events, 0o755); err != nil {
		return nil, err
	}

	listen := os.Getenv(EnvListen)
	if listen == "" {
		listen = ":" + strconv.Itoa(nc.AgentPort)
	}
	nodeID := nc.Role
	if nc.Role == agentapi.RoleWorker {
		nodeID = instanceID
	}
	ac := &agentapi.Config{
		Cluster: nc.Cluster, Provider: Name, Role: nc.Role, NodeID: nodeID, Dir: filepath.Join(root, "node"),
		Listen: listen, Host: privateIP, SparkHome: sparkHome, JavaHome: javaHome, TokenFile: filepath.Join(root, "token"),
		Spec: doc.Spec, CreatedAt: doc.CreatedAt, EventLogDir: "file://" + events,
		TLS: &agentapi.TLSFiles{Cert: filepath.Join(root, "tls/agent.crt"), Key: filepath.Join(root, "tls/agent.key")},
	}
	inCluster := &record{Spec: doc.Spec, CreatedAt: doc.CreatedAt, Region: nc.Region, Bucket: nc.Bucket}
	n := &Node{Config: ac, Provider: New(Options{InCluster: inCluster, AWSConfig: func(context.Context, string) (aws.Config, error) { return cfg, nil }})}

	switch nc.Role {
	case agentapi.RoleMaster:
		n.Publish = func(apiURL string) {
			_, port, _ := net.SplitHostPort(strings.TrimPrefix(apiURL, "https://"))
			host := publicIP
			if host == "" {
				host = privateIP
			}
			ep := Endpoint{URL: "https://" + net.JoinHostPort(host, port), PrivateURL: "https://" + net.JoinHostPort(privateIP, port),
				InstanceID: instanceID, StartedAt: time.Now().UTC()}
			if err := a.put(context.Background(), keyEndpoint, jsonBody(ep)); err != nil {
				log.Error("publish the agent's endpoint", "err", err)
			}
		}
	case agentapi.RoleWorker:
		ep, err := retry(ctx, log, "the master's endpoint", func() (*Endpoint, error) { return a.endpoint(ctx) })
		if err != nil {
			return nil, err
		}
		ac.MasterAgent = ep.PrivateURL
	}
	interruptions := make(chan agentapi.Interruption, 1)
	n.Interruptions = interruptions
	n.Run = func(ctx context.Context) {
		go syncEventLogs(ctx, a, events, log)
		if nc.Role == agentapi.RoleWorker {
			watchInterruptions(ctx, meta, n.Provider, nc.Cluster, instanceID, interruptions, log)
		}
		<-ctx.Done()
	}
	return n, nil
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

// retry calls get until it succeeds, for what another node publishes (the spec, the master's
// endpoint), with growing pauses, until ctx ends.
func retry[T any](ctx context.Context, log *slog.Logger, what string, get func() (T, error)) (T, error) {
	for pause := time.Second; ; pause = min(pause*2, 15*time.Second) {
		v, err := get()
		if err == nil {
			return v, nil
		}
		log.Info("waiting for "+what, "err", err)
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%s: %w", what, errors.Join(err, ctx.Err()))
		case <-time.After(pause):
		}
	}
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
				send(ctx, out, agentapi.Interruption{Reason: "spot-interruption", Deadline: action.Time, Done: func() {}})
			}
		}
		if !terminatingSeen {
			if state, err := metadata(ctx, meta, "autoscaling/target-lifecycle-state"); err == nil && state == "Terminated" {
				terminatingSeen = true
				log.Warn("the group is terminating this instance")
				send(ctx, out, agentapi.Interruption{Reason: "terminating", Deadline: time.Now().Add(9 * time.Minute), Done: func() {
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

func send(ctx context.Context, out chan<- agentapi.Interruption, ev agentapi.Interruption) {
	select {
	case out <- ev:
	case <-ctx.Done():
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
