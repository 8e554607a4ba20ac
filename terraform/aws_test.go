package terraform_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/terraform-exec/tfexec"
	tfjson "github.com/hashicorp/terraform-json"

	sparkaws "github.com/sparkplane/sparkplane/internal/provider/aws"
	"github.com/sparkplane/sparkplane/internal/provider/aws/awstest"
	"github.com/sparkplane/sparkplane/internal/testutil"
	"github.com/sparkplane/sparkplane/terraform"
)

// moduleDir is the module in this repository.
func moduleDir(t *testing.T) string {
	d, err := filepath.Abs("aws")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestModuleFormatAndValidate: terraform fmt and validate accept the module and its example.
func TestModuleFormatAndValidate(t *testing.T) {
	bin := awstest.Terraform(t)
	if out, err := exec.Command(bin, "fmt", "-check", "-recursive", "-diff", moduleDir(t)).CombinedOutput(); err != nil {
		t.Errorf("terraform fmt -check: %v\n%s", err, out)
	}
	for _, dir := range []string{"", "examples/basic"} {
		work := t.TempDir()
		if err := terraform.Write(terraform.AWS(), work); err != nil {
			t.Fatal(err)
		}
		tf, err := tfexec.NewTerraform(filepath.Join(work, dir), bin)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := tf.Init(ctx, tfexec.Backend(false)); err != nil {
			t.Fatalf("init %s: %v", dir, err)
		}
		v, err := tf.Validate(ctx)
		if err != nil {
			t.Fatalf("validate %s: %v", dir, err)
		}
		if !v.Valid || v.ErrorCount > 0 || v.WarningCount > 0 {
			t.Errorf("validate %s: %+v", dir, v.Diagnostics)
		}
	}
}

// apply writes a root module for the given inputs next to a copy of the module and applies it
// against moto.
func apply(t *testing.T, bin string, moto *awstest.Moto, inputs map[string]any) (tf *tfexec.Terraform, plan *tfjson.Plan, cluster map[string]any) {
	t.Helper()
	work := t.TempDir()
	if err := terraform.Write(terraform.AWS(), filepath.Join(work, "module")); err != nil {
		t.Fatal(err)
	}
	root, err := sparkaws.Root{Source: "./module", Region: awstest.Region, Endpoint: moto.URL, Inputs: inputs}.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "main.tf.json"), root, 0o644); err != nil {
		t.Fatal(err)
	}
	tf, err = tfexec.NewTerraform(work, bin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background() // the credentials moto takes: awstest.Terraform set them
	if err := tf.Init(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tf.Destroy(context.Background()) })
	planFile := filepath.Join(work, "plan")
	if _, err := tf.Plan(ctx, tfexec.Out(planFile)); err != nil {
		t.Fatalf("plan: %v", err)
	}
	if plan, err = tf.ShowPlanFile(ctx, planFile); err != nil {
		t.Fatal(err)
	}
	if err := tf.Apply(ctx, tfexec.DirOrPlan(planFile)); err != nil {
		t.Fatalf("apply: %v", err)
	}
	outs, err := tf.Output(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(outs["cluster"].Value, &cluster); err != nil {
		t.Fatal(err)
	}
	return tf, plan, cluster
}

