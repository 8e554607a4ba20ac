package nomad

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// check refuses what Nomad would only refuse later, or never: Spark must be on the client nodes.
func check(c *spec.Cluster) error {
	if c.Nomad != nil && c.Nomad.Artifacts.Spark != nil {
		return nil
	}
	if c.Spark.Home == "" {
		return c.Origin.Errorf("spark.home", "give the Spark home that every Nomad client node has, e.g. /opt/spark, or a tarball they download (nomad.artifacts.spark)",
			"provider nomad runs the Spark installed on its client nodes, or one they download")
	}
	if !filepath.IsAbs(c.Spark.Home) {
		return c.Origin.Errorf("spark.home", "give an absolute path on the client nodes", "%q is not an absolute path", c.Spark.Home)
	}
	return nil
}

// Plan lists what Create would make: the variable and the job with its groups.
func (p *Provider) Plan(ctx context.Context, c *spec.Cluster) (*provider.Plan, error) {
	if err := check(c); err != nil {
		return nil, err
	}
	plan := &provider.Plan{Provider: Name, Changes: []provider.Change{
		{Action: provider.Create, Resource: "variable " + VariablePath(c.Name), Detail: "the cluster's secret, TLS key and certificate"},
		{Action: provider.Create, Resource: "acl policy " + PolicyName(p.namespace(c.Nomad), c.Name), Detail: "where Nomad's ACLs are on: the job's tasks may change and stop it"},
		{Action: provider.Create, Resource: "job " + JobID(c.Name), Detail: fmt.Sprintf("%s driver, on %s", c.Nomad.Driver, p.address(c.Nomad))},
		{Action: provider.Create, Resource: "group master", Detail: "the Spark master and its agent; service " + serviceName(c.Name)},
	}}
	for i := 0; i < c.Workers.Count; i++ {
		plan.Changes = append(plan.Changes, provider.Change{Action: provider.Create, Resource: "group worker", Detail: fmt.Sprintf("%d cores, %d MiB", c.Workers.Cores, c.Workers.MemoryMiB)})
	}
	return plan, nil
}

