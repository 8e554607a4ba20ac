package node_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/node"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// source is a node.Source from memory: a cluster whose Spark is a packed stand-in.
type source struct {
	id      node.Identity
	cert    []byte
	key     []byte
	tarball string // a packed Spark
	fetched int
	master  func() (string, error)
}

func (s *source) Identity(context.Context) (node.Identity, error) { return s.id, nil }
func (s *source) Cluster(context.Context) (spec.Cluster, time.Time, error) {
	c := spec.Cluster{Name: s.id.Cluster}
	c.Spark.Version = "3.5.3"
	return c, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), nil
}
func (s *source) Secrets(context.Context) (node.Secrets, error) {
	return node.Secrets{Token: "the-token", TLSKey: s.key, Cert: s.cert}, nil
}
func (s *source) Spark(ctx context.Context, version, dir string) (string, error) {
	return node.UnpackSpark(ctx, version, dir, func(_ context.Context, tgz string) error {
		s.fetched++
		b, err := os.ReadFile(s.tarball)
		if err != nil {
			return err
		}
		return os.WriteFile(tgz, b, 0o644)
	})
}
func (s *source) MasterAgent(ctx context.Context) (string, error) {
	if s.master == nil { // a master that never answers
		<-ctx.Done()
		return "", ctx.Err()
	}
	return s.master()
}
func (s *source) Publish(context.Context, string) error               { return nil }
func (s *source) Watch(context.Context, chan<- agentapi.Interruption) {}
func (s *source) Provider() provider.Provider                         { return nil }
func (s *source) Beside(ctx context.Context, _ *node.Node) error      { <-ctx.Done(); return nil }

func newSource(t *testing.T, role string) *source {
	t.Helper()
	cert, key, err := agentapi.NewCertificate("analytics", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	home := sparktest.Home(t, "3.5.3")
	tarball := filepath.Join(t.TempDir(), "spark.tgz")
	f, err := os.Create(tarball)
	if err != nil {
		t.Fatal(err)
	}
	if err := spark.Pack(f, home, "3.5.3"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return &source{id: node.Identity{Cluster: "analytics", Provider: "test", Role: role, NodeID: "w-1", Root: t.TempDir(),
		Listen: "127.0.0.1:0", Host: "127.0.0.1"}, cert: cert, key: key, tarball: tarball,
		master: func() (string, error) { return "https://10.0.0.1:7443", nil }}
}

// Boot writes the node's secrets with modes that keep them to the agent, unpacks Spark once
// (a reboot finds it unpacked), and configures the agent from the source: the worker learns the
// master's agent, every agent serves TLS with the cluster's certificate.
func TestBootConfiguresTheAgentFromTheSource(t *testing.T) {
	src := newSource(t, agentapi.RoleWorker)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.Boot(context.Background(), src, log)
	if err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{n.Files.Token: 0o600, n.Files.Key: 0o600, n.Files.Cert: 0o644} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want %v", path, fi.Mode(), err, mode)
		}
	}
	if b, _ := os.ReadFile(n.Files.Token); string(b) != "the-token\n" {
		t.Errorf("token file %q", b)
	}
	c := n.Config
	if c.Cluster != "analytics" || c.Role != agentapi.RoleWorker || c.NodeID != "w-1" || c.Provider != "test" ||
		c.MasterAgent != "https://10.0.0.1:7443" || c.TLS == nil || c.TLS.Cert != n.Files.Cert || c.TokenFile != n.Files.Token ||
		!strings.HasPrefix(c.EventLogDir, "file://"+src.id.Root) || c.OneHost || c.Spec.Name != "analytics" {
		t.Errorf("agent config %+v", c)
	}
	if _, err := spark.OpenHome(c.SparkHome); err != nil || !strings.HasPrefix(c.SparkHome, src.id.Root) {
		t.Errorf("Spark home %s: %v", c.SparkHome, err)
	}
	if entries, _ := filepath.Glob(filepath.Join(src.id.Root, "*.tgz")); len(entries) != 0 {
		t.Errorf("the tarball is left: %v", entries)
	}
	if _, err := node.Boot(context.Background(), src, log); err != nil || src.fetched != 1 {
		t.Errorf("a second boot fetched Spark again (%d fetches): %v", src.fetched, err)
	}
}

// A node that runs no agent and needs no Spark (a monitoring node) gets its secrets only, and
// runs what goes beside alone; a worker that cannot learn its master says so.
func TestBootOfOtherRoles(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mon := newSource(t, "monitoring")
	mon.id.NoSpark = true
	n, err := node.Boot(context.Background(), mon, log)
	if err != nil || n.Config != nil || mon.fetched != 0 || n.Secret != "the-token" {
		t.Errorf("monitoring node: %+v %v (%d fetches)", n, err, mon.fetched)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := node.Run(ctx, mon, log); err != nil {
		t.Errorf("monitoring node's run: %v", err)
	}
	w := newSource(t, agentapi.RoleWorker)
	w.master = func() (string, error) { return "", errors.New("no endpoint yet") }
	if _, err := node.Boot(context.Background(), w, log); err == nil || !strings.Contains(err.Error(), "the master's agent: no endpoint yet") {
		t.Errorf("worker without a master: %v", err)
	}
}

// SIGTERM (term closed) stops a node that cannot drain, and one still booting: a worker whose
// master never answers stops rather than wait for it.
func TestTermStopsTheNode(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, src := range map[string]*source{"monitoring": newSource(t, "monitoring"), "booting worker": newSource(t, agentapi.RoleWorker)} {
		src.id.NoSpark = name == "monitoring"
		src.master = nil
		term := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- node.RunUntil(context.Background(), src, log, term) }()
		close(term)
		select {
		case err := <-done:
			if name == "booting worker" && !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v, want it cancelled while waiting for its master", name, err)
			}
			t.Logf("%s: %v", name, err)
		case <-time.After(time.Minute):
			t.Fatalf("%s: still running a minute after SIGTERM", name)
		}
	}
}
