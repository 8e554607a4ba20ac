package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sparkplane/sparkplane/internal/provider"
)

// GroupName is the workers' autoscaling group of a cluster.
func GroupName(cluster string) string { return "sparkplane-" + cluster + "-workers" }

// liveStates are the instance states that count as a node.
var liveStates = []string{"pending", "running", "stopping", "stopped", "shutting-down"}

// describeNodes reads a cluster's instances by tag. The master and the gateway are named by their
// role; workers by their instance ids, which sparkplane and the agents use as node ids.
func describeNodes(ctx context.Context, client *ec2.Client, cluster string) ([]provider.Node, string, error) {
	var nodes []provider.Node
	masterID := ""
	pages := ec2.NewDescribeInstancesPaginator(client, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:sparkplane/cluster"), Values: []string{cluster}},
		{Name: aws.String("instance-state-name"), Values: liveStates},
	}})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("describe the instances of %s: %w", cluster, err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				role := tagValue(in.Tags, "sparkplane/role")
				n := provider.Node{ID: aws.ToString(in.InstanceId), Role: role, Address: aws.ToString(in.PrivateIpAddress),
					CreatedAt: aws.ToTime(in.LaunchTime)}
				switch in.State.Name {
				case ec2types.InstanceStateNamePending:
					n.State = provider.NodeStarting
				case ec2types.InstanceStateNameRunning:
					n.State = provider.NodeRunning
				default:
					n.State = provider.NodeStopped
				}
				market := "on-demand"
				if in.InstanceLifecycle == ec2types.InstanceLifecycleTypeSpot {
					market = "spot"
				}
				zone := ""
				if in.Placement != nil {
					zone = aws.ToString(in.Placement.AvailabilityZone)
				}
				n.Detail = fmt.Sprintf("%s %s %s %s", aws.ToString(in.InstanceId), in.InstanceType, market, zone)
				if role != "worker" {
					if role == "master" {
						masterID = n.ID
					}
					n.ID = role
				}
				nodes = append(nodes, n)
			}
		}
	}
	sort.Slice(nodes, func(i, j int) bool {
		if rank(nodes[i].Role) != rank(nodes[j].Role) {
			return rank(nodes[i].Role) < rank(nodes[j].Role)
		}
		return nodes[i].CreatedAt.Before(nodes[j].CreatedAt) || nodes[i].CreatedAt.Equal(nodes[j].CreatedAt) && nodes[i].ID < nodes[j].ID
	})
	return nodes, masterID, nil
}

func rank(role string) int {
	return map[string]int{"master": 0, "gateway": 1, "worker": 2}[role]
}

func tagValue(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// Get describes a cluster: its instances by tag, and the master's agent from what it published.
func (p *Provider) Get(ctx context.Context, name string) (*provider.Cluster, error) {
	r, cfg, err := p.open(ctx, name)
	if err != nil {
		return nil, err
	}
	nodes, masterID, err := describeNodes(ctx, ec2.NewFromConfig(cfg), name)
	if err != nil {
		return nil, err
	}
	c := &provider.Cluster{Name: name, Provider: Name, Spec: &r.Spec, Nodes: nodes, CreatedAt: r.CreatedAt}
	a := &artifacts{s3: newS3(cfg), bucket: r.Bucket, prefix: Prefix(&r.Spec)}
	if masterID == "" {
		if b, err := a.get(ctx, keyStopped); err == nil {
			var s Stopped
			if json.Unmarshal(b, &s) == nil {
				c.Stopped = fmt.Sprintf("stopped at %s: %s", s.At.Local().Format("2006-01-02 15:04"), s.Reason)
			}
		}
	} else {
		if ep, err := a.endpoint(ctx); err == nil && ep.InstanceID == masterID {
			c.Agent = ep.URL
			for i := range c.Nodes {
				if c.Nodes[i].Role == "master" {
					c.Nodes[i].Agent = ep.URL
				}
			}
		}
	}
	return c, nil
}

// List describes the clusters of this machine's working directories.
func (p *Provider) List(ctx context.Context) ([]provider.Cluster, error) {
	entries, err := os.ReadDir(p.dirRoot())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []provider.Cluster
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := p.Get(ctx, e.Name())
		if errors.Is(err, provider.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, nil
}

// AddWorkers raises the group's desired capacity by n and returns the instances it launched.
func (p *Provider) AddWorkers(ctx context.Context, name string, n int) ([]string, error) {
	_, cfg, err := p.open(ctx, name)
	if err != nil {
		return nil, err
	}
	return addToGroup(ctx, autoscaling.NewFromConfig(cfg), GroupName(name), n)
}

// addToGroup raises a group's desired capacity by n and waits for the new instances' ids.
func addToGroup(ctx context.Context, client *autoscaling.Client, group string, n int) ([]string, error) {
	g, err := describeGroup(ctx, client, group)
	if err != nil {
		return nil, err
	}
	before := map[string]bool{}
	for _, in := range g.Instances {
		before[aws.ToString(in.InstanceId)] = true
	}
	want := aws.ToInt32(g.DesiredCapacity) + int32(n)
	if want > aws.ToInt32(g.MaxSize) {
		return nil, fmt.Errorf("%d workers would exceed the group's maximum of %d", want, aws.ToInt32(g.MaxSize))
	}
	if _, err := client.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(group),
		DesiredCapacity: aws.Int32(want), HonorCooldown: aws.Bool(false)}); err != nil {
		return nil, fmt.Errorf("raise %s to %d: %w", group, want, err)
	}
	var added []string
	err = waitFor(ctx, 5*time.Minute, func() (bool, error) {
		g, err := describeGroup(ctx, client, group)
		if err != nil {
			return false, err
		}
		added = added[:0]
		for _, in := range g.Instances {
			if id := aws.ToString(in.InstanceId); !before[id] {
				added = append(added, id)
			}
		}
		return len(added) >= n, nil
	}, func() error {
		return fmt.Errorf("%s launched %d of %d instances within 5 minutes; its activity history says why (aws autoscaling describe-scaling-activities --auto-scaling-group-name %s)",
			group, len(added), n, group)
	})
	sort.Strings(added)
	return added, err
}

