package aws_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/cluster/clustertest"
	"github.com/sparkplane/sparkplane/internal/provider"
	sparkaws "github.com/sparkplane/sparkplane/internal/provider/aws"
	"github.com/sparkplane/sparkplane/internal/provider/aws/awstest"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// env is a cluster manager whose aws provider works against moto, with every instance booted
// into a local agent, and home the Spark it ships to the nodes.
type env struct {
	m     *cluster.Manager
	p     *sparkaws.Provider
	moto  *awstest.Moto
	root  string
	rec   *clustertest.Recorder
	store *state.Store
}

func newEnv(t testing.TB, home string, options ...func(*sparkaws.Options)) *env {
	t.Helper()
	tf := awstest.Terraform(t)
	moto := awstest.StartMoto(t)
	bin := testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	root := t.TempDir()
	store, err := state.Open(filepath.Join(root, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := moto.Config()
	opts := sparkaws.Options{Root: root, Terraform: tf, Binary: func(string) (string, error) { return bin, nil },
		AWSConfig: func(context.Context, string) (aws.Config, error) { return cfg, nil }, AgentWait: 2 * time.Minute}
	for _, o := range options {
		o(&opts)
	}
	p := sparkaws.New(opts)
	reg := provider.NewRegistry()
	reg.Register(sparkaws.Name, func() (provider.Provider, error) { return p, nil })
	rec := &clustertest.Recorder{}
	m := &cluster.Manager{Providers: reg, Store: store, Progress: rec, ReadyTimeout: 4 * time.Minute, PollInterval: 200 * time.Millisecond,
		Spark: func(context.Context, *spec.Cluster) (*spark.Distribution, error) { return spark.OpenHome(home) }}
	return &env{m: m, p: p, moto: moto, root: root, rec: rec, store: store}
}

// spec is a cluster of the aws provider on moto; awsExtra goes into the aws block.
func (e *env) spec(t testing.TB, name, awsExtra, extra string) *spec.Cluster {
	return clustertest.Spec(t, fmt.Sprintf(`name: %s
provider: aws
aws: {region: %s, zones: 3, allowedCIDRs: [203.0.113.0/24], gateway: true, endpoint: %q%s}
%s`, name, awstest.Region, e.moto.URL, awsExtra, extra))
}

// TestAWSLifecycleOnRealSpark is the whole life of an AWS cluster against moto, its booted nodes
// running real Spark of the default line: create (secrets in SSM, sparkplane and Spark in S3, the
// module applied, agents booted from the user-data, each unpacking Spark), status, the JVM
// example in cluster mode, add and remove through the group, interruptions, destroy, and nothing
// left. (One line: every node unpacks half a gigabyte of Spark; the other line's AWS nodes are
// proven by TestAWSConformanceOnRealSpark.)
func TestAWSLifecycleOnRealSpark(t *testing.T) {
	t.Parallel() // each test has a moto and a Terraform of its own
	line := sparktest.Newest()
	home := sparktest.RealHome(t, line)
	jar := sparktest.JVMExample(t, line)
	dist, err := spark.OpenHome(home)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, home)
	ctx := context.Background()
	boot := awstest.Boot(t, e.moto, testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane"), "life")
	// The state in S3, as a team keeps it, with Terraform's lock file.
	cfg := e.moto.Config()
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("team-state"),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(awstest.Region)}}); err != nil {
		t.Fatal(err)
	}
	c := e.spec(t, "life", ", state: {backend: s3, bucket: team-state}",
		"workers: {count: 3, max: 6, spot: true, instanceTypes: [m5.xlarge, m5a.xlarge, m6i.xlarge]}\nmonitoring: {prometheus: true}\n"+
			"spark:\n  conf: {spark.executor.memory: 512m, spark.driver.memory: 512m, spark.cores.max: \"2\"}\n")
	ref := cluster.Ref{Name: "life", Provider: "aws"}
	t.Cleanup(func() { e.m.Destroy(context.Background(), ref) })
	st, err := e.m.Create(ctx, c, cluster.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v\n%s\n%s", err, e.rec, boot.Logs())
	}
	if st.Agent.AliveWorkers() != 3 || !strings.HasPrefix(st.Agent.Master.URL, "spark://") {
		t.Fatalf("after create: %+v\n%s", st.Agent, boot.Logs())
	}
	for _, want := range []string{"stored the cluster secret", "uploaded sparkplane and Spark " + dist.Version, "created aws_autoscaling_group.workers", "terraform applied"} {
		if !strings.Contains(e.rec.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, e.rec)
		}
	}

	// The secret is a SecureString in SSM, and nowhere in Terraform's state or the user-data.
	secret, err := e.p.Secret(ctx, "life")
	if err != nil || len(secret) < 32 {
		t.Fatalf("secret: %q %v", secret, err)
	}
	params, err := ssm.NewFromConfig(cfg).DescribeParameters(ctx, &ssm.DescribeParametersInput{})
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]ssmtypes.ParameterType{}
	for _, p := range params.Parameters {
		types[aws.ToString(p.Name)] = p.Type
	}
	for _, name := range []string{"/sparkplane/life/secret", "/sparkplane/life/tls-key"} {
		if types[name] != ssmtypes.ParameterTypeSecureString {
			t.Errorf("%s: type %q, want SecureString", name, types[name])
		}
	}
	if _, err := os.Stat(filepath.Join(e.root, "aws", "life", "terraform.tfstate")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a local state next to the S3 backend: %v", err)
	}
	stateFile := readObject(t, s3c, "team-state", "sparkplane/life/terraform.tfstate")
	if bytes.Contains(stateFile, []byte(secret)) || bytes.Contains(stateFile, []byte("PRIVATE KEY")) {
		t.Error("Terraform's state holds the cluster secret or the TLS key")
	}
	if !bytes.Contains(stateFile, []byte("user_data")) {
		t.Error("no user_data in the state: the check above proves nothing")
	}

	// Status: every node from the provider, Spark's view from the master's agent over TLS.
	st, err = e.m.Status(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]int{}
	for _, n := range st.Nodes {
		roles[n.Role]++
	}
	if roles["master"] != 1 || roles["gateway"] != 1 || roles["monitoring"] != 1 || roles["worker"] != 3 || st.State != cluster.StateRunning {
		t.Errorf("status: %s, nodes %v\n%+v", st.State, roles, st.Nodes)
	}
	if !strings.HasPrefix(st.Agent.Master.UI, "http://127.0.0.1:") {
		t.Errorf("master UI %q", st.Agent.Master.UI)
	}

	// The JVM example in cluster mode, uploaded through the agent's TLS API; its driver runs on
	// a worker node. (The nodes share this machine's file system, so the input and output are
	// local paths.)
	out := filepath.Join(t.TempDir(), "counts")
	in, want, printed := sparktest.WordsInput(t, out)
	job, err := e.m.Submit(ctx, ref, cluster.JobSpec{Application: jar, Class: sparktest.WordCount, Args: []string{in, out}})
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if j, err := e.m.Wait(ctx, ref, job.ID, cluster.WaitOptions{Stdout: &stdout}); err != nil || j.State != state.JobFinished || j.DeployMode != spark.ClusterMode {
		var logs bytes.Buffer
		e.m.Logs(ctx, ref, job.ID, agentapi.Stderr, false, &logs)
		t.Fatalf("job: %+v %v\n%s\n%s\n%s", j, err, stdout.String(), testutil.TailString(logs.String(), 30), boot.Logs())
	}
	if !strings.Contains(stdout.String(), printed) {
		t.Errorf("the driver's output lacks %q:\n%s", printed, stdout.String())
	}
	if got := sparktest.ReadPart(t, out); got != want {
		t.Errorf("counts:\n%s\nwant:\n%s", got, want)
	}

	// Monitoring: over TLS from here; by EC2 discovery from inside; the module's monitoring
	// instance.
	checkMonitoring(t, e, ref, boot.Running()["worker"])
	checkMonitoringInstance(t, e, boot, "life", boot.Running()["worker"])

	// add 2: the group grows, the new instances boot and join Spark.
	as := autoscaling.NewFromConfig(cfg)
	added, err := e.m.Add(ctx, ref, 2)
	if err != nil || len(added) != 2 {
		t.Fatalf("add: %v %v\n%s", added, err, boot.Logs())
	}
	if g := group(t, as, "life"); aws.ToInt32(g.DesiredCapacity) != 5 {
		t.Errorf("desired capacity after add: %d", aws.ToInt32(g.DesiredCapacity))
	}
	waitAlive(t, e, ref, 5, boot)

	// remove 1: drained in Spark by the master's agent, then terminated in the group.
	removed, err := e.m.Remove(ctx, ref, agentapi.RemoveWorkersRequest{Count: 1})
	if err != nil || len(removed) != 1 {
		t.Fatalf("remove: %v %v\n%s", removed, err, boot.Logs())
	}
	if g := group(t, as, "life"); aws.ToInt32(g.DesiredCapacity) != 4 {
		t.Errorf("desired capacity after remove: %d", aws.ToInt32(g.DesiredCapacity))
	}
	waitAlive(t, e, ref, 4, boot)

	// Interruptions, as EC2 gives them through IMDSv2: a spot notice on one worker, the group
	// terminating another (held by the decommission hook until its agent completes the action).
	workers := boot.Running()["worker"]
	sort.Strings(workers)
	spotID, termID := workers[0], workers[1]
	for id, give := range map[string]func(*awstest.IMDS){spotID: (*awstest.IMDS).Interrupt, termID: (*awstest.IMDS).Terminating} {
		meta, _, ok := boot.Node(id)
		if !ok {
			t.Fatalf("no booted node %s", id)
		}
		give(meta)
	}
	testutil.Eventually(t, time.Minute, "both interruptions decommission their Spark workers", func() error {
		st, err := e.m.Status(ctx, ref)
		if err != nil {
			return err
		}
		got := map[string]agentapi.WorkerStatus{}
		for _, w := range st.Agent.Workers {
			got[w.NodeID] = w
		}
		for id, reason := range map[string]string{spotID: "spot-interruption", termID: "terminating"} {
			if w := got[id]; w.Interrupted != reason || w.State != spark.WorkerDecommissioned {
				return fmt.Errorf("%s: %+v, want %s and %s", id, w, reason, spark.WorkerDecommissioned)
			}
		}
		return nil
	})
	testutil.Eventually(t, time.Minute, "the terminating worker completes its lifecycle action", func() error {
		if !slices.Contains(e.moto.Completed(), termID) {
			return fmt.Errorf("completed: %v", e.moto.Completed())
		}
		return nil
	})
	if slices.Contains(e.moto.Completed(), spotID) {
		t.Error("a spot notice completed a lifecycle action")
	}

	// destroy: nothing of the cluster remains.
	if err := e.m.Destroy(ctx, ref); err != nil {
		t.Fatalf("destroy: %v\n%s", err, e.rec)
	}
	if left := awstest.Remains(ctx, t, cfg, "life"); len(left) > 0 {
		t.Errorf("after destroy: %v", left)
	}
	if objs, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("team-state")}); err != nil || len(objs.Contents) > 0 {
		t.Errorf("the state bucket after destroy: %v %v", objs, err)
	}
	if _, err := os.Stat(filepath.Join(e.root, "aws", "life")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the working directory is still there: %v", err)
	}
	// The job's event log outlived the bucket, for sparkplane history.
	if dir, _, err := e.p.FetchEventLogs(ctx, "life"); err != nil {
		t.Errorf("event logs after destroy: %v", err)
	} else if logs, _ := os.ReadDir(dir); len(logs) == 0 {
		t.Errorf("no event log in %s after destroy", dir)
	}
	if _, err := e.m.Status(ctx, ref); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("status after destroy: %v", err)
	}
	testutil.Eventually(t, time.Minute, "every agent stopped", func() error {
		if r := boot.Running(); len(r) > 0 {
			return fmt.Errorf("still running: %v", r)
		}
		return nil
	})
}