// Create stores the cluster's secrets in its variable, registers its job, and waits until the
// master's agent answers. On error it leaves what it made for Destroy (the manager rolls back).
func (p *Provider) Create(ctx context.Context, c *spec.Cluster, opts provider.CreateOptions) (*provider.Cluster, error) {
	if err := check(c); err != nil {
		return nil, err
	}
	progress := func(s string) {
		if opts.Progress != nil {
			opts.Progress(s)
		}
	}
	cl, err := p.client(c.Nomad)
	if err != nil {
		return nil, err
	}
	if existing, _, err := cl.Jobs().Info(JobID(c.Name), (&api.QueryOptions{}).WithContext(ctx)); err == nil && !deref(existing.Stop) {
		return nil, &provider.ExistsError{Name: c.Name, Provider: Name}
	} else if err != nil && !isNotFound(err) {
		return nil, nomadError("look for the job "+JobID(c.Name), err)
	}
	p.forget(c.Name)
	certPEM, keyPEM, err := agentapi.NewCertificate(c.Name, p.opts.Now())
	if err != nil {
		return nil, err
	}
	v := &api.Variable{Path: VariablePath(c.Name), Items: api.VariableItems{itemToken: opts.Secret, itemKey: string(keyPEM), itemCert: string(certPEM)}}
	if _, _, err := cl.Variables().Create(v, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return nil, nomadError("store the cluster's secret in "+VariablePath(c.Name), err)
	}
	progress("stored the cluster secret in Nomad variable " + VariablePath(c.Name))
	if err := p.grant(ctx, cl, c, progress); err != nil {
		return nil, err
	}
	created := p.opts.Now().UTC().Truncate(time.Second)
	job, err := renderJob(c, created, newWorkerIDs(c.Workers.Count, nil), p.address(c.Nomad))
	if err != nil {
		return nil, err
	}
	if err := p.register(ctx, cl, job, 0); err != nil {
		return nil, err
	}
	progress(fmt.Sprintf("registered job %s: master and %d worker(s)", JobID(c.Name), c.Workers.Count))
	var got *provider.Cluster
	deadline := time.Now().Add(p.opts.AgentWait)
	for {
		got, err = p.Get(ctx, c.Name)
		if err == nil && got.Agent != "" {
			client, cerr := provider.AgentClient(ctx, p, c.Name, got.Agent, opts.Secret)
			if cerr != nil {
				return nil, cerr
			}
			hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, herr := client.Health(hctx)
			cancel()
			if herr == nil {
				break
			}
			err = herr
		}
		if err == nil {
			err = errors.New("the master's agent has not registered its service yet")
		}
		if why := p.failure(ctx, cl, c.Name); why != "" {
			return nil, fmt.Errorf("the master's allocation failed: %s", why)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the master's agent did not answer within %s: %w", p.opts.AgentWait, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	progress("the master's agent answers at " + got.Agent)
	return got, nil
}

// grant attaches the cluster's ACL policy (PolicyName) to its job where Nomad's ACLs are on.
// A token that may not write ACL policies (only a management token may) fails the create when
// the cluster needs its agent to act on Nomad (a lifetime, autoscaling); otherwise the cluster
// works without, and create says what it lacks.
func (p *Provider) grant(ctx context.Context, cl *api.Client, c *spec.Cluster, progress func(string)) error {
	ns := p.namespace(c.Nomad)
	name := PolicyName(ns, c.Name)
	pol := &api.ACLPolicy{Name: name, Description: "sparkplane cluster " + c.Name + ": its agents act on their own job",
		Rules: policyRules(ns, c.Name), JobACL: &api.JobACL{Namespace: ns, JobID: JobID(c.Name)}}
	_, err := cl.ACLPolicies().Upsert(pol, (&api.WriteOptions{}).WithContext(ctx))
	switch {
	case err == nil:
		progress("attached ACL policy " + name + " to the job: its agents may change and stop it")
		return nil
	case aclsOff(err):
		return nil
	case isForbidden(err) && c.Lifetime == (spec.Lifetime{}) && c.Autoscale.Policy == spec.PolicyOff:
		progress("warning: this token may not write ACL policies, so the cluster's agents cannot act on Nomad: " +
			"no autoscaling or lifetime (a management token attaches policy " + name + ")")
		return nil
	}
	return nomadError("attach ACL policy "+name+" to the job (the master's agent needs it to add and remove workers and end the cluster's lifetime; only a management token may write ACL policies)", err)
}

// failure is why the master's newest allocation failed, from its task's events, or "".
func (p *Provider) failure(ctx context.Context, cl *api.Client, name string) string {
	allocs, _, err := cl.Jobs().Allocations(JobID(name), false, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return ""
	}
	for _, a := range allocs {
		if a.TaskGroup != agentapi.RoleMaster {
			continue
		}
		// A download that does not match its pinned checksum will not match on a retry.
		for _, ts := range a.TaskStates {
			for _, e := range ts.Events {
				if e.Type == api.TaskArtifactDownloadFailed && strings.Contains(strings.ToLower(e.DisplayMessage), "checksum") {
					return fmt.Sprintf("%s: %s (check nomad.artifacts' sha256 against the files at their URLs)", e.Type, e.DisplayMessage)
				}
			}
		}
		if a.ClientStatus != api.AllocClientStatusFailed {
			continue
		}
		why := "allocation " + a.ID + " failed (nomad alloc status " + a.ID + ")"
		for _, ts := range a.TaskStates {
			// The newest event that says what went wrong; "Not Restarting" only says it stays so.
			var last *api.TaskEvent
			for _, e := range ts.Events {
				switch {
				case e.DisplayMessage == "":
				case e.Type == api.TaskTerminated, e.Type == api.TaskDriverFailure, e.Type == api.TaskArtifactDownloadFailed, e.Type == api.TaskSetupFailure:
					last = e
				case e.FailsTask && last == nil:
					last = e
				}
			}
			if last != nil {
				why = fmt.Sprintf("%s: %s (nomad alloc logs -stderr %s)", last.Type, last.DisplayMessage, a.ID)
			}
		}
		if tail := p.stderrTail(ctx, cl, a.ID); tail != "" {
			why += "; the agent's last words:\n" + tail
		}
		return why
	}
	return ""
}

// stderrTail is the end of what the agent of an allocation wrote to its stderr, or "".
func (p *Provider) stderrTail(ctx context.Context, cl *api.Client, allocID string) string {
	alloc, _, err := cl.Allocations().Info(allocID, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return ""
	}
	rc, err := cl.AllocFS().Cat(alloc, "alloc/logs/"+agentPort+".stderr.0", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
	if len(strings.TrimSpace(string(b))) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return "  " + strings.Join(lines[max(0, len(lines)-5):], "\n  ")
}

// AddWorkers adds n worker groups to the job. The other groups' allocations are left as they
// are: their specifications do not change.
func (p *Provider) AddWorkers(ctx context.Context, name string, n int) ([]string, error) {
	job, cl, err := p.job(ctx, name)
	if err != nil {
		return nil, err
	}
	c, created, err := specOf(job)
	if err != nil {
		return nil, err
	}
	ids := newWorkerIDs(n, workersOf(job))
	next, err := renderJob(c, created, append(workersOf(job), ids...), job.TaskGroups[0].Tasks[0].Env[envAddr])
	if err != nil {
		return nil, err
	}
	if err := p.register(ctx, cl, next, deref(job.JobModifyIndex)); err != nil {
		return nil, err
	}
	return ids, nil
}

// RemoveWorkers takes exactly the given worker groups out of the job.
func (p *Provider) RemoveWorkers(ctx context.Context, name string, nodes []string) error {
	job, cl, err := p.job(ctx, name)
	if err != nil {
		return err
	}
	for _, id := range nodes {
		if !slices.Contains(workersOf(job), id) {
			return fmt.Errorf("%s has no worker %s", name, id)
		}
	}
	return p.register(ctx, cl, withoutWorkers(job, nodes), deref(job.JobModifyIndex))
}

// Destroy deletes the variable, stops and purges the job, and deletes the ACL policy. The
// variable goes first: the master's agent ending its cluster's lifetime calls this with its
// task's workload identity, which stops working once the job is purged. Nothing there is
// success.
func (p *Provider) Destroy(ctx context.Context, name string) error {
	p.forget(name)
	cl, err := p.client(nil)
	if err != nil {
		return err
	}
	job, _, err := cl.Jobs().Info(JobID(name), (&api.QueryOptions{}).WithContext(ctx))
	switch {
	case isNotFound(err):
		job = nil
	case err != nil:
		return nomadError("read the job "+JobID(name), err)
	case job.Meta[MetaCluster] != name:
		return fmt.Errorf("the Nomad job %s is not a sparkplane cluster's; not touching it", JobID(name))
	}
	if _, err := cl.Variables().Delete(VariablePath(name), (&api.WriteOptions{}).WithContext(ctx)); err != nil && !isNotFound(err) {
		return nomadError("delete the variable "+VariablePath(name), err)
	}
	if job != nil {
		if _, _, err := cl.Jobs().Deregister(JobID(name), true, (&api.WriteOptions{}).WithContext(ctx)); err != nil && !isNotFound(err) {
			return nomadError("stop and purge the job "+JobID(name), err)
		}
	}
	policy := PolicyName(p.namespace(nil), name)
	_, err = cl.ACLPolicies().Delete(policy, (&api.WriteOptions{}).WithContext(ctx))
	switch {
	case err == nil, isNotFound(err), aclsOff(err):
	case isForbidden(err) && p.opts.Inside:
		// The cluster's own agent may not delete policies; what is left grants rights only to
		// a job of this name, and the next destroy from outside removes it.
	default:
		return nomadError("delete ACL policy "+policy+" (the job and the variable are gone; a management token removes the policy: nomad acl policy delete "+policy+")", err)
	}
	return nil
}
