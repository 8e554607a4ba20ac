package nomad

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/node"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// taskNode is where an agent in a Nomad task finds its cluster (node.Source): its identity from
// Nomad's task environment (NOMAD_TASK_DIR, NOMAD_IP_agent, NOMAD_PORT_agent, NOMAD_GROUP_NAME)
// and the job's, the secrets from the files the task's templates render from the cluster's
// variable, the master's agent from the file its service-discovery template renders, and Spark
// from spark.home on the client node.
type taskNode struct {
	getenv func(string) string
	log    *slog.Logger
	dir    string // the task's directory
	c      spec.Cluster
	once   sync.Once
	inside *Provider
}

// NodeSource is `sparkplane agent --nomad`, inside a task of a cluster's job.
func NodeSource(getenv func(string) string, log *slog.Logger) (node.Source, error) {
	dir := getenv("NOMAD_TASK_DIR")
	if dir == "" || getenv(envCluster) == "" {
		return nil, fmt.Errorf("agent --nomad runs inside a task of a cluster's Nomad job (NOMAD_TASK_DIR and %s are not set)", envCluster)
	}
	t := &taskNode{getenv: getenv, log: log, dir: filepath.Dir(dir)}
	if err := json.Unmarshal([]byte(getenv(envSpec)), &t.c); err != nil {
		return nil, fmt.Errorf("%s: %w", envSpec, err)
	}
	return t, nil
}

func (t *taskNode) Identity(context.Context) (node.Identity, error) {
	role := t.getenv(envRole)
	id := node.Identity{Cluster: t.getenv(envCluster), Provider: Name, Role: role, NodeID: role,
		Root: filepath.Join(t.dir, "local", "sparkplane"), Host: t.getenv("NOMAD_IP_" + agentPort)}
	if role == agentapi.RoleWorker {
		id.NodeID = t.getenv("NOMAD_GROUP_NAME")
	}
	port := t.getenv("NOMAD_PORT_" + agentPort)
	if id.Host == "" || port == "" {
		return node.Identity{}, fmt.Errorf("the task has no %q port (NOMAD_IP_%s, NOMAD_PORT_%s)", agentPort, agentPort, agentPort)
	}
	id.Listen = net.JoinHostPort(id.Host, port)
	return id, nil
}

func (t *taskNode) Cluster(context.Context) (spec.Cluster, time.Time, error) {
	created, _ := time.Parse(time.RFC3339, t.getenv(envCreated))
	return t.c, created, nil
}

// Secrets are what the templates rendered into the task's secrets directory.
func (t *taskNode) Secrets(context.Context) (node.Secrets, error) {
	read := func(rel string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(t.dir, rel))
		if err == nil && len(strings.TrimSpace(string(b))) == 0 {
			err = fmt.Errorf("%s is empty: the task may not read the variable %s", rel, VariablePath(t.c.Name))
		}
		return b, err
	}
	token, err := read(fileToken)
	if err != nil {
		return node.Secrets{}, err
	}
	key, err := read(fileKey)
	if err != nil {
		return node.Secrets{}, err
	}
	cert, err := read(fileCert)
	if err != nil {
		return node.Secrets{}, err
	}
	return node.Secrets{Token: strings.TrimSpace(string(token)), TLSKey: key, Cert: cert}, nil
}

// Spark is the tarball the task's artifact downloaded, unpacked in the task's directory, or
// spark.home on the client node.
func (t *taskNode) Spark(ctx context.Context, version, dir string) (string, error) {
	if t.c.Nomad == nil || t.c.Nomad.Artifacts.Spark == nil {
		if _, err := spark.OpenHome(t.c.Spark.Home); err != nil {
			return "", fmt.Errorf("spark.home on this client node: %w", err)
		}
		return t.c.Spark.Home, nil
	}
	home, err := node.UnpackSpark(ctx, version, dir, func(_ context.Context, tgz string) error {
		return os.Rename(filepath.Join(t.dir, fileSparkTarball), tgz)
	})
	if err != nil {
		return "", fmt.Errorf("nomad.artifacts.spark: %w", err)
	}
	d, err := spark.OpenHome(home)
	if err != nil {
		return "", fmt.Errorf("nomad.artifacts.spark: %w", err)
	}
	if d.Version != version {
		return "", fmt.Errorf("nomad.artifacts.spark is Spark %s, not spark.version %s", d.Version, version)
	}
	return home, nil
}

// MasterAgent is what the service-discovery template rendered, once the master registered.
func (t *taskNode) MasterAgent(ctx context.Context) (string, error) {
	return node.Retry(ctx, t.log, "the master's agent in Nomad's service discovery", func() (string, error) {
		b, err := os.ReadFile(filepath.Join(t.dir, fileMasterAgent))
		if err != nil {
			return "", err
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		if first == "" {
			return "", errors.New("service " + serviceName(t.c.Name) + " has no registration yet")
		}
		return first, nil
	})
}

// Publish has nothing to do: Nomad registers the master agent's service.
func (t *taskNode) Publish(context.Context, string) error { return nil }

// Watch: a drain or a stop reaches the agent as SIGTERM (see OnTerm).
func (t *taskNode) Watch(ctx context.Context, _ chan<- agentapi.Interruption) { <-ctx.Done() }

// OnTerm tells, from Nomad, why the task was sent SIGTERM. While the job still has this
// worker's group, Nomad is moving the allocation (a node drain, an alloc stop, a lost node):
// the worker decommissions in Spark first, within the task's kill timeout. When the job is
// stopped or gone, or no longer has the group (a remove, which decommissioned through the
// master's agent already), it stops at once. If Nomad cannot be asked, it decommissions: losing
// a few seconds is better than losing shuffle data.
func (t *taskNode) OnTerm(ctx context.Context) (reason string, deadline time.Time, drain bool) {
	deadline = time.Now().Add(killTimeout)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := t.Provider().(*Provider).client(nil)
	if err != nil {
		return "nomad-stop", deadline, true
	}
	job, _, err := cl.Jobs().Info(JobID(t.c.Name), (&api.QueryOptions{}).WithContext(ctx))
	switch {
	case isNotFound(err):
		return "", deadline, false
	case err != nil:
		t.log.Warn("SIGTERM: cannot ask Nomad why; decommissioning", "err", err)
		return "nomad-stop", deadline, true
	case deref(job.Stop) || !slices.Contains(workersOf(job), t.getenv("NOMAD_GROUP_NAME")):
		return "", deadline, false
	}
	reason = "nomad-stop"
	if a, _, err := cl.Allocations().Info(t.getenv("NOMAD_ALLOC_ID"), (&api.QueryOptions{}).WithContext(ctx)); err == nil &&
		a.DesiredTransition.Migrate != nil && *a.DesiredTransition.Migrate {
		reason = "node-drain"
	}
	return reason, deadline, true
}

// Provider adds and removes worker groups through the Nomad API the job names, with the task's
// workload identity (see PolicyName).
func (t *taskNode) Provider() provider.Provider {
	t.once.Do(func() {
		addr := t.getenv(envAddr)
		tokenFile := filepath.Join(t.dir, fileNomadToken)
		t.inside = New(Options{Inside: true, Config: func() *api.Config {
			cfg := api.DefaultConfig()
			cfg.Address = cmp.Or(addr, cfg.Address)
			if b, err := os.ReadFile(tokenFile); err == nil {
				cfg.SecretID = strings.TrimSpace(string(b))
			}
			return cfg
		}})
	})
	return t.inside
}

func (t *taskNode) Beside(ctx context.Context, _ *node.Node) error { <-ctx.Done(); return nil }
