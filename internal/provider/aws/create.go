package aws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/fsutil"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spec"
)

func (p *Provider) dirRoot() string { return filepath.Join(p.opts.Root, "aws") }

// endpointOf is the spec's endpoint override, for the root module.
func endpointOf(c *spec.Cluster) string {
	if c.AWS != nil {
		return c.AWS.Endpoint
	}
	return ""
}

// Plan runs terraform plan for the spec in a scratch directory and lists what it would make.
func (p *Provider) Plan(ctx context.Context, c *spec.Cluster) (*provider.Plan, error) {
	if err := validate(c); err != nil {
		return nil, err
	}
	cfg, err := p.awsConfig(ctx, c)
	if err != nil {
		return nil, err
	}
	bucket := c.Storage.Bucket
	if bucket == "" {
		bucket = "sparkplane-" + c.Name + "-xxxxxxxx"
	}
	r := &record{Spec: *c, Region: cfg.Region, Bucket: bucket}
	root, err := p.root(r)
	if err != nil {
		return nil, c.Origin.Errorf("workers.instanceTypes", "", "%v", err)
	}
	dir, err := os.MkdirTemp("", "sparkplane-plan-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	log, err := logFile(dir)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	tf, err := p.prepare(ctx, dir, root, log)
	if err != nil {
		return nil, err
	}
	planFile := filepath.Join(dir, "plan")
	w := &progressWriter{}
	if _, err := tf.PlanJSON(ctx, w, tfexec.Out(planFile)); err != nil {
		return nil, fmt.Errorf("terraform plan: %w", w.err(err))
	}
	plan, err := tf.ShowPlanFile(ctx, planFile)
	if err != nil {
		return nil, err
	}
	out := &provider.Plan{Provider: Name}
	adds := 0
	for _, rc := range plan.ResourceChanges {
		if rc.Mode != "managed" || rc.Change == nil {
			continue
		}
		for _, a := range rc.Change.Actions {
			action := string(a)
			if action == "no-op" || action == "read" {
				continue
			}
			if action == provider.Create {
				adds++
			}
			out.Changes = append(out.Changes, provider.Change{Action: action, Resource: strings.TrimPrefix(rc.Address, "module.cluster.")})
		}
	}
	if c.Storage.Bucket == "" {
		out.Changes = append(out.Changes, provider.Change{Action: provider.Create, Resource: "s3 bucket sparkplane-" + c.Name + "-…", Detail: "made by sparkplane, removed with the cluster"})
	}
	for _, param := range []string{secretParam, tlsKeyParam} {
		out.Changes = append(out.Changes, provider.Change{Action: provider.Create, Resource: "ssm parameter " + ParameterPath(c.Name) + param, Detail: "SecureString"})
	}
	sort.SliceStable(out.Changes, func(i, j int) bool { return out.Changes[i].Resource < out.Changes[j].Resource })
	out.Detail = fmt.Sprintf("terraform plan: %d to add in %s", adds, cfg.Region)
	return out, nil
}

// Create makes the cluster: its secrets in SSM, its artifacts in S3, the module applied, then
// waits until the master's agent publishes its endpoint. Whatever was made on a failure is left
// for Destroy, which the caller runs.
func (p *Provider) Create(ctx context.Context, c *spec.Cluster, opts provider.CreateOptions) (*provider.Cluster, error) {
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	if err := validate(c); err != nil {
		return nil, err
	}
	if _, err := p.readRecord(c.Name); err == nil {
		return nil, &provider.ExistsError{Name: c.Name, Provider: Name}
	}
	if opts.Spark == nil {
		return nil, errors.New("the aws provider needs a Spark distribution to upload")
	}
	cfg, err := p.awsConfig(ctx, c)
	if err != nil {
		return nil, err
	}
	arch, err := Architecture(append([]string{c.Master.InstanceType}, c.Workers.InstanceTypes...)...)
	if err != nil {
		return nil, c.Origin.Errorf("workers.instanceTypes", "", "%v", err)
	}
	goarch := GoArch(arch)
	binary, err := p.opts.Binary(goarch)
	if err != nil {
		return nil, err
	}
	r := &record{Spec: *c, CreatedAt: p.opts.Now().UTC(), Region: cfg.Region, Bucket: c.Storage.Bucket, Arch: goarch}
	if err := os.MkdirAll(p.dir(c.Name), 0o700); err != nil {
		return nil, err
	}
	if err := p.writeRecord(r); err != nil { // from here on, Destroy finds what to remove
		return nil, err
	}
	s3c := newS3(cfg)
	if r.Bucket == "" {
		r.CreatedBucket = true
		name, err := createBucket(ctx, s3c, c.Name, cfg.Region)
		r.Bucket = name
		if werr := p.writeRecord(r); werr != nil {
			return nil, werr
		}
		if err != nil {
			return nil, err
		}
		progress("created bucket " + r.Bucket)
	}

	// Secrets: SSM only. Neither user-data nor Terraform's state ever holds them.
	certPEM, keyPEM, err := agentapi.NewCertificate(c.Name, p.opts.Now())
	if err != nil {
		return nil, err
	}
	params := ssm.NewFromConfig(cfg)
	if err := putParameter(ctx, params, c.Name, secretParam, opts.Secret); err != nil {
		return nil, err
	}
	if err := putParameter(ctx, params, c.Name, tlsKeyParam, string(keyPEM)); err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(p.dir(c.Name), "agent.crt"), certPEM, 0o644); err != nil {
		return nil, err
	}
	progress("stored the cluster secret and the agents' TLS key in SSM (" + ParameterPath(c.Name) + ")")

	// Artifacts: the nodes take everything from the cluster's prefix, never from the internet.
	a := &artifacts{s3: s3c, bucket: r.Bucket, prefix: Prefix(c)}
	for _, upload := range []func() error{
		func() error { return a.put(ctx, keySpec, jsonBody(SpecDoc{Spec: *c, CreatedAt: r.CreatedAt})) },
		func() error { return a.put(ctx, keyCert, bytes.NewReader(certPEM)) },
		func() error { return a.putFile(ctx, keyBinary+goarch, binary) },
		func() error { return a.uploadSpark(ctx, opts.Spark, c.Spark.Version) },
	} {
		if err := upload(); err != nil { // each names the object it could not write
			return nil, err
		}
	}
	progress(fmt.Sprintf("uploaded sparkplane and Spark %s to s3://%s/%s", c.Spark.Version, r.Bucket, a.prefix))

	// Terraform.
	log, err := logFile(p.dir(c.Name))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	root, err := p.root(r)
	if err != nil {
		return nil, err
	}
	tf, err := p.prepare(ctx, p.dir(c.Name), root, log)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	w := &progressWriter{progress: progress, verb: "created", important: importantResource}
	if err := tf.ApplyJSON(ctx, io.MultiWriter(w, log)); err != nil {
		return nil, fmt.Errorf("terraform apply: %w (the log is %s)", w.err(err), filepath.Join(p.dir(c.Name), "terraform.log"))
	}
	progress(fmt.Sprintf("terraform applied %d resources in %s", w.done, time.Since(start).Round(time.Second)))

	// The master's agent publishes its endpoint once it serves.
	nodes, masterID, err := describeNodes(ctx, ec2.NewFromConfig(cfg), c.Name)
	if err != nil {
		return nil, err
	}
	if masterID == "" {
		return nil, fmt.Errorf("terraform applied, but EC2 shows no master instance tagged sparkplane/cluster=%s; see %s", c.Name, filepath.Join(p.dir(c.Name), "terraform.log"))
	}
	progress(fmt.Sprintf("waiting for the master's agent on %s (it installs Java and Spark first)", masterID))
	var ep *Endpoint
	err = waitFor(ctx, p.opts.AgentWait, func() (bool, error) {
		published, err := a.endpoint(ctx) // not there yet is not an error here
		ep = published
		return err == nil && published.InstanceID == masterID, nil
	}, func() error {
		return fmt.Errorf("the master's agent did not start within %s (its console output: aws ec2 get-console-output --instance-id %s)", p.opts.AgentWait, masterID)
	})
	if err != nil {
		return nil, err
	}
	return &provider.Cluster{Name: c.Name, Provider: Name, Spec: c, Agent: ep.URL, Nodes: nodes, CreatedAt: r.CreatedAt}, nil
}

