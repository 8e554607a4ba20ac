package aws

import (
	"context"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

func newEC2(cfg aws.Config) *ec2.Client { return ec2.NewFromConfig(cfg) }

func awsString(s string) *string { return aws.String(s) }

// Remains lists what AWS still has of a cluster, by its sparkplane/cluster tag (and, for what
// cannot carry it, by name): live instances, volumes, network pieces, security groups, launch
// templates, groups, roles and profiles, buckets, zones and SSM parameters. Terminated instances
// do not count: AWS shows them for a while after they are gone. (CloudWatch alarms are not
// listed: Terraform removes them with the group they watch.)
func Remains(ctx context.Context, cfg aws.Config, cluster string) ([]string, error) {
	var left []string
	// Names Terraform (name_prefix: 26 digits) or sparkplane (8 hex digits) made for this
	// cluster, and not for another whose name starts like it.
	owned := regexp.MustCompile(`^sparkplane-` + regexp.QuoteMeta(cluster) + `-([0-9]{26}|[0-9a-f]{8})$`)
	add := func(kind, id string) { left = append(left, kind+" "+id) }
	tagFilter := []ec2types.Filter{{Name: aws.String("tag:sparkplane/cluster"), Values: []string{cluster}}}
	e2 := ec2.NewFromConfig(cfg)
	insts, err := e2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: tagFilter})
	if err != nil {
		return left, err
	}
	for _, r := range insts.Reservations {
		for _, in := range r.Instances {
			if in.State.Name != ec2types.InstanceStateNameTerminated {
				add("instance", aws.ToString(in.InstanceId)+" ("+string(in.State.Name)+")")
			}
		}
	}
	vols, err := e2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: tagFilter})
	if err != nil {
		return left, err
	}
	for _, v := range vols.Volumes {
		add("volume", aws.ToString(v.VolumeId))
	}
	vpcs, err := e2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: tagFilter})
	if err != nil {
		return left, err
	}
	for _, v := range vpcs.Vpcs {
		add("vpc", aws.ToString(v.VpcId))
	}
	subnets, err := e2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: tagFilter})
	if err != nil {
		return left, err
	}
	for _, s := range subnets.Subnets {
		add("subnet", aws.ToString(s.SubnetId))
	}
	sgs, err := e2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: tagFilter})
	if err != nil {
		return left, err
	}
	for _, g := range sgs.SecurityGroups {
		add("security group", aws.ToString(g.GroupId))
	}
	lts, err := e2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{Filters: tagFilter})
	if err != nil {
		return left, err
	}
	for _, l := range lts.LaunchTemplates {
		add("launch template", aws.ToString(l.LaunchTemplateId))
	}
	igws, err := e2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: tagFilter})
	if err != nil {
		return left, err
	}
	for _, g := range igws.InternetGateways {
		add("internet gateway", aws.ToString(g.InternetGatewayId))
	}
	groups, err := autoscaling.NewFromConfig(cfg).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{
		Filters: []astypes.Filter{{Name: aws.String("tag:sparkplane/cluster"), Values: []string{cluster}}}})
	if err != nil {
		return left, err
	}
	for _, g := range groups.AutoScalingGroups {
		add("autoscaling group", aws.ToString(g.AutoScalingGroupName))
	}
	im := iam.NewFromConfig(cfg)
	roles, err := im.ListRoles(ctx, &iam.ListRolesInput{})
	if err != nil {
		return left, err
	}
	for _, r := range roles.Roles {
		if owned.MatchString(aws.ToString(r.RoleName)) {
			add("role", aws.ToString(r.RoleName))
		}
	}
	profiles, err := im.ListInstanceProfiles(ctx, &iam.ListInstanceProfilesInput{})
	if err != nil {
		return left, err
	}
	for _, p := range profiles.InstanceProfiles {
		if owned.MatchString(aws.ToString(p.InstanceProfileName)) {
			add("instance profile", aws.ToString(p.InstanceProfileName))
		}
	}
	buckets, err := newS3(cfg).ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		return left, err
	}
	for _, b := range buckets.Buckets {
		if owned.MatchString(aws.ToString(b.Name)) {
			add("bucket", aws.ToString(b.Name))
		}
	}
	zones, err := route53.NewFromConfig(cfg).ListHostedZones(ctx, &route53.ListHostedZonesInput{})
	if err != nil {
		return left, err
	}
	for _, z := range zones.HostedZones {
		if strings.TrimSuffix(aws.ToString(z.Name), ".") == cluster+".sparkplane.internal" {
			add("hosted zone", aws.ToString(z.Id))
		}
	}
	params, err := ssm.NewFromConfig(cfg).GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("/sparkplane/" + cluster), Recursive: aws.Bool(true)})
	if err != nil {
		return left, err
	}
	for _, p := range params.Parameters {
		add("parameter", aws.ToString(p.Name))
	}
	return left, nil
}