// TestModuleAgainstMoto applies the module for 3 spot workers over 3 zones with a gateway and
// the cpu policy, checks every resource through the AWS API, destroys it, and checks that nothing
// tagged with the cluster remains.
func TestModuleAgainstMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("applies a whole cluster against moto")
	}
	t.Parallel() // each test has a moto of its own
	bin := awstest.Terraform(t)
	moto := awstest.StartMoto(t)
	ctx := context.Background()
	tf, plan, out := apply(t, bin, moto, map[string]any{
		"name": "modtest", "zones": 3, "allowed_cidrs": []string{"203.0.113.0/24"}, "workers_desired": 3, "workers_max": 6,
		"spot": true, "worker_instance_types": []string{"m5.xlarge", "m5a.xlarge", "m6i.xlarge"}, "gateway": true,
		"autoscale_policy": "cpu", "master_data_volume_gib": 100, "worker_data_volume_gib": 200,
		"prometheus": true, "grafana": true,
	})
	cfg := moto.Config()
	e2 := ec2.NewFromConfig(cfg)
	str := func(k string) string { s, _ := out[k].(string); return s }

	// Security group: members talk freely; from outside only the agent port, from the allowed network.
	sgs, err := e2.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{str("security_group_id")}}}})
	if err != nil {
		t.Fatal(err)
	}
	var ingress []string
	for _, r := range sgs.SecurityGroupRules {
		if aws.ToBool(r.IsEgress) {
			continue
		}
		switch {
		case r.ReferencedGroupInfo != nil && aws.ToString(r.ReferencedGroupInfo.GroupId) == str("security_group_id"):
			ingress = append(ingress, "self:"+aws.ToString(r.IpProtocol))
		default:
			ingress = append(ingress, aws.ToString(r.CidrIpv4)+":"+aws.ToString(r.IpProtocol)+":"+fmtPort(r.FromPort)+"-"+fmtPort(r.ToPort))
		}
	}
	slices.Sort(ingress)
	if want := []string{"203.0.113.0/24:tcp:7443-7443", "self:-1"}; !slices.Equal(ingress, want) {
		t.Errorf("ingress rules %v, want %v (no SSH without a key; Spark's ports only from the group)", ingress, want)
	}

	// Instances: the master and the gateway require IMDSv2 and encrypt their volumes.
	insts, err := e2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:sparkplane/cluster"), Values: []string{"modtest"}},
		{Name: aws.String("instance-state-name"), Values: []string{"running", "pending"}}}})
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]int{}
	var monitoringGroups []string
	for _, r := range insts.Reservations {
		for _, in := range r.Instances {
			role := tag(in.Tags, "sparkplane/role")
			roles[role]++
			if role == "monitoring" {
				for _, g := range in.SecurityGroups {
					monitoringGroups = append(monitoringGroups, aws.ToString(g.GroupId))
				}
			}
			if role == "worker" {
				continue
			}
			if in.MetadataOptions == nil || in.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired {
				t.Errorf("%s does not require IMDSv2: %+v", role, in.MetadataOptions)
			}
			ud, err := e2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: in.InstanceId, Attribute: ec2types.InstanceAttributeNameUserData})
			if err != nil {
				t.Fatal(err)
			}
			checkUserData(t, role, aws.ToString(ud.UserData.Value))
		}
	}
	if roles["master"] != 1 || roles["gateway"] != 1 || roles["monitoring"] != 1 || roles["worker"] != 3 {
		t.Errorf("instances by role: %v", roles)
	}
	// The monitoring instance: in the cluster's group and in one of its own, which opens
	// Prometheus and Grafana to the allowed network and nothing else.
	if len(monitoringGroups) != 2 || !slices.Contains(monitoringGroups, str("security_group_id")) {
		t.Errorf("the monitoring instance's groups: %v", monitoringGroups)
	}
	for _, g := range monitoringGroups {
		if g == str("security_group_id") {
			continue
		}
		rules, err := e2.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
			Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{g}}}})
		if err != nil {
			t.Fatal(err)
		}
		var in []string
		for _, r := range rules.SecurityGroupRules {
			if !aws.ToBool(r.IsEgress) {
				in = append(in, aws.ToString(r.CidrIpv4)+":"+aws.ToString(r.IpProtocol)+":"+fmtPort(r.FromPort)+"-"+fmtPort(r.ToPort))
			}
		}
		slices.Sort(in)
		if want := []string{"203.0.113.0/24:tcp:3000-3000", "203.0.113.0/24:tcp:9090-9090"}; !slices.Equal(in, want) {
			t.Errorf("the monitoring group's ingress %v, want %v", in, want)
		}
	}
	if u, _ := out["prometheus_url"].(string); !strings.HasSuffix(u, ":9090") || !strings.HasPrefix(u, "https://") {
		t.Errorf("prometheus_url = %q", u)
	}
	vols, err := e2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:sparkplane/cluster"), Values: []string{"modtest"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols.Volumes {
		if !aws.ToBool(v.Encrypted) || v.VolumeType != ec2types.VolumeTypeGp3 {
			t.Errorf("volume %s: encrypted %v, type %s", aws.ToString(v.VolumeId), aws.ToBool(v.Encrypted), v.VolumeType)
		}
	}

	// The group: mixed instances, spot above one on-demand worker, capacity-optimized, rebalancing,
	// spread over three subnets in three zones, and the decommission hook.
	as := autoscaling.NewFromConfig(cfg)
	groups, err := as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{str("autoscaling_group")}})
	if err != nil || len(groups.AutoScalingGroups) != 1 {
		t.Fatalf("group: %v %v", groups, err)
	}
	g := groups.AutoScalingGroups[0]
	if aws.ToInt32(g.DesiredCapacity) != 3 || aws.ToInt32(g.MaxSize) != 6 || !aws.ToBool(g.CapacityRebalance) {
		t.Errorf("group sizes/rebalance: desired %d max %d rebalance %v", aws.ToInt32(g.DesiredCapacity), aws.ToInt32(g.MaxSize), aws.ToBool(g.CapacityRebalance))
	}
	if mip := g.MixedInstancesPolicy; mip == nil {
		t.Error("no mixed instances policy")
	} else {
		var types []string
		for _, o := range mip.LaunchTemplate.Overrides {
			types = append(types, aws.ToString(o.InstanceType))
		}
		d := mip.InstancesDistribution
		if !slices.Equal(types, []string{"m5.xlarge", "m5a.xlarge", "m6i.xlarge"}) || aws.ToInt32(d.OnDemandBaseCapacity) != 1 ||
			aws.ToInt32(d.OnDemandPercentageAboveBaseCapacity) != 0 || aws.ToString(d.SpotAllocationStrategy) != "capacity-optimized" {
			t.Errorf("mixed instances: types %v, distribution %+v", types, d)
		}
	}
	subnets := strings.Split(aws.ToString(g.VPCZoneIdentifier), ",")
	sn, err := e2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: subnets})
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]bool{}
	for _, s := range sn.Subnets {
		zones[aws.ToString(s.AvailabilityZone)] = true
	}
	if len(subnets) != 3 || len(zones) != 3 {
		t.Errorf("the group spans subnets %v in zones %v, want 3 zones", subnets, zones)
	}
	hooks, err := as.DescribeLifecycleHooks(ctx, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: g.AutoScalingGroupName})
	if err != nil || len(hooks.LifecycleHooks) != 1 {
		t.Fatalf("hooks: %v %v", hooks, err)
	}
	if h := hooks.LifecycleHooks[0]; aws.ToString(h.LifecycleTransition) != "autoscaling:EC2_INSTANCE_TERMINATING" ||
		aws.ToInt32(h.HeartbeatTimeout) != 600 || aws.ToString(h.DefaultResult) != "CONTINUE" {
		t.Errorf("hook: %+v", h)
	}
	lts, err := e2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateId: g.MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateId, Versions: []string{"$Latest"}})
	if err != nil || len(lts.LaunchTemplateVersions) != 1 {
		t.Fatalf("launch template: %v %v", lts, err)
	}
	ltd := lts.LaunchTemplateVersions[0].LaunchTemplateData
	if ltd.MetadataOptions == nil || ltd.MetadataOptions.HttpTokens != ec2types.LaunchTemplateHttpTokensStateRequired {
		t.Errorf("workers do not require IMDSv2: %+v", ltd.MetadataOptions)
	}
	checkUserData(t, "worker", aws.ToString(ltd.UserData))

	// The cpu policy: seed 001's alarms and steps.
	alarms, err := awstest.Alarms(ctx, moto.URL, "sparkplane-modtest-cpu")
	if err != nil || len(alarms) != 2 {
		t.Fatalf("alarms: %v %v", alarms, err)
	}
	for _, a := range alarms {
		want := map[string]float64{"sparkplane-modtest-cpu-high": 85, "sparkplane-modtest-cpu-low": 20}[a.AlarmName]
		if a.Threshold != want || a.Period != 120 || a.EvaluationPeriods != 2 || a.MetricName != "CPUUtilization" || len(a.AlarmActions) != 1 {
			t.Errorf("alarm %+v", a)
		}
	}
	pols, err := as.DescribePolicies(ctx, &autoscaling.DescribePoliciesInput{AutoScalingGroupName: g.AutoScalingGroupName})
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]int32{}
	for _, p := range pols.ScalingPolicies {
		steps[aws.ToString(p.PolicyName)] = aws.ToInt32(p.ScalingAdjustment)
		if aws.ToInt32(p.Cooldown) != 300 {
			t.Errorf("policy %s: cooldown %d", aws.ToString(p.PolicyName), aws.ToInt32(p.Cooldown))
		}
	}
	if steps["sparkplane-modtest-cpu-out"] != 2 || steps["sparkplane-modtest-cpu-in"] != -2 {
		t.Errorf("scaling steps: %v", steps)
	}

	// The role: only its own prefix, its own parameters, its own group.
	im := iam.NewFromConfig(cfg)
	pol, err := im.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(str("role_name")), PolicyName: aws.String("sparkplane-node")})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := url.QueryUnescape(aws.ToString(pol.PolicyDocument))
	checkPolicy(t, doc, str("bucket"))
	// The workers' role, where job code runs: no resizing, no ending instances, no writing what
	// nodes boot from; and the launch template gives workers that role, not the nodes'.
	wpol, err := im.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(str("worker_role_name")), PolicyName: aws.String("sparkplane-worker")})
	if err != nil {
		t.Fatal(err)
	}
	wdoc, _ := url.QueryUnescape(aws.ToString(wpol.PolicyDocument))
	for _, banned := range []string{"SetDesiredCapacity", "UpdateAutoScalingGroup", "TerminateInstance", "StopInstances", "DeleteObject"} {
		if strings.Contains(wdoc, banned) {
			t.Errorf("the workers' role allows %s:\n%s", banned, wdoc)
		}
	}
	if !strings.Contains(wdoc, "CompleteLifecycleAction") || !strings.Contains(wdoc, "event-logs/*") {
		t.Errorf("the workers' role: %s", wdoc)
	}
	if rps, err := im.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(str("worker_role_name"))}); err != nil || len(rps.PolicyNames) != 1 {
		t.Errorf("the workers' role has policies %v (%v), want sparkplane-worker alone", rps, err)
	}
	if ltd.IamInstanceProfile == nil {
		t.Error("the workers' launch template has no instance profile")
	} else if ip, err := im.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: ltd.IamInstanceProfile.Name}); err != nil ||
		len(ip.InstanceProfile.Roles) != 1 || aws.ToString(ip.InstanceProfile.Roles[0].RoleName) != str("worker_role_name") {
		t.Errorf("the workers' instance profile %s: %+v %v, want the role %s", aws.ToString(ltd.IamInstanceProfile.Name), ip, err, str("worker_role_name"))
	}

	// The bucket: private and encrypted.
	s := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	pab, err := s.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(str("bucket"))})
	if err != nil {
		t.Fatal(err)
	}
	if c := pab.PublicAccessBlockConfiguration; !aws.ToBool(c.BlockPublicAcls) || !aws.ToBool(c.BlockPublicPolicy) || !aws.ToBool(c.IgnorePublicAcls) || !aws.ToBool(c.RestrictPublicBuckets) {
		t.Errorf("public access block: %+v", c)
	}
	enc, err := s.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(str("bucket"))})
	if err != nil || len(enc.ServerSideEncryptionConfiguration.Rules) != 1 ||
		enc.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm != "AES256" {
		t.Errorf("bucket encryption: %+v %v", enc, err)
	}

	// The master's name in the private zone. (moto records a zone's VPC only when asked for a
	// private zone by a flag Terraform does not send: AWS makes a zone created with a VPC private.
	// So the association is read from the plan, the record from the API.)
	r53 := route53.NewFromConfig(cfg)
	private := false
	for _, rc := range plan.ResourceChanges {
		if rc.Address == "module.cluster.aws_route53_zone.cluster" {
			after, _ := rc.Change.After.(map[string]any)
			vpcs, _ := after["vpc"].([]any)
			private = len(vpcs) == 1
		}
	}
	if !private {
		t.Error("the zone is not planned with the cluster's VPC (a private zone)")
	}
	recs, err := r53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(str("zone_id"))})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs.ResourceRecordSets {
		if strings.TrimSuffix(aws.ToString(r.Name), ".") == "master.modtest.sparkplane.internal" && r.Type == "A" {
			found = len(r.ResourceRecords) == 1 && aws.ToString(r.ResourceRecords[0].Value) == str("master_private_ip")
		}
	}
	if !found {
		t.Errorf("no A record master.modtest.sparkplane.internal → %s in %+v", str("master_private_ip"), recs.ResourceRecordSets)
	}

	// Destroy leaves nothing of the cluster.
	if err := tf.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if left := awstest.Remains(ctx, t, cfg, "modtest"); len(left) > 0 {
		t.Errorf("after destroy, still tagged with the cluster: %v", left)
	}
}

