// Package clustertest makes a cluster manager over the local provider and the Spark stand-in,
// in a temporary directory, for tests of packages that need a real cluster on this machine.
package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/provider/local"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// Recorder is a Progress that keeps every line, for assertions.
type Recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *Recorder) add(kind, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, kind+" "+msg)
}
func (r *Recorder) Start(m string) { r.add("start", m) }
func (r *Recorder) Done(m string)  { r.add("done", m) }
func (r *Recorder) Fail(m string)  { r.add("fail", m) }
func (r *Recorder) Info(m string)  { r.add("info", m) }
func (r *Recorder) Warn(m string)  { r.add("warn", m) }

func (r *Recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// Env is a manager with the local provider, its state and its root directory.
type Env struct {
	M     *cluster.Manager
	Root  string // SPARKPLANE_HOME of the environment
	Store *state.Store
	Rec   *Recorder
	Prov  *local.Provider
}

// NewEnv makes an environment whose clusters run the Spark at sparkHome (sparktest.Home for
// the stand-in).
func NewEnv(t testing.TB, sparkHome string) *Env {
	t.Helper()
	root := t.TempDir()
	store, err := state.Open(filepath.Join(root, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	prov := local.New(local.Options{Root: root, AgentBinary: testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane"),
		StateDB: filepath.Join(root, "state.db"), StopGrace: 20 * time.Second})
	reg := provider.NewRegistry()
	reg.Register(local.Name, func() (provider.Provider, error) { return prov, nil })
	rec := &Recorder{}
	m := &cluster.Manager{Providers: reg, Store: store, Progress: rec, ReadyTimeout: time.Minute, PollInterval: 50 * time.Millisecond,
		Spark: func(context.Context, *spec.Cluster) (*spark.Distribution, error) { return spark.OpenHome(sparkHome) },
		S3A: func(ctx context.Context, d *spark.Distribution) (*spark.Connector, error) {
			return S3AConnector(ctx, t, d.Home)
		}}
	return &Env{M: m, Root: root, Store: store, Rec: rec, Prov: prov}
}

// S3AConnector resolves the S3A connector for the Spark at home into a cache that the tests of
// every package share (in testutil.BinDir), as sparkplane's own cache does for a user.
func S3AConnector(ctx context.Context, t testing.TB, home string) (*spark.Connector, error) {
	return spark.ResolveConnector(ctx, spark.ConnectorOptions{Home: home, CacheDir: filepath.Join(testutil.BinDir(t), "s3a")})
}

// Spec parses a spec's body (everything after apiVersion and kind).
func Spec(t testing.TB, yaml string) *spec.Cluster {
	t.Helper()
	c, err := spec.Parse("test.yaml", []byte("apiVersion: sparkplane.dev/v1alpha1\nkind: Cluster\n"+yaml), spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// App writes an application file for the stand-in, whose directives say what it does
// (see package standin).
func App(t testing.TB, name, directives string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("# standin: "+directives+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// NothingLeft checks that neither the provider nor the process table knows the cluster.
func (e *Env) NothingLeft(t testing.TB, name string) {
	t.Helper()
	if _, err := e.Prov.Get(context.Background(), name); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("the provider still has %s: %v", name, err)
	}
	dir := filepath.Join(e.Root, "clusters", name)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists", dir)
	}
	out, _ := exec.Command("pgrep", "-f", dir).Output()
	if len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("processes of %s still run: %s", name, out)
	}
}

// RunJob submits js through m and waits for its end; it fails the test, with the driver's
// output and the tail of its stderr, unless the job finished in deploy mode mode and check
// accepts its stdout.
func RunJob(t *testing.T, ctx context.Context, m *cluster.Manager, ref cluster.Ref, js cluster.JobSpec, mode string, check func(stdout string) error) {
	t.Helper()
	job, err := m.Submit(ctx, ref, js)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	final, err := m.Wait(ctx, ref, job.ID, cluster.WaitOptions{Stdout: &stdout})
	if err == nil && (final.State != state.JobFinished || final.DeployMode != mode) {
		err = fmt.Errorf("%s, %s mode", final.State, final.DeployMode)
	}
	if err == nil {
		err = check(stdout.String())
	}
	if err != nil {
		var logs bytes.Buffer
		m.Logs(ctx, ref, job.ID, agentapi.Stderr, false, &logs)
		t.Errorf("%s job: %v\nstdout:\n%s\nstderr:\n%s", mode, err, stdout.String(), testutil.TailString(logs.String(), 30))
	}
}
