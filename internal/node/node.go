// Package node is the node side that every remote provider shares: what `sparkplane agent`
// does on a node of a cluster it did not start itself. A provider says where the node finds its
// cluster (its identity, secret and certificate, spec, Spark, the master, notices that it is
// going away) by implementing Source; Boot and Run do the rest the same way for all of them:
// the files the agent reads, Spark unpacked, Java found, the agent configured and run.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent"
	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/fsutil"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// Source is where a node finds its cluster. Each remote provider implements it (AWS: IMDSv2,
// SSM and S3); everything else about a node is common.
type Source interface {
	// Identity is this node: which cluster, which role, its id, where it keeps its files, and the
	// addresses it listens on and advertises.
	Identity(ctx context.Context) (Identity, error)
	// Cluster is the cluster's spec and when the cluster was created.
	Cluster(ctx context.Context) (spec.Cluster, time.Time, error)
	// Secrets are the cluster's token and TLS certificate.
	Secrets(ctx context.Context) (Secrets, error)
	// Spark makes Spark version available in dir and returns its home (see UnpackSpark).
	Spark(ctx context.Context, version, dir string) (string, error)
	// MasterAgent, on a worker, is the URL at which the cluster's nodes reach the master's
	// agent, waiting until it is known.
	MasterAgent(ctx context.Context) (string, error)
	// Publish, on the master, makes the agent's API URL known once it serves.
	Publish(ctx context.Context, apiURL string) error
	// Watch, on a worker, sends notices that the node is going away (a spot reclaim, a
	// termination, a drain) until ctx ends.
	Watch(ctx context.Context, out chan<- agentapi.Interruption)
	// Provider is the cluster's provider acting from inside it: the master's agent adds and
	// removes workers and ends the cluster's lifetime through it.
	Provider() provider.Provider
	// Beside runs what the node needs beside its agent (copying event logs out, say) until ctx
	// ends. A node that runs no agent (see Identity.Role) runs this alone, and its error ends
	// the node.
	Beside(ctx context.Context, n *Node) error
}

// Identity is one node of a cluster.
type Identity struct {
	Cluster  string
	Provider string
	// Role is agentapi.RoleMaster or RoleWorker for a node that runs a Spark daemon under an
	// agent; another role (a gateway, a monitoring node) runs no agent, only Source.Beside.
	Role string
	// NodeID names the node in the cluster: "master" for the master, the provider's id of it
	// (an instance id, a pod name) for a worker.
	NodeID string
	// Root is the node's directory: its secrets, Spark, the agent's files.
	Root string
	// Listen is the agent's API address; Host the address that Spark and the API advertise to
	// the other nodes.
	Listen, Host string
	// NoSpark says that the node needs no Spark (a monitoring node).
	NoSpark bool
}

// Secrets are what the agent needs to serve its API and call the other agents.
type Secrets struct {
	Token  string
	TLSKey []byte // PEM
	Cert   []byte // PEM, the cluster's certificate (agentapi.NewCertificate)
}

// Node is a booted node, ready to run its agent.
type Node struct {
	Identity Identity
	// Config is the agent's configuration, for a master or a worker.
	Config *agentapi.Config
	// Secret is the cluster's token; Cert the cluster's certificate, which the node's files
	// (Files) hold with their key.
	Secret string
	Cert   []byte
	Files  Files
	// EventLogs is the directory Spark writes its event logs to on this node.
	EventLogs string
}

// Files are where Boot wrote the node's secrets.
type Files struct {
	Token, Cert, Key string
}

// Boot prepares a node from its source: it writes the token (0600), the TLS key (0600) and the
// certificate under the node's root, makes Spark available, finds a Java for it, and writes
// the agent's configuration.
func Boot(ctx context.Context, src Source, log *slog.Logger) (*Node, error) {
	id, err := src.Identity(ctx)
	if err != nil {
		return nil, fmt.Errorf("this node's identity: %w", err)
	}
	if id.Cluster == "" || id.Role == "" || id.Root == "" {
		return nil, errors.New("this node's identity lacks its cluster, role or directory")
	}
	sec, err := src.Secrets(ctx)
	if err != nil {
		return nil, fmt.Errorf("the cluster's secrets: %w", err)
	}
	n := &Node{Identity: id, Secret: sec.Token, Cert: sec.Cert, Files: Files{
		Token: filepath.Join(id.Root, "token"), Cert: filepath.Join(id.Root, "tls", "agent.crt"), Key: filepath.Join(id.Root, "tls", "agent.key")}}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{n.Files.Token, []byte(sec.Token + "\n"), 0o600}, {n.Files.Key, sec.TLSKey, 0o600}, {n.Files.Cert, sec.Cert, 0o644}} {
		if err := fsutil.WriteFileAtomic(f.path, f.data, f.mode); err != nil {
			return nil, err
		}
	}
	if id.NoSpark {
		return n, nil
	}
	c, created, err := src.Cluster(ctx)
	if err != nil {
		return nil, fmt.Errorf("the cluster's spec: %w", err)
	}
	home, err := src.Spark(ctx, c.Spark.Version, id.Root)
	if err != nil {
		return nil, fmt.Errorf("this node's Spark %s: %w", c.Spark.Version, err)
	}
	javaHome, warning, err := spark.FindJavaFor(os.Getenv, c.Spark.Version)
	if err != nil {
		return nil, err
	}
	if warning != "" {
		log.Warn(warning)
	}
	n.EventLogs = filepath.Join(id.Root, "event-logs")
	if err := os.MkdirAll(n.EventLogs, 0o755); err != nil {
		return nil, err
	}
	n.Config = &agentapi.Config{
		Cluster: id.Cluster, Provider: id.Provider, Role: id.Role, NodeID: id.NodeID, Dir: filepath.Join(id.Root, "node"),
		Listen: id.Listen, Host: id.Host, SparkHome: home, JavaHome: javaHome, TokenFile: n.Files.Token,
		Spec: c, CreatedAt: created, EventLogDir: "file://" + n.EventLogs,
		TLS: &agentapi.TLSFiles{Cert: n.Files.Cert, Key: n.Files.Key},
	}
	if id.Role == agentapi.RoleWorker {
		if n.Config.MasterAgent, err = src.MasterAgent(ctx); err != nil {
			return nil, fmt.Errorf("the master's agent: %w", err)
		}
	}
	return n, nil
}

