package hosts_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/cluster/clustertest"
	"github.com/sparkplane/sparkplane/internal/daemon"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/provider/hosts"
	"github.com/sparkplane/sparkplane/internal/provider/hosts/hoststest"
	"github.com/sparkplane/sparkplane/internal/provider/providertest"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// testbed is n real sshd hosts, a known_hosts file that lists them (so that host keys are
// checked strictly), the key they let in, and a provider whose sparkplane is the test's build.
type testbed struct {
	hosts  []*hoststest.Host
	key    string
	known  string
	p      *hosts.Provider
	root   string
	t      testing.TB
	binary func(string) (string, error)
	getenv func(string) string
}

func newTestbed(t testing.TB, n int) *testbed {
	key, pub := clientKey(t, "sparkplane-test")
	tb := &testbed{hosts: hoststest.Start(t, n, pub), key: key, known: filepath.Join(t.TempDir(), "known_hosts"), root: t.TempDir(), t: t}
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
	tb.binary = func(string) (string, error) { return bin, nil }
	tb.getenv = func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}
	tb.p = hosts.New(hosts.Options{Root: tb.root, Binary: tb.binary, Getenv: tb.getenv, Spark: tb.spark})
	return tb
}

// spark finds the distribution for hosts added after create, as the CLI's resolver does: the
// tested line of the cluster's Spark version, packed.
func (tb *testbed) spark(_ context.Context, c *spec.Cluster) (*spark.Distribution, error) {
	for _, line := range sparktest.Lines() {
		if d, err := spark.OpenHome(sparktest.RealHome(tb.t, line)); err == nil && d.Version == c.Spark.Version {
			d.Tarball = sparktest.Packed(tb.t, d.Home, d.Version)
			return d, nil
		}
	}
	return nil, fmt.Errorf("no tested Spark line is Spark %s", c.Spark.Version)
}