// waitFor calls done every second until it says so, fails, ctx ends, or timeout passes; then
// the error is late's, which says what did not happen.
func waitFor(ctx context.Context, timeout time.Duration, done func() (bool, error), late func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return late()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func describeGroup(ctx context.Context, client *autoscaling.Client, group string) (*astypes.AutoScalingGroup, error) {
	out, err := client.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", group, err)
	}
	if len(out.AutoScalingGroups) == 0 {
		return nil, fmt.Errorf("no autoscaling group %s: %w", group, provider.ErrNotFound)
	}
	return &out.AutoScalingGroups[0], nil
}

// RemoveWorkers terminates exactly these instances in the group, lowering its desired capacity,
// and returns once the group has let go of them. Their Spark workers were drained by the caller;
// the termination hook still gives each agent the chance to finish.
func (p *Provider) RemoveWorkers(ctx context.Context, name string, ids []string) error {
	_, cfg, err := p.open(ctx, name)
	if err != nil {
		return err
	}
	return removeFromGroup(ctx, autoscaling.NewFromConfig(cfg), GroupName(name), ids)
}

func removeFromGroup(ctx context.Context, client *autoscaling.Client, group string, ids []string) error {
	for _, id := range ids {
		if !strings.HasPrefix(id, "i-") {
			return fmt.Errorf("%q is not a worker of %s (workers on AWS are named by instance id)", id, group)
		}
		_, err := client.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
			InstanceId: aws.String(id), ShouldDecrementDesiredCapacity: aws.Bool(true)})
		if err != nil && !isAPIError(err, "ValidationError") { // "Instance Id not found": already gone
			return fmt.Errorf("terminate %s in %s: %w", id, group, err)
		}
	}
	in := 0
	return waitFor(ctx, 15*time.Minute, func() (bool, error) {
		g, err := describeGroup(ctx, client, group)
		if err != nil {
			return false, err
		}
		in = 0
		for _, i := range g.Instances {
			if slices.Contains(ids, aws.ToString(i.InstanceId)) && i.LifecycleState == astypes.LifecycleStateInService {
				in++
			}
		}
		return in == 0, nil
	}, func() error {
		return fmt.Errorf("%d of %d instances still in service in %s after 15 minutes", in, len(ids), group)
	})
}

// completeTermination lets the group finish terminating an instance held by the decommission
// hook.
func (p *Provider) completeTermination(ctx context.Context, cluster, instanceID string) error {
	_, cfg, err := p.open(ctx, cluster)
	if err != nil {
		return err
	}
	_, err = autoscaling.NewFromConfig(cfg).CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{
		AutoScalingGroupName: aws.String(GroupName(cluster)), LifecycleHookName: aws.String(HookName),
		InstanceId: aws.String(instanceID), LifecycleActionResult: aws.String("CONTINUE")})
	return err
}

// HookName is the workers' termination hook in the module.
const HookName = "sparkplane-decommission"
