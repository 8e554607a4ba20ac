package nomad_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/cluster/clustertest"
	"github.com/sparkplane/sparkplane/internal/daemon"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/provider/nomad"
	"github.com/sparkplane/sparkplane/internal/provider/providertest"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// startNomad runs a real Nomad agent in dev mode (server and client in one) on loopback ports of
// its own, with raw_exec enabled, and returns its API address.
func startNomad(t testing.TB) string {
	addr, _ := startNomadServer(t, false)
	return addr
}

// startNomadServer is startNomad with more configuration, and the address of the agent's RPC,
// which further clients join (startNomadClient). With acls, it does not wait for the client:
// the caller bootstraps the ACLs first.
func startNomadServer(t testing.TB, acls bool, extraHCL ...string) (addr, rpc string) {
	t.Helper()
	if acls {
		extraHCL = append(extraHCL, "acl {\n  enabled = true\n}")
	}
	httpPort, rpcPort := testutil.FreePort(t), testutil.FreePort(t)
	proc := runNomad(t, fmt.Sprintf("ports {\n  http = %d\n  rpc = %d\n  serf = %d\n}\n%s\n", httpPort, rpcPort, testutil.FreePort(t), strings.Join(extraHCL, "\n")),
		"-dev")
	addr = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	if err := proc.WaitHTTP(context.Background(), addr+"/v1/status/leader", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if acls {
		return addr, ""
	}
	waitClients(t, addr, 1)
	return addr, fmt.Sprintf("127.0.0.1:%d", rpcPort)
}

// startNomadClient runs a second Nomad client on this machine, joined to the server at rpc, with
// the given node meta (HCL), and returns its node id once the server has it ready.
func startNomadClient(t testing.TB, addr, rpc, name, meta string) string {
	t.Helper()
	runNomad(t, fmt.Sprintf("name = %q\nadvertise {\n  http = \"127.0.0.1\"\n  rpc = \"127.0.0.1\"\n  serf = \"127.0.0.1\"\n}\nports {\n  http = %d\n}\nclient {\n  enabled = true\n  servers = [%q]\n  meta {\n    %s\n  }\n}\n",
		name, testutil.FreePort(t), rpc, meta), "-client")
	nodes := waitClients(t, addr, 2)
	for _, n := range nodes {
		if n.Name == name {
			return n.ID
		}
	}
	t.Fatalf("no client %s among %+v", name, nodes)
	return ""
}

// runNomad starts a Nomad agent with the testbed's dev.hcl and the given configuration, and
// stops it at the test's end.
func runNomad(t testing.TB, hcl string, mode string) *daemon.Process {
	t.Helper()
	bin := testutil.Testbed(t, "nomad")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfg, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := filepath.Join(testutil.RepoRoot(t), "hack", "testbed", "nomad", "dev.hcl")
	cmd := exec.Command(bin, "agent", mode, "-bind", "127.0.0.1", "-network-interface", "lo", "-config", dev, "-config", cfg,
		"-data-dir", filepath.Join(dir, "data"))
	// The cloud fingerprinters fail on the sandbox's AWS_CA_BUNDLE (dev.hcl turns them off too).
	cmd.Env = append(os.Environ(), "AWS_CA_BUNDLE=")
	proc, err := daemon.Start("Nomad", cmd, filepath.Join(dir, "nomad.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proc.Stop(30 * time.Second)
		// The client mounts each task's secrets directory (a tmpfs) and leaves what it mounted
		// when it stops: unmount it, so that the test's directory can go.
		unmountUnder(dir)
	})
	return proc
}

// waitClients waits until the server at addr has n client nodes ready with raw_exec.
func waitClients(t testing.TB, addr string, n int, token ...string) []*api.NodeListStub {
	t.Helper()
	cl, err := api.NewClient(&api.Config{Address: addr, SecretID: strings.Join(token, "")})
	if err != nil {
		t.Fatal(err)
	}
	var ready []*api.NodeListStub
	testutil.Eventually(t, 2*time.Minute, fmt.Sprintf("%d Nomad client node(s) ready with raw_exec", n), func() error {
		nodes, _, err := cl.Nodes().List(nil)
		if err != nil {
			return err
		}
		ready = ready[:0]
		for _, n := range nodes {
			if n.Status == "ready" && n.Drivers["raw_exec"] != nil && n.Drivers["raw_exec"].Healthy {
				ready = append(ready, n)
			}
		}
		if len(ready) < n {
			return fmt.Errorf("nodes: %+v", nodes)
		}
		return nil
	})
	return ready
}

func newProvider(addr string) *nomad.Provider {
	return nomad.New(nomad.Options{Config: func() *api.Config {
		cfg := api.DefaultConfig()
		cfg.Address = addr
		return cfg
	}})
}

// specFor is a small cluster on the Nomad agent at addr, its agents the test's sparkplane and
// its Spark home (on the one client node, this machine).
func specFor(t testing.TB, addr, home string) func(name string, workers int) *spec.Cluster {
	bin := testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	return func(name string, workers int) *spec.Cluster {
		c, err := spec.Parse("test.yaml", fmt.Appendf(nil, `apiVersion: sparkplane.dev/v1alpha1
kind: Cluster
name: %s
provider: nomad
spark: {home: %s, version: %s}
workers: {count: %d, cores: 1, memory: 1g}
nomad: {address: %s, sparkplane: %s, driver: raw_exec}
`, name, home, sparkVersion(t, home), workers, addr, bin), spec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

func sparkVersion(t testing.TB, home string) string {
	d, err := spark.OpenHome(home)
	if err != nil {
		t.Fatal(err)
	}
	return d.Version
}

// TestRealSparkConformance runs the providers' conformance suite on a real Nomad agent, every
// node a raw_exec task running sparkplane's agent and real Spark. It runs on the oldest Spark
// line, the package's other tests on the newest; the local provider's runs it on each.
func TestRealSparkConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Nomad agent and real Spark")
	}
	addr := startNomad(t)
	home := sparktest.RealHome(t, sparktest.Oldest())
	providertest.Run(t, providertest.Harness{Provider: newProvider(addr), Spec: specFor(t, addr, home),
		Options: func(*testing.T) provider.CreateOptions { return provider.CreateOptions{} }, Timeout: 5 * time.Minute})
}

// The master's agent acts on its own job from inside its task, with Nomad's ACLs on: create
// attaches the cluster's ACL policy to its job, and when lifetime.maxAge ends the cluster, the
// agent stops and purges the job and deletes the variable through the Nomad API with its task's
// workload identity. The policy it may not delete goes with the next destroy from outside.
func TestRealSparkLifetimeEndsTheJobFromInside(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Nomad agent and real Spark")
	}
	addr, root, token := startNomadWithACLs(t)
	home := sparktest.RealHome(t, sparktest.Newest())
	c := specFor(t, addr, home)("short", 1)
	c.Lifetime.MaxAge = time.Minute
	p := nomad.New(nomad.Options{Config: func() *api.Config {
		cfg := api.DefaultConfig()
		cfg.Address, cfg.SecretID = addr, token
		return cfg
	}})
	ctx := context.Background()
	t.Cleanup(func() { p.Destroy(context.Background(), c.Name) })
	if _, err := p.Create(ctx, c, provider.CreateOptions{Secret: "lifetime-secret-0123456789"}); err != nil {
		t.Fatal(err)
	}
	policy := nomad.PolicyName("default", c.Name)
	if pol, _, err := root.ACLPolicies().Info(policy, nil); err != nil || pol.JobACL == nil || pol.JobACL.JobID != nomad.JobID(c.Name) {
		t.Fatalf("the cluster's ACL policy: %+v %v", pol, err)
	}
	testutil.Eventually(t, 4*time.Minute, "the master's agent ends its cluster at lifetime.maxAge", func() error {
		if _, err := p.Get(ctx, c.Name); !errors.Is(err, provider.ErrNotFound) {
			return fmt.Errorf("Get: %v", err)
		}
		if _, _, err := root.Variables().Read(nomad.VariablePath(c.Name), nil); !errors.Is(err, api.ErrVariablePathNotFound) {
			return fmt.Errorf("the variable: %v", err)
		}
		if job, _, err := root.Jobs().Info(nomad.JobID(c.Name), nil); err == nil {
			return fmt.Errorf("the job is still there (stop %v)", *job.Stop)
		}
		return nil
	})
	if err := p.Destroy(ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	if _, _, err := root.ACLPolicies().Info(policy, nil); err == nil {
		t.Errorf("policy %s is still there after destroy", policy)
	}
}

// What Nomad refuses is an error with its reason: an unreachable Nomad, and a job the scheduler
// cannot place (no client node in the spec's datacenters); either way nothing is left.
func TestCreateRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Nomad agent")
	}
	addr := startNomad(t)
	ctx := context.Background()
	standIn := sparktest.Home(t, "3.5.3") // never started: nothing is placed
	c := specFor(t, addr, standIn)("nowhere", 1)
	c.Nomad.Datacenters = []string{"dc-that-has-no-nodes"}
	p := newProvider(addr)
	_, err := p.Create(ctx, c, provider.CreateOptions{Secret: "refusal-secret-0123456789"})
	t.Logf("a job no node can take: %v", err)
	if err == nil || !strings.Contains(err.Error(), "cannot be placed in Nomad") || !strings.Contains(err.Error(), "group master") {
		t.Errorf("a job no node can take: %v", err)
	}
	if err := p.Destroy(ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(ctx, c.Name); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("after destroy: %v", err)
	}

	gone := "http://" + testutil.FreeAddr(t)
	c = specFor(t, gone, standIn)("unreachable", 1)
	if _, err := newProvider(gone).Create(ctx, c, provider.CreateOptions{Secret: "x"}); err == nil || !strings.Contains(err.Error(), "cannot reach Nomad") {
		t.Errorf("Nomad not there: %v", err)
	}
	c = specFor(t, addr, standIn)("rel", 1)
	c.Spark.Home = "relative/spark"
	if _, err := p.Plan(ctx, c); err == nil || !strings.Contains(err.Error(), "spark.home") {
		t.Errorf("a relative spark.home: %v", err)
	}
}