func readObject(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func group(t *testing.T, as *autoscaling.Client, cluster string) *astypes.AutoScalingGroup {
	t.Helper()
	out, err := as.DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{sparkaws.GroupName(cluster)}})
	if err != nil || len(out.AutoScalingGroups) != 1 {
		t.Fatalf("group: %v %v", out, err)
	}
	return &out.AutoScalingGroups[0]
}

// waitAlive waits until Spark has exactly n ALIVE workers, each an instance of the provider.
func waitAlive(t *testing.T, e *env, ref cluster.Ref, n int, boot *awstest.Booter) {
	t.Helper()
	testutil.Eventually(t, 2*time.Minute, fmt.Sprintf("%d workers alive", n), func() error {
		st, err := e.m.Status(context.Background(), ref)
		if err != nil {
			return err
		}
		workers := 0
		for _, n := range st.Nodes {
			if n.Role == "worker" {
				workers++
			}
		}
		if st.Agent == nil || st.Agent.AliveWorkers() != n || workers != n {
			return fmt.Errorf("%d worker nodes, status %+v\n%s", workers, st.Agent, boot.Logs())
		}
		return nil
	})
}

// TestCreateRollsBackAFailureMidApply injects a resource that fails while Terraform is creating the
// others; create must fail with Terraform's reason and leave nothing: no resource, no parameter,
// no bucket, no working directory.
func TestCreateRollsBackAFailureMidApply(t *testing.T) {
	if testing.Short() {
		t.Skip("applies a cluster against moto")
	}
	t.Parallel() // each test has a moto and a Terraform of its own
	// Terraform, with one more resource in the root module: it fails a few seconds into the
	// apply, while the module's resources are being made.
	wrapper := filepath.Join(t.TempDir(), "terraform")
	script := fmt.Sprintf(`#!/bin/sh
cat > injected.tf <<'TF'
resource "terraform_data" "injected_failure" {
  provisioner "local-exec" {
    command = "sleep 8; echo injected failure >&2; exit 1"
  }
}
TF
exec %q "$@"
`, awstest.Terraform(t))
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// The apply fails before any instance boots: the stand-in's Spark is enough.
	e := newEnv(t, sparktest.Home(t, "3.5.3"), func(o *sparkaws.Options) { o.Terraform = wrapper })
	ctx := context.Background()
	c := e.spec(t, "broken", "", "workers: {count: 2, spot: true}\n")
	_, err := e.m.Create(ctx, c, cluster.CreateOptions{})
	if err == nil {
		t.Fatal("create succeeded with a failing resource")
	}
	if !strings.Contains(err.Error(), "injected failure") && !strings.Contains(e.rec.String(), "injected failure") {
		t.Errorf("the error does not carry Terraform's reason: %v\n%s", err, e.rec)
	}
	if !strings.Contains(e.rec.String(), "created aws_vpc") {
		t.Errorf("nothing was created before the failure, so the rollback proves little:\n%s", e.rec)
	}
	if !strings.Contains(e.rec.String(), "Rolled back") {
		t.Errorf("no rollback reported:\n%s", e.rec)
	}
	if left := awstest.Remains(ctx, t, e.moto.Config(), "broken"); len(left) > 0 {
		t.Errorf("after the rollback: %v", left)
	}
	if _, err := os.Stat(filepath.Join(e.root, "aws", "broken")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the working directory is still there: %v", err)
	}
	if _, err := e.m.Status(ctx, cluster.Ref{Name: "broken", Provider: "aws"}); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("status after the rollback: %v", err)
	}
}