// openStore is a state database of the test's own.
func openStore(t *testing.T) *state.Store {
	t.Helper()
	store, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// packedSpark is the line's real Spark with a tarball packed once (sparktest.Packed), as a
// downloaded release has one: the tests' creates copy it rather than pack it again.
func packedSpark(t testing.TB, line string) *spark.Distribution {
	t.Helper()
	dist, err := spark.OpenHome(sparktest.RealHome(t, line))
	if err != nil {
		t.Fatal(err)
	}
	dist.Tarball = sparktest.Packed(t, dist.Home, dist.Version)
	return dist
}

// spec is a cluster on the testbed: the first host the master, the others its workers.
func (tb *testbed) spec(t testing.TB, version string) func(name string, workers int) *spec.Cluster {
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
	dist := packedSpark(t, sparktest.Newest())
	providertest.Run(t, providertest.Harness{Provider: tb.p, Spec: tb.spec(t, dist.Version),
		Options: func(*testing.T) provider.CreateOptions { return provider.CreateOptions{Spark: dist} }, Timeout: 3 * time.Minute})
	hostsClean(t, tb, "after every destroy")
}

// hostsClean checks that no host holds anything of sparkplane's: the directory each has of its
// own is as it was before the test, empty.
func hostsClean(t *testing.T, tb *testbed, when string) {
	t.Helper()
	for _, h := range tb.hosts {
		if left, _ := os.ReadDir(h.Private); len(left) > 0 {
			t.Errorf("%s: %s: %s holds %v", when, h.Addr, hoststest.PrivateDir, left)
		}
		if left, _ := os.ReadDir(filepath.Join(h.Spool, "crontabs")); len(left) > 0 {
			t.Errorf("%s: %s: crontabs %v are left", when, h.Addr, left)
		}
		if left := h.Processes(); len(left) > 0 {
			t.Errorf("%s: %s still runs %q", when, h.Addr, left)
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
	home := sparktest.RealHome(t, sparktest.Newest())
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
	err = try("port", nil, func() { proc.Stop(5 * time.Second) })
	if err == nil || !strings.Contains(err.Error(), busy.Addr+": port 7443, the agent's, is taken") {
		t.Errorf("a taken port: %v", err)
	}
	t.Logf("a taken port: %v", err)

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
// rejoins Spark as a new Spark worker of the same node; so it does after the host reboots (cron
// runs the supervisor at boot: the test hosts have no systemd). Destroy takes the crontab line
// away again.
func TestRealSparkKilledAgentRejoins(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sshd hosts and real Spark")
	}
	tb := newTestbed(t, 2)
	dist := packedSpark(t, sparktest.Newest())
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
	second, _ := aliveOn(ctx, tb.p, c.Name, secret, w.Addr)

	// A reboot: everything on the host killed, then what cron runs at boot.
	ran := w.Reboot()
	if len(ran) != 1 || !strings.Contains(ran[0], "run.sh") {
		t.Fatalf("at boot cron ran %q, want the cluster's supervisor", ran)
	}
	testutil.Eventually(t, 3*time.Minute, "the worker rejoins Spark after the reboot", func() error {
		id, err := aliveOn(ctx, tb.p, c.Name, secret, w.Addr)
		if err == nil && (id == first || id == second) {
			err = fmt.Errorf("still an earlier Spark worker %s", id)
		}
		return err
	})
	log, _ := os.ReadFile(filepath.Join(w.Private, "clusters", c.Name, "agent.log"))
	if n := strings.Count(string(log), `msg="agent started"`); n != 3 {
		t.Errorf("the agent started %d times, want 3 (create, supervisor, boot):\n%s", n, log)
	}
	if err := tb.p.Destroy(ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	hostsClean(t, tb, "after destroy")
}

// Through the manager, as the CLI drives it, on Spark 3.5 (the conformance suite runs 4.x), on
// hosts this machine reaches only through a jump host (SSH and the agents' API both go through
// it): a host named to sparkplane add joins the cluster, a JVM job runs in cluster mode (its
// driver on a worker host), the host is removed by name (drained in Spark first, then left as
// it was), a Python job runs in client mode, another machine finds the cluster on its master and
// reads its status, and destroy leaves every host clean.
func TestRealSparkAddRemoveAndJobsThroughTheManager(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sshd hosts and real Spark")
	}
	tb := newTestbed(t, 4)
	line := sparktest.Oldest()
	jar := sparktest.JVMExample(t, line)
	// The provider packs this line's Spark itself (the other tests hand it a packed one).
	dist, err := spark.OpenHome(sparktest.RealHome(t, line))
	if err != nil {
		t.Fatal(err)
	}
	// The first host is only the jump host; this machine cannot reach the others but through it.
	jump, master, worker, spare := tb.hosts[0], tb.hosts[1], tb.hosts[2], tb.hosts[3]
	for _, h := range tb.hosts[1:] {
		h.Unreachable()
	}
	c := tb.spec(t, dist.Version)("managed", 1)
	c.Hosts.Master, c.Hosts.Workers, c.Hosts.Jump = master.Addr, []string{worker.Addr}, jump.Addr
	c.Spark.Conf = map[string]string{"spark.executor.memory": "512m", "spark.driver.memory": "512m"}
	extra := spare.Addr // named to add, not in hosts.workers
	reg := provider.NewRegistry()
	reg.Register(hosts.Name, func() (provider.Provider, error) { return tb.p, nil })
	m := &cluster.Manager{Providers: reg, Store: openStore(t), Progress: &clustertest.Recorder{}, ReadyTimeout: 4 * time.Minute, PollInterval: 200 * time.Millisecond,
		Spark: func(context.Context, *spec.Cluster) (*spark.Distribution, error) { return dist, nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	ref := cluster.Ref{Name: c.Name, Provider: hosts.Name}
	t.Cleanup(func() { m.Destroy(context.Background(), ref) })
	if _, err := m.Create(ctx, c, cluster.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	if _, err := m.AddHosts(ctx, ref, []string{master.Addr}); err == nil || !strings.Contains(err.Error(), "already runs on "+master.Addr) {
		t.Errorf("adding the master's host: %v", err)
	}
	added, err := m.AddHosts(ctx, ref, []string{extra})
	if err != nil || !slices.Equal(added, []string{extra}) {
		t.Fatalf("add %s: %v %v", extra, added, err)
	}
	if _, err := m.Add(ctx, ref, 1); err == nil || !strings.Contains(err.Error(), "unused host") {
		t.Errorf("adding one more than hosts.workers lists: %v", err)
	}

	run := func(js cluster.JobSpec, mode string, check func(stdout string) error) {
		t.Helper()
		clustertest.RunJob(t, ctx, m, ref, js, mode, check)
	}
	out := filepath.Join(t.TempDir(), "counts")
	in, want, printed := sparktest.WordsInput(t, out)
	run(cluster.JobSpec{Application: jar, Class: sparktest.WordCount, Args: []string{in, out}}, spark.ClusterMode, func(stdout string) error {
		if !strings.Contains(stdout, printed) {
			return fmt.Errorf("the driver's output lacks %q", printed)
		}
		if got := sparktest.ReadPart(t, out); got != want {
			return fmt.Errorf("counts:\n%s\nwant:\n%s", got, want)
		}
		return nil
	})

	removed, err := m.Remove(ctx, ref, agentapi.RemoveWorkersRequest{Nodes: []string{extra}})
	if err != nil || !slices.Equal(removed, []string{extra}) {
		t.Fatalf("remove %s: %v %v", extra, removed, err)
	}
	if left, _ := os.ReadDir(spare.Private); len(left) > 0 {
		t.Errorf("%s holds %v after remove", extra, left)
	}
	if left := spare.Processes(); len(left) > 0 {
		t.Errorf("%s still runs %q after remove", extra, left)
	}
	got, err := tb.p.Get(ctx, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	if ws := got.Workers(); len(ws) != 1 || ws[0].ID != c.Hosts.Workers[0] {
		t.Errorf("after remove the manifest lists %+v", ws)
	}

	pi := filepath.Join(testutil.RepoRoot(t), "examples", "pi.py")
	run(cluster.JobSpec{Application: pi, Args: []string{"4"}}, spark.ClientMode, func(stdout string) error {
		if !strings.Contains(stdout, "Pi is roughly 3.1") {
			return errors.New("no estimate of pi")
		}
		return nil
	})

	// From another machine (a state and a provider of its own, no record of the cluster), as
	// sparkplane list -p hosts MASTER finds it: the cluster is found on its master, and its
	// status comes through the jump host as from the machine that made it.
	other := &cluster.Manager{Providers: provider.NewRegistry(), Store: openStore(t), Progress: &clustertest.Recorder{}, PollInterval: 200 * time.Millisecond}
	otherP := hosts.New(hosts.Options{Root: t.TempDir(), Binary: tb.binary, Getenv: tb.getenv, Spark: tb.spark})
	other.Providers.Register(hosts.Name, func() (provider.Provider, error) { return otherP, nil })
	look := *c
	lookHosts := *c.Hosts
	lookHosts.Workers = nil
	look.Name, look.Hosts = "", &lookHosts
	found, err := other.Find(ctx, &look)
	if err != nil || len(found) != 1 || found[0].Name != c.Name {
		t.Fatalf("find from another machine: %+v %v", found, err)
	}
	if st, err := other.Status(ctx, ref); err != nil || st.Agent.AliveWorkers() != 1 {
		t.Errorf("status from another machine: %+v %v", st, err)
	}
	if err := m.Destroy(ctx, ref); err != nil {
		t.Fatal(err)
	}
	hostsClean(t, tb, "after destroy")
}

// BenchmarkRealSparkCreate creates a cluster on 3 and on 8 real sshd hosts, sparkplane and
// Spark copied to each (Spark packed once beforehand, as a second create finds it), every host
// installed at once and then one after another; it reports the seconds to a cluster whose
// master's agent answers. Destroy is not timed.
//
//	go test -run '^$' -bench RealSparkCreate -benchtime 1x ./internal/provider/hosts/
func BenchmarkRealSparkCreate(b *testing.B) {
	dist := packedSpark(b, sparktest.Newest())
	tb := newTestbed(b, 8)
	for _, n := range []int{3, 8} {
		for _, mode := range []struct {
			name     string
			parallel int
		}{{"at-once", 0}, {"one-by-one", 1}} {
			b.Run(fmt.Sprintf("hosts=%d/%s", n, mode.name), func(b *testing.B) {
				p := hosts.New(hosts.Options{Root: tb.root, Binary: tb.binary, Getenv: tb.getenv, Spark: tb.spark, Parallel: mode.parallel})
				for i := 0; i < b.N; i++ {
					c := tb.spec(b, dist.Version)(fmt.Sprintf("bench-%d-%d", n, i), n-1)
					start := time.Now()
					if _, err := p.Create(context.Background(), c, provider.CreateOptions{Spark: dist, Secret: "bench-secret-0123456789"}); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(time.Since(start).Seconds(), "s/create")
					b.StopTimer()
					if err := p.Destroy(context.Background(), c.Name); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
	}
}