// export nomad writes the job create would register: Nomad's own CLI validates and runs it
// (nomad job run -json), and once the variable its README asks for is there, sparkplane finds
// the cluster through Nomad's API alone and its master's agent answers.
func TestRealSparkExportedJobRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Nomad agent and real Spark")
	}
	addr := startNomad(t)
	home := sparktest.RealHome(t, sparktest.Newest())
	c := specFor(t, addr, home)("exported", 1)
	// Placement as Nomad's own validator and scheduler take it.
	c.Nomad.NodePool = "default"
	c.Nomad.Constraints = []spec.NomadConstraint{{Attribute: "${attr.kernel.name}", Value: "linux"}, {Attribute: "${attr.cpu.numcores}", Operator: ">=", Value: "1"}}
	p := newProvider(addr)
	t.Cleanup(func() { p.Destroy(context.Background(), c.Name) })
	dir := t.TempDir()
	files, err := p.Export(c, dir, false)
	if err != nil || len(files) != 3 {
		t.Fatalf("export: %v %v", files, err)
	}
	if b, _ := os.ReadFile(files[0]); !strings.Contains(string(b), `"LTarget": "${attr.kernel.name}"`) || !strings.Contains(string(b), `"NodePool": "default"`) {
		t.Errorf("the job's placement is not in %s:\n%s", files[0], b)
	}
	if _, err := p.Export(c, dir, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("a second export over the first: %v", err)
	}
	readme, _ := os.ReadFile(filepath.Join(dir, "README.md"))
	if !strings.Contains(string(readme), "nomad var put "+nomad.VariablePath(c.Name)) {
		t.Errorf("README:\n%s", readme)
	}
	nomadCLI := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(testutil.Testbed(t, "nomad"), args...)
		cmd.Env = append(os.Environ(), "NOMAD_ADDR="+addr)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("nomad %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	nomadCLI("job", "validate", "-json", files[0])
	if b, _ := os.ReadFile(files[1]); !strings.Contains(string(b), nomad.VariablePath(c.Name)) {
		t.Errorf("the policy %s:\n%s", files[1], b)
	}
	cert, key, err := agentapi.NewCertificate(c.Name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "agent.crt"), cert, 0o644)
	os.WriteFile(filepath.Join(dir, "agent.key"), key, 0o600)
	const secret = "exported-secret-0123456789"
	nomadCLI("var", "put", nomad.VariablePath(c.Name), "token="+secret, "tls_key=@"+filepath.Join(dir, "agent.key"), "tls_cert=@"+filepath.Join(dir, "agent.crt"))
	nomadCLI("job", "run", "-detach", "-json", files[0])
	testutil.Eventually(t, 3*time.Minute, "the exported cluster's master agent answers", func() error {
		got, err := p.Get(context.Background(), c.Name)
		if err != nil {
			return err
		}
		if got.Agent == "" || len(got.Workers()) != 1 {
			return fmt.Errorf("cluster %+v", got)
		}
		client, err := provider.AgentClient(context.Background(), p, c.Name, got.Agent, secret)
		if err != nil {
			return err
		}
		_, err = client.Status(context.Background())
		return err
	})
}

