package aws

import (
	"context"
	"errors"
	"regexp"
	"slices"
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
	"github.com/aws/smithy-go"
)

// isAPIError says whether err is an AWS API error with one of these codes.
func isAPIError(err error, codes ...string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && slices.Contains(codes, ae.ErrorCode())
}

// Remains lists what AWS still has of a cluster, by its sparkplane/cluster tag (and, for what
// cannot carry it, by name): live instances, volumes, network pieces, security groups, launch
// templates, groups, roles and profiles, buckets, zones and SSM parameters. Terminated instances
// do not count: AWS shows them for a while after they are gone. (CloudWatch alarms are not
// listed: Terraform removes them with the group they watch.)
func Remains(ctx context.Context, cfg aws.Config, cluster string) ([]string, error) {
	var left []string
	add := func(kind, id string) { left = append(left, kind+" "+id) }
	// Names Terraform (name_prefix: 26 digits) or sparkplane (8 hex digits) made for this
	// cluster, and not for another whose name starts like it.
	owned := regexp.MustCompile(`^sparkplane-` + regexp.QuoteMeta(cluster) + `-([0-9]{26}|[0-9a-f]{8})$`)
	addOwned := func(kind, name string) {
		if owned.MatchString(name) {
			add(kind, name)
		}
	}
	tagged := []ec2types.Filter{{Name: aws.String("tag:sparkplane/cluster"), Values: []string{cluster}}}
	e2, im := ec2.NewFromConfig(cfg), iam.NewFromConfig(cfg)

	// Every listing is read to its last page: an account has more roles and zones than one holds.
	instances := ec2.NewDescribeInstancesPaginator(e2, &ec2.DescribeInstancesInput{Filters: tagged})
	volumes := ec2.NewDescribeVolumesPaginator(e2, &ec2.DescribeVolumesInput{Filters: tagged})
	vpcs := ec2.NewDescribeVpcsPaginator(e2, &ec2.DescribeVpcsInput{Filters: tagged})
	subnets := ec2.NewDescribeSubnetsPaginator(e2, &ec2.DescribeSubnetsInput{Filters: tagged})
	groups := ec2.NewDescribeSecurityGroupsPaginator(e2, &ec2.DescribeSecurityGroupsInput{Filters: tagged})
	templates := ec2.NewDescribeLaunchTemplatesPaginator(e2, &ec2.DescribeLaunchTemplatesInput{Filters: tagged})
	gateways := ec2.NewDescribeInternetGatewaysPaginator(e2, &ec2.DescribeInternetGatewaysInput{Filters: tagged})
	asgs := autoscaling.NewDescribeAutoScalingGroupsPaginator(autoscaling.NewFromConfig(cfg), &autoscaling.DescribeAutoScalingGroupsInput{
		Filters: []astypes.Filter{{Name: aws.String("tag:sparkplane/cluster"), Values: []string{cluster}}}})
	roles := iam.NewListRolesPaginator(im, &iam.ListRolesInput{})
	profiles := iam.NewListInstanceProfilesPaginator(im, &iam.ListInstanceProfilesInput{})
	zones := route53.NewListHostedZonesPaginator(route53.NewFromConfig(cfg), &route53.ListHostedZonesInput{})
	params := ssm.NewGetParametersByPathPaginator(ssm.NewFromConfig(cfg), &ssm.GetParametersByPathInput{
		Path: aws.String("/sparkplane/" + cluster), Recursive: aws.Bool(true)})
	if err := pages(instances.HasMorePages, func() (*ec2.DescribeInstancesOutput, error) { return instances.NextPage(ctx) }, func(o *ec2.DescribeInstancesOutput) {
		for _, r := range o.Reservations {
			for _, in := range r.Instances {
				if in.State.Name != ec2types.InstanceStateNameTerminated {
					add("instance", aws.ToString(in.InstanceId)+" ("+string(in.State.Name)+")")
				}
			}
		}
	}); err != nil {
		return left, err
	}
	if err := pages(volumes.HasMorePages, func() (*ec2.DescribeVolumesOutput, error) { return volumes.NextPage(ctx) }, func(o *ec2.DescribeVolumesOutput) {
		for _, v := range o.Volumes {
			add("volume", aws.ToString(v.VolumeId))
		}
	}); err != nil {
		return left, err
	}
	if err := pages(vpcs.HasMorePages, func() (*ec2.DescribeVpcsOutput, error) { return vpcs.NextPage(ctx) }, func(o *ec2.DescribeVpcsOutput) {
		for _, v := range o.Vpcs {
			add("vpc", aws.ToString(v.VpcId))
		}
	}); err != nil {
		return left, err
	}
	if err := pages(subnets.HasMorePages, func() (*ec2.DescribeSubnetsOutput, error) { return subnets.NextPage(ctx) }, func(o *ec2.DescribeSubnetsOutput) {
		for _, sn := range o.Subnets {
			add("subnet", aws.ToString(sn.SubnetId))
		}
	}); err != nil {
		return left, err
	}
	if err := pages(groups.HasMorePages, func() (*ec2.DescribeSecurityGroupsOutput, error) { return groups.NextPage(ctx) }, func(o *ec2.DescribeSecurityGroupsOutput) {
		for _, g := range o.SecurityGroups {
			add("security group", aws.ToString(g.GroupId))
		}
	}); err != nil {
		return left, err
	}
	if err := pages(templates.HasMorePages, func() (*ec2.DescribeLaunchTemplatesOutput, error) { return templates.NextPage(ctx) }, func(o *ec2.DescribeLaunchTemplatesOutput) {
		for _, l := range o.LaunchTemplates {
			add("launch template", aws.ToString(l.LaunchTemplateId))
		}
	}); err != nil {
		return left, err
	}
	if err := pages(gateways.HasMorePages, func() (*ec2.DescribeInternetGatewaysOutput, error) { return gateways.NextPage(ctx) }, func(o *ec2.DescribeInternetGatewaysOutput) {
		for _, g := range o.InternetGateways {
			add("internet gateway", aws.ToString(g.InternetGatewayId))
		}
	}); err != nil {
		return left, err
	}
	if err := pages(asgs.HasMorePages, func() (*autoscaling.DescribeAutoScalingGroupsOutput, error) { return asgs.NextPage(ctx) }, func(o *autoscaling.DescribeAutoScalingGroupsOutput) {
		for _, g := range o.AutoScalingGroups {
			add("autoscaling group", aws.ToString(g.AutoScalingGroupName))
		}
	}); err != nil {
		return left, err
	}
	if err := pages(roles.HasMorePages, func() (*iam.ListRolesOutput, error) { return roles.NextPage(ctx) }, func(o *iam.ListRolesOutput) {
		for _, r := range o.Roles {
			addOwned("role", aws.ToString(r.RoleName))
		}
	}); err != nil {
		return left, err
	}
	if err := pages(profiles.HasMorePages, func() (*iam.ListInstanceProfilesOutput, error) { return profiles.NextPage(ctx) }, func(o *iam.ListInstanceProfilesOutput) {
		for _, p := range o.InstanceProfiles {
			addOwned("instance profile", aws.ToString(p.InstanceProfileName))
		}
	}); err != nil {
		return left, err
	}
	if err := pages(zones.HasMorePages, func() (*route53.ListHostedZonesOutput, error) { return zones.NextPage(ctx) }, func(o *route53.ListHostedZonesOutput) {
		for _, z := range o.HostedZones {
			if strings.TrimSuffix(aws.ToString(z.Name), ".") == cluster+".sparkplane.internal" {
				add("hosted zone", aws.ToString(z.Id))
			}
		}
	}); err != nil {
		return left, err
	}
	if err := pages(params.HasMorePages, func() (*ssm.GetParametersByPathOutput, error) { return params.NextPage(ctx) }, func(o *ssm.GetParametersByPathOutput) {
		for _, p := range o.Parameters {
			add("parameter", aws.ToString(p.Name))
		}
	}); err != nil {
		return left, err
	}
	// ListBuckets without a page size returns every bucket (up to 10,000).
	buckets, err := newS3(cfg).ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		return left, err
	}
	for _, b := range buckets.Buckets {
		addOwned("bucket", aws.ToString(b.Name))
	}
	return left, nil
}

// pages reads a paginator to its end, handing each page to use.
func pages[O any](more func() bool, next func() (O, error), use func(O)) error {
	for more() {
		page, err := next()
		if err != nil {
			return err
		}
		use(page)
	}
	return nil
}