// TestModuleInAnExistingVPC applies the module into a VPC and subnets the user already has: it
// makes no network of its own, puts every node in the given subnets and its group in the given
// VPC, and its destroy leaves the user's network as it was.
func TestModuleInAnExistingVPC(t *testing.T) {
	if testing.Short() {
		t.Skip("applies a cluster against moto")
	}
	t.Parallel() // each test has a moto of its own
	bin := awstest.Terraform(t)
	moto := awstest.StartMoto(t)
	ctx := context.Background()
	e2 := ec2.NewFromConfig(moto.Config())
	vpc, err := e2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.7.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	vpcID := aws.ToString(vpc.Vpc.VpcId)
	var subnets []string
	for i, az := range []string{"a", "b"} {
		sn, err := e2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(vpcID), CidrBlock: aws.String(fmt.Sprintf("10.7.%d.0/24", i)),
			AvailabilityZone: aws.String(awstest.Region + az)})
		if err != nil {
			t.Fatal(err)
		}
		subnets = append(subnets, aws.ToString(sn.Subnet.SubnetId))
	}
	tf, plan, out := apply(t, bin, moto, map[string]any{
		"name": "mine", "allowed_cidrs": []string{"198.51.100.7/32"}, "workers_desired": 2, "workers_max": 4,
		"vpc_id": vpcID, "subnet_ids": subnets,
	})
	for _, rc := range plan.ResourceChanges {
		for _, made := range []string{"aws_vpc.", "aws_subnet.", "aws_internet_gateway.", "aws_route_table"} {
			if strings.Contains(rc.Address, made) && rc.Change.Actions.Create() {
				t.Errorf("the module makes %s in a VPC it was given", rc.Address)
			}
		}
	}
	if got, _ := out["vpc_id"].(string); got != vpcID {
		t.Errorf("vpc_id output %q, want %q", got, vpcID)
	}
	sgs, err := e2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{out["security_group_id"].(string)}})
	if err != nil || len(sgs.SecurityGroups) != 1 || aws.ToString(sgs.SecurityGroups[0].VpcId) != vpcID {
		t.Errorf("the cluster's group is not in the given VPC: %v %v", sgs, err)
	}
	insts, err := e2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:sparkplane/cluster"), Values: []string{"mine"}},
		{Name: aws.String("instance-state-name"), Values: []string{"running", "pending"}}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range insts.Reservations {
		for _, in := range r.Instances {
			n++
			if !slices.Contains(subnets, aws.ToString(in.SubnetId)) {
				t.Errorf("%s is in subnet %s, not one given", aws.ToString(in.InstanceId), aws.ToString(in.SubnetId))
			}
		}
	}
	if n != 3 {
		t.Errorf("%d instances, want the master and 2 workers", n)
	}
	groups, err := autoscaling.NewFromConfig(moto.Config()).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{
		AutoScalingGroupNames: []string{out["autoscaling_group"].(string)}})
	if err != nil || len(groups.AutoScalingGroups) != 1 {
		t.Fatalf("group: %v %v", groups, err)
	}
	if got := strings.Split(aws.ToString(groups.AutoScalingGroups[0].VPCZoneIdentifier), ","); !slices.Equal(sorted(got), sorted(subnets)) {
		t.Errorf("the group's subnets %v, want %v", got, subnets)
	}

	if err := tf.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if left := awstest.Remains(ctx, t, moto.Config(), "mine"); len(left) > 0 {
		t.Errorf("after destroy: %v", left)
	}
	left, err := e2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpcID}}}})
	if err != nil || len(left.Subnets) != 2 {
		t.Errorf("the user's VPC after destroy: %v %v, want its 2 subnets untouched", left, err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func fmtPort(p *int32) string {
	if p == nil {
		return "*"
	}
	return strconv.Itoa(int(*p))
}

func tag(tags []ec2types.Tag, k string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == k {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// checkUserData decodes a node's user-data, runs shellcheck on it, and checks it carries no
// secret and names the right role.
func checkUserData(t *testing.T, role, encoded string) {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		b = []byte(encoded)
	}
	script := string(b)
	if !strings.Contains(script, `"role": "`+role+`"`) || !strings.HasPrefix(script, "#!/bin/bash") {
		t.Errorf("%s user-data:\n%s", role, script)
	}
	for _, bad := range []string{"BEGIN", "PRIVATE", "token", "password", "secret\":"} {
		if strings.Contains(script, bad) {
			t.Errorf("%s user-data holds %q", role, bad)
		}
	}
	shellcheck := testutil.Tool(t, "shellcheck", "apt-get install shellcheck")
	f := filepath.Join(t.TempDir(), role+".sh")
	os.WriteFile(f, b, 0o644)
	if out, err := exec.Command(shellcheck, "-s", "bash", f).CombinedOutput(); err != nil {
		t.Errorf("shellcheck on the %s user-data: %v\n%s", role, err, out)
	}
}

// checkPolicy checks the nodes' policy document: every statement that touches data or changes
// capacity is confined to the cluster's own resources.
func checkPolicy(t *testing.T, doc, bucket string) {
	t.Helper()
	var p struct {
		Statement []struct {
			Sid       string
			Action    any
			Resource  any
			Condition map[string]map[string]any
		}
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatalf("policy: %v\n%s", err, doc)
	}
	bySid := map[string]string{}
	for _, s := range p.Statement {
		res, _ := json.Marshal(s.Resource)
		cond, _ := json.Marshal(s.Condition)
		bySid[s.Sid] = string(res) + " " + string(cond)
	}
	for sid, want := range map[string]string{
		"ListOwnPrefix":      `"arn:aws:s3:::` + bucket + `" {"StringLike":{"s3:prefix":["clusters/modtest/","clusters/modtest/*"]}}`,
		"ReadWriteOwnPrefix": `"arn:aws:s3:::` + bucket + `/clusters/modtest/*" null`,
		"ReadOwnParameters":  `"arn:aws:ssm:eu-west-1:123456789012:parameter/sparkplane/modtest/*" null`,
		"ScaleOwnGroup":      `"*" {"StringEquals":{"autoscaling:ResourceTag/sparkplane/cluster":"modtest"}}`,
	} {
		if got := bySid[sid]; got != want {
			t.Errorf("statement %s:\n got %s\nwant %s", sid, got, want)
		}
	}
	if len(p.Statement) != 5 {
		t.Errorf("%d statements, want 5:\n%s", len(p.Statement), doc)
	}
}
