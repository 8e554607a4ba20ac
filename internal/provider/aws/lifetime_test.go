package aws_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sparkplane/sparkplane/internal/cluster"
	sparkaws "github.com/sparkplane/sparkplane/internal/provider/aws"
	"github.com/sparkplane/sparkplane/internal/provider/aws/awstest"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// TestLifetimeEndsTheClusterFromInside: when an idle cluster's lifetime runs out, its master's
// agent ends every instance that costs money (the workers through the group, the gateway, then
// itself) with no Terraform and no sparkplane on the user's side; status says so, and destroy
// removes the rest.
func TestLifetimeEndsTheClusterFromInside(t *testing.T) {
	if testing.Short() {
		t.Skip("applies a cluster against moto")
	}
	t.Parallel() // each test has a moto and a Terraform of its own
	// Its nodes run the stand-in: lifetimes on real Spark are TestRealSparkLifetimes' (local), and
	// what this proves (the master's agent ending the instances) does not touch Spark.
	e := newEnv(t, sparktest.Home(t, "3.5.3"))
	ctx := context.Background()
	boot := awstest.Boot(t, e.moto, testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane"), "brief")
	ref := cluster.Ref{Name: "brief", Provider: "aws"}
	t.Cleanup(func() { e.m.Destroy(context.Background(), ref) })
	c := e.spec(t, "brief", "", "workers: {count: 2}\nlifetime: {idleTimeout: 45s}\n")
	if _, err := e.m.Create(ctx, c, cluster.CreateOptions{}); err != nil {
		t.Fatalf("create: %v\n%s\n%s", err, e.rec, boot.Logs())
	}
	cfg := e.moto.Config()
	testutil.Eventually(t, 3*time.Minute, "the idle cluster ends its instances", func() error {
		out, err := ec2.NewFromConfig(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("tag:sparkplane/cluster"), Values: []string{"brief"}},
			{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}}}})
		if err != nil {
			return err
		}
		var live []string
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				live = append(live, aws.ToString(in.InstanceId))
			}
		}
		if len(live) > 0 {
			return fmt.Errorf("still live: %v", live)
		}
		return nil
	})
	g, err := autoscaling.NewFromConfig(cfg).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{sparkaws.GroupName("brief")}})
	if err != nil || len(g.AutoScalingGroups) != 1 || aws.ToInt32(g.AutoScalingGroups[0].DesiredCapacity) != 0 || aws.ToInt32(g.AutoScalingGroups[0].MinSize) != 0 {
		t.Errorf("the group after the lifetime: %+v %v", g, err)
	}
	testutil.Eventually(t, time.Minute, "every agent stopped", func() error {
		if r := boot.Running(); len(r) > 0 {
			return fmt.Errorf("still running: %v", r)
		}
		return nil
	})
	st, err := e.m.Status(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != cluster.StateStopped || !strings.Contains(st.AgentError, "lifetime ended") || !strings.Contains(st.AgentError, "sparkplane destroy brief") {
		t.Errorf("status after the lifetime: %s, %q", st.State, st.AgentError)
	}
	if err := e.m.Destroy(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if left := awstest.Remains(ctx, t, cfg, "brief"); len(left) > 0 {
		t.Errorf("after destroy: %v", left)
	}
}
