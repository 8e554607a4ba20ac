package hosts_test

import (
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

	"github.com/sparkplane/sparkplane/internal/daemon"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/provider/hosts"
	"github.com/sparkplane/sparkplane/internal/provider/hosts/hoststest"
	"github.com/sparkplane/sparkplane/internal/provider/providertest"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// testbed is n real sshd hosts, a known_hosts file that lists them (so that host keys are
// checked strictly), the key they let in, and a provider whose sparkplane is the test's build.
type testbed struct {
	hosts []*hoststest.Host
	key   string
	known string
	p     *hosts.Provider
	root  string
}

func newTestbed(t *testing.T, n int) *testbed {
	key, pub := clientKey(t, "sparkplane-test")
	tb := &testbed{hosts: hoststest.Start(t, n, pub), key: key, known: filepath.Join(t.TempDir(), "known_hosts"), root: t.TempDir()}
	var lines []string
	for _, h := range tb.hosts {
		pubKey, err := os.ReadFile(h.HostKey + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(pubKey))
		lines = append(lines, h.Addr+" "+f[0]+" "+f[1])
	}
	if err := os.WriteFile(tb.known, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	home := t.TempDir()
	tb.p = hosts.New(hosts.Options{Root: tb.root, Binary: func(string) (string, error) { return bin, nil },
		Getenv: func(k string) string {
			if k == "HOME" {
				return home
			}
			return ""
		}})
	return tb
}

// spec is a cluster on the testbed: the first host the master, the others its workers.
func (tb *testbed) spec(t *testing.T, version string) func(name string, workers int) *spec.Cluster {
	var workers []string
	for _, h := range tb.hosts[1:] {
		workers = append(workers, h.Addr)
	}
	return func(name string, n int) *spec.Cluster {
		c, err := spec.Parse("test.yaml", fmt.Appendf(nil, `apiVersion: sparkplane.dev/v1alpha1
kind: Cluster
name: %s
provider: hosts
spark: {version: %s}
workers: {count: %d, cores: 1, memory: 1g}
hosts: {master: %s, workers: [%s], user: root, identityFile: %s, knownHosts: %s}
`, name, version, n, tb.hosts[0].Addr, strings.Join(workers, ", "), tb.key, tb.known), spec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// TestRealSparkConformance runs the providers' conformance suite on four real sshd hosts, each
// a network namespace with a directory of its own: sparkplane and real Spark copied to each,
// checked by SHA-256, the agents under their supervisors.
func TestRealSparkConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sshd hosts and real Spark")
	}
	tb := newTestbed(t, 4)
	line := sparktest.Lines()[len(sparktest.Lines())-1]
	home := sparktest.RealHome(t, line)
	dist, err := spark.OpenHome(home)
	if err != nil {
		t.Fatal(err)
	}
	providertest.Run(t, providertest.Harness{Provider: tb.p, Spec: tb.spec(t, dist.Version),
		Options: func(*testing.T) provider.CreateOptions { return provider.CreateOptions{Spark: dist} }, Timeout: 3 * time.Minute})
	for _, h := range tb.hosts {
		if left, _ := os.ReadDir(h.Private); len(left) > 0 {
			t.Errorf("%s: %s holds %v after every destroy", h.Addr, hoststest.PrivateDir, left)
		}
	}
}

// hostsClean checks that no host holds anything of sparkplane's: the directory each has of its
// own is as it was before the test, empty.
func hostsClean(t *testing.T, tb *testbed, when string) {
	t.Helper()
	for _, h := range tb.hosts {
		if left, _ := os.ReadDir(h.Private); len(left) > 0 {
			t.Errorf("%s: %s: %s holds %v", when, h.Addr, hoststest.PrivateDir, left)
		}
	}
}

// What goes wrong on a host names the host and the cause, and what create did elsewhere goes
// with Destroy: a port the agent needs taken on one host, a host known_hosts does not list,
// sshd killed on one host in the middle of create.
func TestCreateRefusalsOnRealHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sshd hosts")
	}
	tb := newTestbed(t, 3)
	home := sparktest.RealHome(t, sparktest.Lines()[len(sparktest.Lines())-1])
	dist, err := spark.OpenHome(home)
	if err != nil {
		t.Fatal(err)
	}
	specs := tb.spec(t, dist.Version)
	ctx := context.Background()
	try := func(name string, progress func(string), mend func()) error {
		t.Helper()
		// The hosts' Spark at spark.home (they share this machine's files): nothing of Spark is
		// packed or copied, which these refusals do not need.
		c := specs(name, 2)
		c.Spark.Home = dist.Home
		_, err := tb.p.Create(ctx, c, provider.CreateOptions{Secret: "refusal-secret-0123456789", Progress: progress})
		if mend != nil {
			mend()
		}
		if derr := tb.p.Destroy(ctx, name); derr != nil {
			t.Errorf("destroy after %s: %v", name, derr)
		}
		hostsClean(t, tb, "after "+name)
		return err
	}

	// The agent's port, taken on the first worker.
	busy := tb.hosts[1]
	listener := exec.Command("ip", "netns", "exec", busy.Name, "python3", "-c",
		"import socket,time; s=socket.socket(); s.bind(('0.0.0.0', 7443)); s.listen(); time.sleep(600)")
	proc, err := daemon.Start("listener", listener, filepath.Join(t.TempDir(), "listener.log"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the port is taken", func() error {
		out, _ := exec.Command("ip", "netns", "exec", busy.Name, "ss", "-Hltn", "sport = :7443").Output()
		if len(out) == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	err = try("port", nil, nil)
	if err == nil || !strings.Contains(err.Error(), busy.Addr+": port 7443, the agent's, is taken") {
		t.Errorf("a taken port: %v", err)
	}
	t.Logf("a taken port: %v", err)
	proc.Stop(5 * time.Second)

	// A host known_hosts does not list.
	known, _ := os.ReadFile(tb.known)
	stranger := tb.hosts[2]
	var kept []string
	for _, l := range strings.Split(strings.TrimSpace(string(known)), "\n") {
		if !strings.HasPrefix(l, stranger.Addr+" ") {
			kept = append(kept, l)
		}
	}
	os.WriteFile(tb.known, []byte(strings.Join(kept, "\n")+"\n"), 0o600)
	err = try("unknown", nil, func() {
		// Destroy, too, refuses the host until it is known: trust it now.
		if derr := tb.p.Destroy(ctx, "unknown"); derr == nil || !strings.Contains(derr.Error(), "run destroy again") {
			t.Errorf("destroy with a host it may not reach: %v", derr)
		}
		os.WriteFile(tb.known, known, 0o600)
	})
	var unknown *hosts.UnknownHostError
	if !errors.As(err, &unknown) || unknown.Host != stranger.Addr || unknown.Fingerprint != stranger.Fingerprint() {
		t.Errorf("an unknown host: %v", err)
	}

	// One host down (sshd and its sessions killed) once it has the binary: the others'
	// installs go with destroy, that host's too once it answers again.
	victim := tb.hosts[2]
	var once sync.Once
	err = try("killed", func(line string) {
		if strings.HasPrefix(line, victim.Addr+": sparkplane copied") {
			once.Do(victim.Down)
		}
	}, victim.StartSSHD)
	if err == nil || !strings.Contains(err.Error(), victim.Addr) {
		t.Errorf("sshd killed in the middle of create: %v", err)
	}
	t.Logf("sshd killed: %v", err)
}

// aliveOn is the Spark id of the worker of node id in the cluster's master agent, once ALIVE.
func aliveOn(ctx context.Context, p provider.Provider, name, secret, id string) (string, error) {
	got, err := p.Get(ctx, name)
	if err != nil {
		return "", err
	}
	client, err := provider.AgentClient(ctx, p, name, got.Agent, secret)
	if err != nil {
		return "", err
	}
	st, err := client.Status(ctx)
	if err != nil {
		return "", err
	}
	for _, w := range st.Workers {
		if w.NodeID == id && w.State == spark.WorkerAlive {
			return w.SparkID, nil
		}
	}
	return "", fmt.Errorf("%s is not alive in Spark: %+v", id, st.Workers)
}

// A worker's agent killed with SIGKILL is started again by its supervisor, and the worker
// rejoins Spark as a new Spark worker of the same node.
func TestRealSparkKilledAgentRejoins(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sshd hosts and real Spark")
	}
	tb := newTestbed(t, 2)
	home := sparktest.RealHome(t, sparktest.Lines()[len(sparktest.Lines())-1])
	dist, err := spark.OpenHome(home)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := tb.spec(t, dist.Version)("rejoin", 1)
	const secret = "rejoin-secret-0123456789"
	t.Cleanup(func() { tb.p.Destroy(context.Background(), c.Name) })
	if _, err := tb.p.Create(ctx, c, provider.CreateOptions{Spark: dist, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	w := tb.hosts[1]
	var first string
	testutil.Eventually(t, 3*time.Minute, "the worker is alive", func() (err error) { first, err = aliveOn(ctx, tb.p, c.Name, secret, w.Addr); return err })
	pid, err := os.ReadFile(filepath.Join(w.Private, "clusters", c.Name, "supervisor.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("pkill", "-KILL", "-P", strings.TrimSpace(string(pid)), "-f", "agent --hosts").CombinedOutput(); err != nil {
		t.Fatalf("pkill the agent: %v %s", err, out)
	}
	testutil.Eventually(t, 3*time.Minute, "the worker rejoins Spark under a new agent", func() error {
		id, err := aliveOn(ctx, tb.p, c.Name, secret, w.Addr)
		if err == nil && id == first {
			err = fmt.Errorf("still the first Spark worker %s", id)
		}
		return err
	})
	log, _ := os.ReadFile(filepath.Join(w.Private, "clusters", c.Name, "agent.log"))
	if n := strings.Count(string(log), `msg="agent started"`); n != 2 {
		t.Errorf("the agent started %d times:\n%s", n, log)
	}
	if err := tb.p.Destroy(ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	hostsClean(t, tb, "after destroy")
}