// SpecDoc is spec.json: the cluster's spec, for its agents.
type SpecDoc struct {
	Spec      spec.Cluster `json:"spec"`
	CreatedAt time.Time    `json:"createdAt"`
}

// Destroy removes everything of a cluster: terraform destroy, its SSM parameters, its objects
// (keeping Spark's event logs in a bucket of the user's) or the bucket sparkplane made, and the
// working directory, then checks by tag that nothing remains. It succeeds when nothing is there.
func (p *Provider) Destroy(ctx context.Context, name string) error {
	if p.opts.InCluster != nil {
		return p.stopFromInside(ctx, name)
	}
	r, err := p.readRecord(name)
	if errors.Is(err, provider.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg, err := p.awsConfig(ctx, &r.Spec)
	if err != nil {
		return err
	}
	dir := p.dir(name)
	if _, err := os.Stat(filepath.Join(dir, "main.tf.json")); err == nil {
		log, err := logFile(dir)
		if err != nil {
			return err
		}
		defer log.Close()
		root, err := p.root(r)
		if err != nil {
			return err
		}
		tf, err := p.prepare(ctx, dir, root, log)
		if err != nil {
			return err
		}
		w := &progressWriter{verb: "destroyed"}
		if err := tf.DestroyJSON(ctx, io.MultiWriter(w, log)); err != nil {
			return fmt.Errorf("terraform destroy: %w (the log is %s)", w.err(err), filepath.Join(dir, "terraform.log"))
		}
	}
	params := ssm.NewFromConfig(cfg)
	for _, param := range []string{secretParam, tlsKeyParam} {
		if _, err := params.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(ParameterPath(name) + param)}); err != nil &&
			!isAPIError(err, "ParameterNotFound") {
			return fmt.Errorf("delete %s%s: %w", ParameterPath(name), param, err)
		}
	}
	if r.Bucket != "" {
		// The event logs outlive the cluster: on this machine, before the bucket goes.
		if _, _, err := p.FetchEventLogs(ctx, name); err != nil {
			return fmt.Errorf("keep the event logs before deleting the bucket: %w (destroy is safe to run again)", err)
		}
		s3c := newS3(cfg)
		if r.CreatedBucket {
			err = deleteBucket(ctx, s3c, r.Bucket)
		} else {
			err = (&artifacts{s3: s3c, bucket: r.Bucket, prefix: Prefix(&r.Spec)}).deleteAll(ctx, keyEvents)
		}
		if err != nil {
			return err
		}
	}
	left, err := Remains(ctx, cfg, name)
	if err != nil {
		return fmt.Errorf("check what remains of %s: %w", name, err)
	}
	if len(left) > 0 {
		return fmt.Errorf("after destroy, AWS still has %s; destroy is safe to run again", strings.Join(left, ", "))
	}
	if err := deleteState(ctx, cfg, &r.Spec); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// Stopped is what a master that ended its cluster's instances leaves in stopped.json.