// A Drainer is a Source on which the agent's SIGTERM may be notice rather than the end: a
// scheduler stopping a worker to move it (a Nomad drain, a Kubernetes eviction) gives it a kill
// timeout to decommission in, where a cluster being destroyed or a worker already removed
// through the master's agent has nothing left to move.
type Drainer interface {
	// OnTerm says what this SIGTERM is: drain says to decommission in Spark first, before the
	// deadline, reason says why; otherwise the node stops at once.
	OnTerm(ctx context.Context) (reason string, deadline time.Time, drain bool)
}

// Run boots the node and runs it until ctx ends: on a master or a worker the agent, with what
// goes beside it; on a node of another role what goes beside alone.
func Run(ctx context.Context, src Source, log *slog.Logger) error {
	return RunUntil(ctx, src, log, nil)
}

// RunUntil is Run for a node whose SIGTERM closes term rather than ending ctx: the node stops
// then, except a worker whose Source is a Drainer and says to drain, which decommissions in
// Spark and stops once nothing of Spark's is left on it (or at the deadline).
func RunUntil(ctx context.Context, src Source, log *slog.Logger, term <-chan struct{}) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	// SIGTERM stops the node, unless a worker's agent is running that can drain first.
	var drain atomic.Pointer[func()]
	go func() {
		select {
		case <-term:
		case <-ctx.Done():
			return
		}
		if d := drain.Load(); d != nil {
			(*d)()
		} else {
			stop()
		}
	}()
	n, err := Boot(ctx, src, log)
	if err != nil {
		return err
	}
	log = log.With("cluster", n.Identity.Cluster)
	if r := n.Identity.Role; r != agentapi.RoleMaster && r != agentapi.RoleWorker {
		if n.Config != nil {
			log.Info(r+" ready: sparkplane and Spark are installed", "spark", n.Config.SparkHome)
		}
		return src.Beside(ctx, n)
	}
	go func() {
		if err := src.Beside(ctx, n); err != nil && ctx.Err() == nil {
			log.Error("beside the agent", "err", err)
		}
	}()
	deps := agent.Deps{Providers: provider.NewRegistry(), Log: log}
	deps.Providers.Register(n.Identity.Provider, func() (provider.Provider, error) { return src.Provider(), nil })
	switch n.Identity.Role {
	case agentapi.RoleMaster:
		deps.Started = func(apiURL string) {
			if err := src.Publish(context.WithoutCancel(ctx), apiURL); err != nil {
				log.Error("publish the agent's endpoint", "err", err)
			}
		}
	case agentapi.RoleWorker:
		interruptions := make(chan agentapi.Interruption, 1)
		go src.Watch(ctx, interruptions)
		deps.Interruptions = interruptions
		if d, ok := src.(Drainer); ok {
			f := func() { drainOnTerm(ctx, d, interruptions, stop, log) }
			drain.Store(&f)
		}
	}
	return agent.Run(ctx, n.Config, deps)
}

// drainOnTerm stops the node, or, where d says it is draining, passes notice to the worker's
// agent, which calls stop once it has decommissioned.
func drainOnTerm(ctx context.Context, d Drainer, out chan<- agentapi.Interruption, stop func(), log *slog.Logger) {
	reason, deadline, drain := d.OnTerm(ctx)
	if !drain {
		log.Info("SIGTERM: stopping")
		stop()
		return
	}
	log.Warn("SIGTERM: decommissioning in Spark before stopping", "reason", reason, "deadline", deadline)
	// Stop at the deadline whatever happens: the agent may not have reached its worker loop.
	timer := time.AfterFunc(time.Until(deadline), stop)
	go func() { <-ctx.Done(); timer.Stop() }()
	Send(ctx, out, agentapi.Interruption{Reason: reason, Deadline: deadline, Done: stop})
}

// UnpackSpark is a Source's Spark for a provider that ships the distribution's tarball: the home
// already unpacked in dir by an earlier boot, or the tarball that fetch writes to a path,
// unpacked there and then removed.
func UnpackSpark(ctx context.Context, version, dir string, fetch func(ctx context.Context, tarball string) error) (string, error) {
	home := filepath.Join(dir, "spark-"+version)
	if _, err := os.Stat(filepath.Join(home, "bin", "spark-class")); err == nil {
		return home, nil
	}
	tgz := filepath.Join(dir, spark.TarballName(version))
	if err := fetch(ctx, tgz); err != nil {
		return "", err
	}
	defer os.Remove(tgz)
	if err := spark.Unpack(tgz, home); err != nil {
		return "", fmt.Errorf("unpack Spark: %w", err)
	}
	return home, nil
}

// Retry calls get until it succeeds, for what another node publishes (the spec, the master's
// endpoint), with growing pauses, until ctx ends.
func Retry[T any](ctx context.Context, log *slog.Logger, what string, get func() (T, error)) (T, error) {
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

// Send passes a notice on, unless ctx ends first.
func Send(ctx context.Context, out chan<- agentapi.Interruption, ev agentapi.Interruption) {
	select {
	case out <- ev:
	case <-ctx.Done():
	}
}