// With Nomad's ACLs on, a token whose policy only reads is refused at the first write, with
// Nomad's reason and where a token goes; nothing is left half-made.
func TestReadOnlyTokenIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Nomad agent")
	}
	addr, root, _ := startNomadWithACLs(t)
	if _, err := root.ACLPolicies().Upsert(&api.ACLPolicy{Name: "read-only", Rules: `namespace "default" { policy = "read" }`}, nil); err != nil {
		t.Fatal(err)
	}
	ro, _, err := root.ACLTokens().Create(&api.ACLToken{Name: "viewer", Type: "client", Policies: []string{"read-only"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := nomad.New(nomad.Options{Config: func() *api.Config {
		cfg := api.DefaultConfig()
		cfg.Address, cfg.SecretID = addr, ro.SecretID
		return cfg
	}})
	c := specFor(t, addr, sparktest.Home(t, "3.5.3"))("guarded", 1)
	_, err = p.Create(context.Background(), c, provider.CreateOptions{Secret: "guarded-secret-0123456789"})
	if err == nil || !strings.Contains(err.Error(), "Nomad refused") || !strings.Contains(err.Error(), "NOMAD_TOKEN") {
		t.Errorf("create with a read-only token: %v", err)
	}
	t.Logf("refused: %v", err)
	if _, _, err := root.Jobs().Info(nomad.JobID(c.Name), nil); err == nil {
		t.Error("the job was registered")
	}
	if _, _, err := root.Variables().Read(nomad.VariablePath(c.Name), nil); !errors.Is(err, api.ErrVariablePathNotFound) {
		t.Errorf("the variable: %v", err)
	}
}

// startNomadWithACLs is startNomad with Nomad's ACLs on, and a client with the management token
// they were bootstrapped with.
func startNomadWithACLs(t *testing.T) (addr string, root *api.Client, token string) {
	t.Helper()
	addr, _ = startNomadServer(t, true)
	root, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	var mgmt *api.ACLToken
	testutil.Eventually(t, time.Minute, "Nomad's ACLs bootstrap", func() error {
		var err error
		mgmt, _, err = root.ACLTokens().Bootstrap(nil)
		return err
	})
	root.SetSecretID(mgmt.SecretID)
	waitClients(t, addr, 1, mgmt.SecretID)
	return addr, root, mgmt.SecretID
}

// A worker's allocation that is stopped under the cluster (a lost node, an operator's alloc stop)
// is replaced by Nomad in a new allocation of the same group, whose agent registers the same
// worker with Spark again.
func TestRealSparkLostAllocationIsReplaced(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Nomad agent and real Spark")
	}
	addr := startNomad(t)
	home := sparktest.RealHome(t, sparktest.Newest())
	c := specFor(t, addr, home)("replaced", 1)
	p := newProvider(addr)
	ctx := context.Background()
	t.Cleanup(func() { p.Destroy(context.Background(), c.Name) })
	const secret = "replaced-secret-0123456789"
	got, err := p.Create(ctx, c, provider.CreateOptions{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	worker := got.Workers()[0].ID
	aliveOn := func() (string, error) {
		client, err := provider.AgentClient(ctx, p, c.Name, got.Agent, secret)
		if err != nil {
			return "", err
		}
		st, err := client.Status(ctx)
		if err != nil {
			return "", err
		}
		for _, w := range st.Workers {
			if w.State == "ALIVE" && w.NodeID == worker {
				return w.SparkID, nil
			}
		}
		return "", fmt.Errorf("worker %s is not alive in Spark: %+v", worker, st.Workers)
	}
	var sparkID string
	testutil.Eventually(t, 3*time.Minute, "the worker registers in Spark", func() (err error) { sparkID, err = aliveOn(); return err })
	cl, _ := api.NewClient(&api.Config{Address: addr})
	allocs, _, err := cl.Jobs().Allocations(nomad.JobID(c.Name), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var first string
	for _, a := range allocs {
		if a.TaskGroup == worker && a.ClientStatus == api.AllocClientStatusRunning {
			first = a.ID
			alloc, _, err := cl.Allocations().Info(a.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Allocations().Stop(alloc, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if first == "" {
		t.Fatalf("no running allocation of %s: %+v", worker, allocs)
	}
	testutil.Eventually(t, 3*time.Minute, "a new allocation of the worker's group registers it in Spark again", func() error {
		id, err := aliveOn()
		if err != nil {
			return err
		}
		if id == sparkID {
			return fmt.Errorf("Spark still has the first worker %s", id)
		}
		desc, err := p.Get(ctx, c.Name)
		if err != nil {
			return err
		}
		for _, n := range desc.Workers() {
			if n.ID == worker && n.State == provider.NodeRunning && !strings.Contains(n.Detail, first) {
				return nil
			}
		}
		return fmt.Errorf("nodes %+v", desc.Nodes)
	})
}

// workers is what the master's agent reports of the cluster's workers, by node id.
func workers(ctx context.Context, p *nomad.Provider, name, secret string) (map[string]agentapi.WorkerStatus, error) {
	got, err := p.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	client, err := provider.AgentClient(ctx, p, name, got.Agent, secret)
	if err != nil {
		return nil, err
	}
	st, err := client.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]agentapi.WorkerStatus{}
	for _, w := range st.Workers {
		out[w.NodeID] = w
	}
	return out, nil
}

// A spot cluster on a Nomad cluster with a spot client: the workers run there and the master
// does not; draining that client decommissions the worker in Spark before its allocation stops
// (the agent takes Nomad's SIGTERM as notice, having asked Nomad that the job still wants the
// worker), and the agent then exits on its own, well within the kill timeout.
func TestRealSparkDrainedWorkerDecommissionsFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two Nomad agents and real Spark")
	}
	addr, rpc := startNomadServer(t, false)
	spotNode := startNomadClient(t, addr, rpc, "spot-client", `spot = "true"`)
	home := sparktest.RealHome(t, sparktest.Newest())
	c := specFor(t, addr, home)("drained", 1)
	c.Workers.Spot = true
	c.Nomad.Spot = &spec.NomadConstraint{Attribute: "${meta.spot}", Value: "true"}
	p := newProvider(addr)
	ctx := context.Background()
	t.Cleanup(func() { p.Destroy(context.Background(), c.Name) })
	const secret = "drained-secret-0123456789"
	got, err := p.Create(ctx, c, provider.CreateOptions{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	worker := got.Workers()[0].ID
	testutil.Eventually(t, 3*time.Minute, "the worker is alive in Spark", func() error {
		ws, err := workers(ctx, p, c.Name, secret)
		if err != nil {
			return err
		}
		if w := ws[worker]; w.State != spark.WorkerAlive {
			return fmt.Errorf("worker %s: %+v", worker, w)
		}
		return nil
	})
	cl, _ := api.NewClient(&api.Config{Address: addr})
	allocs, _, err := cl.Jobs().Allocations(nomad.JobID(c.Name), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var workerAlloc string
	for _, a := range allocs {
		switch {
		case a.TaskGroup == worker && a.NodeID != spotNode:
			t.Errorf("the spot worker runs on node %s, not on the spot client %s", a.NodeID, spotNode)
		case a.TaskGroup == agentapi.RoleMaster && a.NodeID == spotNode:
			t.Error("the master runs on the spot client")
		case a.TaskGroup == worker:
			workerAlloc = a.ID
		}
	}

	// Watch the worker through the drain, as the master's agent sees it.
	seen := make(chan agentapi.WorkerStatus, 1)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		defer close(seen)
		for watchCtx.Err() == nil {
			if ws, err := workers(watchCtx, p, c.Name, secret); err == nil && ws[worker].State == spark.WorkerDecommissioned {
				seen <- ws[worker]
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	if _, err := cl.Nodes().UpdateDrainOpts(spotNode, &api.DrainOptions{DrainSpec: &api.DrainSpec{Deadline: 3 * time.Minute}}, nil); err != nil {
		t.Fatal(err)
	}
	var alloc *api.Allocation
	testutil.Eventually(t, 3*time.Minute, "the drained worker's allocation completes", func() error {
		alloc, _, err = cl.Allocations().Info(workerAlloc, nil)
		if err != nil {
			return err
		}
		if alloc.ClientStatus != api.AllocClientStatusComplete {
			return fmt.Errorf("allocation %s is %s", workerAlloc, alloc.ClientStatus)
		}
		return nil
	})
	stopWatch()
	if w, ok := <-seen; !ok {
		t.Errorf("the master's agent never saw the worker DECOMMISSIONED before its allocation ended; the worker's agent said:\n%s", taskLog(t, cl, alloc))
	} else if t.Logf("seen in the drain: %+v", w); w.Interrupted != "node-drain" {
		t.Errorf("the decommissioned worker: %+v, want interrupted by node-drain", w)
	}
	var killing, terminated *api.TaskEvent
	for _, e := range alloc.TaskStates["agent"].Events {
		switch e.Type {
		case api.TaskKilling:
			killing = e
		case api.TaskTerminated:
			terminated = e
		}
	}
	if killing == nil || terminated == nil {
		t.Fatalf("task events: %+v", alloc.TaskStates["agent"].Events)
	}
	took := time.Duration(terminated.Time - killing.Time)
	t.Logf("the agent exited %d (signal %d, %q), %s after Nomad's SIGTERM", terminated.ExitCode, terminated.Signal, terminated.Message, took)
	// The agent's own last word says whether it stopped by itself. Nomad's exit code backs it
	// up, except that a task exiting while Nomad kills it can race the raw_exec executor's
	// shutdown, and Nomad then reports -1 for a status it lost (drivers/rawexec, handleWait).
	stderr := taskLog(t, cl, alloc)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	switch {
	case took > 25*time.Second || terminated.Signal == int(syscall.SIGKILL):
		t.Errorf("the agent was killed, %s after Nomad's SIGTERM (signal %d): want it to exit on its own", took, terminated.Signal)
	case !strings.Contains(lines[len(lines)-1], `msg="agent stopped"`):
		t.Errorf("the agent's log does not end with its stop:\n%s", stderr)
	case terminated.ExitCode != 0 && terminated.ExitCode != -1:
		t.Errorf("the agent exited %d: want 0", terminated.ExitCode)
	}
}

// taskLog is what the agent of an allocation wrote to its stderr.
func taskLog(t *testing.T, cl *api.Client, alloc *api.Allocation) string {
	rc, err := cl.AllocFS().Cat(alloc, "alloc/logs/agent.stderr.0", nil)
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// With nomad.artifacts, the client nodes run what they download, checked against the spec's
// checksums, and need neither sparkplane nor Spark installed: here the test's sparkplane and a
// Spark packed from the real distribution, served over loopback HTTP. A checksum that does not
// match fails create with Nomad's reason, and nothing is left.
func TestRealSparkArtifactsAreDownloaded(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Nomad agent and real Spark")
	}
	addr := startNomad(t)
	line := sparktest.Newest()
	home := sparktest.RealHome(t, line)
	version := sparkVersion(t, home)
	artifact := serveArtifacts(t, home, version)

	c := specFor(t, addr, home)("downloaded", 1)
	c.Nomad.Driver = spec.DriverExec // in its chroot, as nobody: the artifacts are all it has of sparkplane's
	c.Spark.Home = ""
	c.Nomad.Sparkplane = "/nonexistent/sparkplane"
	c.Nomad.Artifacts = spec.NomadArtifacts{Sparkplane: artifact("sparkplane"), Spark: artifact(spark.TarballName(version))}
	p := newProvider(addr)
	ctx := context.Background()
	const secret = "downloaded-secret-0123456789"
	createAndWaitAlive(t, p, c, secret)

	bad := specFor(t, addr, home)("mismatched", 1)
	bad.Spark.Home = ""
	bad.Nomad.Artifacts = spec.NomadArtifacts{Sparkplane: artifact("sparkplane"), Spark: artifact(spark.TarballName(version))}
	bad.Nomad.Artifacts.Sparkplane.SHA256 = strings.Repeat("0", 64)
	_, err := p.Create(ctx, bad, provider.CreateOptions{Secret: secret})
	t.Logf("a mismatched checksum: %v", err)
	if err == nil || !strings.Contains(err.Error(), "Checksums did not match") || !strings.Contains(err.Error(), "nomad.artifacts") {
		t.Errorf("a mismatched checksum: %v", err)
	}
	if err := p.Destroy(ctx, bad.Name); err != nil {
		t.Fatal(err)
	}
}

// serveArtifacts serves the test's sparkplane and a Spark packed from home over loopback HTTP,
// and returns each file's artifact by name (sparkplane, spark.TarballName(version)).
func serveArtifacts(t *testing.T, home, version string) func(name string) *spec.Artifact {
	files := t.TempDir()
	bin := testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	if err := os.Link(bin, filepath.Join(files, "sparkplane")); err != nil {
		copyFile(t, bin, filepath.Join(files, "sparkplane"))
	}
	packed, tgz := sparktest.Packed(t, home, version), filepath.Join(files, spark.TarballName(version))
	if err := os.Link(packed, tgz); err != nil {
		copyFile(t, packed, tgz)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(files)))
	t.Cleanup(srv.Close)
	return func(name string) *spec.Artifact {
		return &spec.Artifact{URL: srv.URL + "/" + name, SHA256: sha256File(t, filepath.Join(files, name))}
	}
}

// createAndWaitAlive creates the cluster, waits until its workers are ALIVE in Spark as the
// master's agent reports them, and destroys it.
func createAndWaitAlive(t *testing.T, p *nomad.Provider, c *spec.Cluster, secret string) {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() { p.Destroy(context.Background(), c.Name) })
	got, err := p.Create(ctx, c, provider.CreateOptions{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 3*time.Minute, c.Name+"'s workers are alive in Spark", func() error {
		ws, err := workers(ctx, p, c.Name, secret)
		if err != nil {
			return err
		}
		for _, n := range got.Workers() {
			if w := ws[n.ID]; w.State != spark.WorkerAlive {
				return fmt.Errorf("worker %s: %+v", n.ID, w)
			}
		}
		return nil
	})
	if err := p.Destroy(ctx, c.Name); err != nil {
		t.Fatal(err)
	}
}

// The docker driver runs the agents in containers of an image with Java only (imported from
// this machine's files into a real Docker daemon), sparkplane and Spark downloaded as artifacts
// into the task's /local, on the host's network: the cluster's workers come up ALIVE in Spark.
func TestRealSparkDockerDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Docker and Nomad agents and real Spark")
	}
	sock := startDocker(t)
	image := javaImage(t, sock)
	addr, _ := startNomadServer(t, false, fmt.Sprintf("plugin \"docker\" {\n  config {\n    endpoint = %q\n  }\n}", sock))
	cl, _ := api.NewClient(&api.Config{Address: addr})
	testutil.Eventually(t, time.Minute, "Nomad's docker driver is healthy", func() error {
		nodes, _, err := cl.Nodes().List(nil)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if d := n.Drivers["docker"]; d != nil && d.Healthy {
				return nil
			}
		}
		return fmt.Errorf("nodes: %+v", nodes)
	})
	line := sparktest.Newest()
	home := sparktest.RealHome(t, line)
	version := sparkVersion(t, home)
	artifact := serveArtifacts(t, home, version)
	c := specFor(t, addr, home)("contained", 1)
	c.Nomad.Driver, c.Nomad.Image = spec.DriverDocker, image
	c.Spark.Home = ""
	c.Nomad.Artifacts = spec.NomadArtifacts{Sparkplane: artifact("sparkplane"), Spark: artifact(spark.TarballName(version))}
	createAndWaitAlive(t, newProvider(addr), c, "contained-secret-0123456789")
	testutil.Eventually(t, 2*time.Minute, "no container of the cluster runs after destroy", func() error {
		out, err := dockerCLI(sock, "ps", "-q").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			return fmt.Errorf("running: %s %v", out, err)
		}
		return nil
	})
}

func sha256File(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// A job in each deploy mode runs to its end on a Nomad cluster, through the manager as the CLI
// drives it: the JVM example in cluster mode (its driver on a worker's task) with its output
// checked, and the Python example in client mode (its driver beside the master's agent).
func TestRealSparkJobsInEachDeployMode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Nomad agent and real Spark")
	}
	addr := startNomad(t)
	line := sparktest.Newest()
	home := sparktest.RealHome(t, line)
	jar := sparktest.JVMExample(t, line)
	c := specFor(t, addr, home)("jobs", 2)
	c.Spark.Conf = map[string]string{"spark.executor.memory": "512m", "spark.driver.memory": "512m"}
	store, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := provider.NewRegistry()
	p := newProvider(addr)
	reg.Register(nomad.Name, func() (provider.Provider, error) { return p, nil })
	m := &cluster.Manager{Providers: reg, Store: store, Progress: &clustertest.Recorder{}, ReadyTimeout: 4 * time.Minute, PollInterval: 200 * time.Millisecond,
		Spark: func(context.Context, *spec.Cluster) (*spark.Distribution, error) { return spark.OpenHome(home) }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ref := cluster.Ref{Name: c.Name, Provider: nomad.Name}
	t.Cleanup(func() { m.Destroy(context.Background(), ref) })
	if _, err := m.Create(ctx, c, cluster.CreateOptions{}); err != nil {
		t.Fatal(err)
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
	pi := filepath.Join(testutil.RepoRoot(t), "examples", "pi.py")
	run(cluster.JobSpec{Application: pi, Args: []string{"4"}}, spark.ClientMode, func(stdout string) error {
		if !strings.Contains(stdout, "Pi is roughly 3.1") {
			return errors.New("no estimate of pi")
		}
		return nil
	})
	if err := m.Destroy(ctx, ref); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, addr, c.Name)
}

// assertNothingLeft checks that no job, variable or service registration of the cluster is in
// Nomad.
func assertNothingLeft(t *testing.T, addr, name string) {
	t.Helper()
	cl, _ := api.NewClient(&api.Config{Address: addr})
	if job, _, err := cl.Jobs().Info(nomad.JobID(name), nil); err == nil {
		t.Errorf("job %s is left (stop %v)", nomad.JobID(name), deref(job.Stop))
	}
	if _, _, err := cl.Variables().Read(nomad.VariablePath(name), nil); !errors.Is(err, api.ErrVariablePathNotFound) {
		t.Errorf("the variable: %v", err)
	}
	testutil.Eventually(t, time.Minute, "no service registration of "+name+" is left", func() error {
		services, _, err := cl.Services().List(nil)
		if err != nil {
			return err
		}
		for _, ns := range services {
			for _, s := range ns.Services {
				if strings.HasPrefix(s.ServiceName, nomad.JobID(name)) {
					return fmt.Errorf("service %s", s.ServiceName)
				}
			}
		}
		return nil
	})
}

func deref[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}

// Seeds 003 and 004 together: the binary creates a Nomad cluster from a spec kept in Consul's KV
// store, a teammate with no state of their own sees it by Nomad's API alone, and destroy leaves
// nothing in Nomad; a bad spec in Consul is refused with positions in the key.
func TestRealSparkCLICreatesFromConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Nomad and Consul agents and real Spark")
	}
	addr := startNomad(t)
	consul := testutil.StartConsul(t, "")
	home := sparktest.RealHome(t, sparktest.Newest())
	bin := testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	good := fmt.Sprintf(`apiVersion: sparkplane.dev/v1alpha1
kind: Cluster
name: kept
provider: nomad
spark: {home: %s, version: %s}
workers: {count: 1, cores: 1, memory: 1g}
nomad: {sparkplane: %s, driver: raw_exec}
`, home, sparkVersion(t, home), bin)
	bad := strings.Replace(good, "count: 1", "count: one", 1)
	for k, v := range map[string]string{"teams/data/kept.yaml": good, "teams/data/bad.yaml": bad} {
		if err := testutil.ConsulPut(consul, "", k, v); err != nil {
			t.Fatal(err)
		}
	}
	run := func(home string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "SPARKPLANE_HOME="+home, "NOMAD_ADDR="+addr, "CONSUL_HTTP_ADDR=", "CONSUL_HTTP_TOKEN=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	creator, teammate := t.TempDir(), t.TempDir()
	t.Cleanup(func() { run(creator, "destroy", "kept", "--yes") })
	if out, err := run(creator, "create", "-f", "consul://"+consul+"/teams/data/kept.yaml"); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	out, err := run(teammate, "status", "kept", "-p", "nomad", "-o", "json")
	if err != nil || !strings.Contains(out, `"name": "kept"`) || !strings.Contains(out, `"role": "worker"`) {
		t.Errorf("a teammate's status: %v\n%s", err, out)
	}
	if out, err := run(creator, "destroy", "kept", "--yes"); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	assertNothingLeft(t, addr, "kept")
	badURI := "consul://" + consul + "/teams/data/bad.yaml"
	out, err = run(creator, "create", "-f", badURI)
	if err == nil || !strings.Contains(out, badURI+":6:18: workers.count: expected a whole number") {
		t.Errorf("a bad spec in Consul: %v\n%s", err, out)
	}
}

// startDocker runs a real Docker daemon on a socket of the test's own, with no bridge network
// (its containers share the host's network, loopback only) and no iptables rules, and returns
// the socket's address.
func startDocker(t *testing.T) string {
	t.Helper()
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		t.Fatal("dockerd is not installed (hack/setup.sh installs Debian's docker.io)")
	}
	dir, err := os.MkdirTemp("", "sparkplane-docker-")
	if err != nil {
		t.Fatal(err)
	}
	sock := "unix://" + filepath.Join(dir, "docker.sock")
	cmd := exec.Command(dockerd, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", sock, "--bridge=none", "--iptables=false", "--ip6tables=false")
	proc, err := daemon.Start("dockerd", cmd, filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proc.Stop(30 * time.Second)
		unmountUnder(dir) // the containers' overlays
		os.RemoveAll(dir)
	})
	testutil.Eventually(t, time.Minute, "dockerd answers", func() error {
		out, err := dockerCLI(sock, "version", "--format", "{{.Server.Version}}").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	return sock
}

func dockerCLI(sock string, args ...string) *exec.Cmd {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+sock)
	return cmd
}

// javaImage imports an image of this machine's Java and the tools Spark's scripts use, from
// its own files (no registry), and returns its name.
func javaImage(t *testing.T, sock string) string {
	t.Helper()
	java, _, err := spark.FindJavaFor(os.Getenv, "4.0.0")
	if err != nil {
		t.Fatal(err)
	}
	java, _ = filepath.EvalSymlinks(java)
	const image = "sparkplane-test/java:17"
	paths := []string{"bin", "lib", "lib64", "sbin", "usr/bin", "usr/sbin", "usr/lib64", "usr/lib/x86_64-linux-gnu", "usr/share/zoneinfo",
		"etc/passwd", "etc/group", "etc/ssl", "etc/alternatives", strings.TrimPrefix(java, "/")}
	confs, _ := filepath.Glob("/etc/java-*") // Debian keeps its JDKs' configuration there
	for _, c := range confs {
		paths = append(paths, strings.TrimPrefix(c, "/"))
	}
	tar := exec.Command("tar", append([]string{"-C", "/", "-cf", "-", "--ignore-failed-read"}, paths...)...)
	imp := dockerCLI(sock, "import", "-c", "ENV JAVA_HOME="+java, "-", image)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	tar.Wait()
	return image
}

// unmountUnder detaches every mount below dir that a daemon left when it stopped.
func unmountUnder(dir string) {
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			syscall.Unmount(f[1], syscall.MNT_DETACH)
		}
	}
}