type Stopped struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// stopFromInside is Destroy as the master's agent does it when the cluster's lifetime ends: it
// has no Terraform, so it ends what costs money (the workers, through the group; then its own
// instance) and leaves the rest, free while idle, for sparkplane destroy.
func (p *Provider) stopFromInside(ctx context.Context, name string) error {
	r, cfg, err := p.open(ctx, name)
	if err != nil {
		return err
	}
	group := GroupName(name)
	if _, err := autoscaling.NewFromConfig(cfg).UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(group), MinSize: aws.Int32(0), DesiredCapacity: aws.Int32(0)}); err != nil {
		return fmt.Errorf("scale %s to 0: %w", group, err)
	}
	a := &artifacts{s3: newS3(cfg), bucket: r.Bucket, prefix: Prefix(&r.Spec)}
	if err := a.put(ctx, keyStopped, jsonBody(Stopped{At: p.opts.Now().UTC(), Reason: "its lifetime ended"})); err != nil {
		return err
	}
	nodes, masterID, err := describeNodes(ctx, ec2.NewFromConfig(cfg), name)
	if err != nil {
		return err
	}
	var ids []string
	for _, n := range nodes {
		if n.Role != "worker" && n.State != provider.NodeStopped {
			id := strings.Fields(n.Detail)[0]
			if id != masterID {
				ids = append(ids, id) // the gateway
			}
		}
	}
	ids = append(ids, masterID) // this instance, last
	_, err = ec2.NewFromConfig(cfg).TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	return err
}
