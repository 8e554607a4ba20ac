package nomad

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// A cluster is one Nomad job, sparkplane-NAME: a group "master" and a group per worker, named by
// the worker's id, so that removing a worker removes exactly its group (Nomad cannot choose which
// allocation a count decrease stops) and leaves the others' allocations as they are. The job's
// meta carries the cluster's name, spec and creation time, so that list and status come from
// Nomad's API alone. The cluster's secret, TLS key and certificate are in the Nomad Variable
// nomad/jobs/JOB, which the job's tasks read by their workload identity and render into their
// secrets directory: never in the job specification.

// Meta keys of a cluster's job and groups.
const (
	MetaCluster = "sparkplane/cluster"
	MetaSpec    = "sparkplane/spec"
	MetaCreated = "sparkplane/created"
	MetaRole    = "sparkplane/role"
)

// Items of the cluster's variable.
const (
	itemToken = "token"
	itemKey   = "tls_key"
	itemCert  = "tls_cert"
)

// Task environment the node side reads (see node.go); the rest comes from Nomad's own NOMAD_*.
const (
	envCluster = "SPARKPLANE_NOMAD_CLUSTER"
	envRole    = "SPARKPLANE_NOMAD_ROLE"
	envSpec    = "SPARKPLANE_NOMAD_SPEC"
	envCreated = "SPARKPLANE_NOMAD_CREATED"
	envAddr    = "SPARKPLANE_NOMAD_ADDR"
)

// Files the task's templates render, relative to the task's directory.
const (
	fileToken       = "secrets/token"
	fileKey         = "secrets/agent.key"
	fileCert        = "secrets/agent.crt"
	fileMasterAgent = "local/master-agent"
	// Where the task's artifacts (nomad.artifacts) are downloaded to.
	fileSparkplane   = "local/bin/sparkplane"
	fileSparkTarball = "local/spark.tgz"
	// fileNomadToken is the task's workload identity, which Nomad writes: the master's agent
	// calls Nomad with it (see PolicyName).
	fileNomadToken = "secrets/nomad_token"
)

// killTimeout is how long a worker's task has after SIGTERM to decommission in Spark (a client's
// max_kill_timeout, 30s by default, may cut it short).
const killTimeout = 2 * time.Minute

// agentPort is the label of the agent's port in every group.
const agentPort = "agent"

// JobID is the Nomad job of a cluster.
func JobID(cluster string) string { return "sparkplane-" + cluster }

// VariablePath is where a cluster's secrets are: the path a job's tasks may read by their
// workload identity alone.
func VariablePath(cluster string) string { return "nomad/jobs/" + JobID(cluster) }

// PolicyName is the ACL policy create attaches to the cluster's job where Nomad's ACLs are on:
// it lets the job's own tasks, by their workload identity, change and stop that job and delete
// its variable, so that the master's agent can add and remove workers and end the cluster's
// lifetime, and a worker can tell a drain from the cluster's end.
func PolicyName(namespace, cluster string) string {
	return "sparkplane-" + cmp.Or(namespace, "default") + "-" + cluster
}

// policyRules are the policy's rules: the job's namespace, and there the job's own variable.
func policyRules(namespace, cluster string) string {
	return fmt.Sprintf(`namespace %q {
  capabilities = ["list-jobs", "read-job", "submit-job"]
  variables {
    path %q {
      capabilities = ["read", "list", "destroy"]
    }
  }
}
`, cmp.Or(namespace, "default"), VariablePath(cluster))
}

// serviceName is the master agent's service registration (Nomad's native service discovery).
func serviceName(cluster string) string { return JobID(cluster) + "-agent" }

// renderJob is the cluster's job with the given workers. address is the Nomad API that the
// master's agent adds and removes workers through.
func renderJob(c *spec.Cluster, created time.Time, workers []string, address string) (*api.Job, error) {
	specJSON, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	n := c.Nomad
	if n == nil {
		n = &spec.Nomad{Driver: spec.DriverExec, Sparkplane: "/usr/local/bin/sparkplane"}
	}
	id := JobID(c.Name)
	job := api.NewServiceJob(id, id, n.Region, 50)
	if n.Region == "" {
		job.Region = nil // the region of the agent that takes the job
	}
	if n.Namespace != "" {
		job.Namespace = ptr(n.Namespace)
	}
	job.Datacenters = n.Datacenters
	if len(job.Datacenters) == 0 {
		job.Datacenters = []string{"*"}
	}
	if n.NodePool != "" {
		job.NodePool = ptr(n.NodePool)
	}
	for _, k := range n.Constraints {
		job.Constrain(api.NewConstraint(k.Attribute, cmp.Or(k.Operator, "="), k.Value))
	}
	job.SetMeta(MetaCluster, c.Name)
	job.SetMeta(MetaSpec, string(specJSON))
	job.SetMeta(MetaCreated, created.UTC().Format(time.RFC3339))
	env := map[string]string{envCluster: c.Name, envSpec: string(specJSON), envCreated: created.UTC().Format(time.RFC3339), envAddr: address}
	job.AddTaskGroup(group(c, n, agentapi.RoleMaster, agentapi.RoleMaster, env))
	for _, w := range workers {
		job.AddTaskGroup(group(c, n, w, agentapi.RoleWorker, env))
	}
	return job, nil
}

// group is one node of the cluster: its agent as a task, which runs the Spark daemon.
func group(c *spec.Cluster, n *spec.Nomad, name, role string, env map[string]string) *api.TaskGroup {
	g := api.NewTaskGroup(name, 1)
	g.SetMeta(MetaRole, role)
	g.Networks = []*api.NetworkResource{{DynamicPorts: []api.Port{{Label: agentPort}}}}
	// A lost or failed allocation is replaced, without end, as a node would be.
	g.ReschedulePolicy = &api.ReschedulePolicy{Unlimited: ptr(true), Delay: ptr(5 * time.Second), DelayFunction: ptr("exponential"), MaxDelay: ptr(time.Minute)}
	g.RestartPolicy = &api.RestartPolicy{Attempts: ptr(3), Interval: ptr(5 * time.Minute), Delay: ptr(5 * time.Second), Mode: ptr("fail")}
	if k := n.Spot; k != nil {
		// The master is never on spot capacity; the workers are where workers.spot says.
		op := "!="
		if role == agentapi.RoleWorker && c.Workers.Spot {
			op = "="
		}
		g.Constrain(api.NewConstraint(k.Attribute, op, k.Value))
	}
	if role == agentapi.RoleMaster {
		g.Services = []*api.Service{{Name: serviceName(c.Name), PortLabel: agentPort, Provider: "nomad",
			Tags: []string{"sparkplane", "cluster=" + c.Name}}}
	}
	t := api.NewTask(agentPort, n.Driver)
	command := n.Sparkplane
	if a := n.Artifacts.Sparkplane; a != nil {
		// Nomad's getter writes the file without its executable bit. The task's directory is
		// where the driver puts it: the host's path (raw_exec), /local (exec, docker).
		t.Artifacts = append(t.Artifacts, artifact(a, fileSparkplane))
		command = "/bin/sh"
		bin := `"$NOMAD_TASK_DIR/` + strings.TrimPrefix(fileSparkplane, "local/") + `"`
		t.SetConfig("args", []string{"-c", "chmod 0755 " + bin + " && exec " + bin + " agent --nomad"})
	} else {
		t.SetConfig("args", []string{"agent", "--nomad"})
	}
	t.SetConfig("command", command)
	if n.Driver == spec.DriverDocker {
		t.SetConfig("image", n.Image)
		// Spark's daemons, drivers and executors open ports of their own, which a bridge
		// network would have to map one by one.
		t.SetConfig("network_mode", "host")
	}
	if a := n.Artifacts.Spark; a != nil {
		t.Artifacts = append(t.Artifacts, artifact(a, fileSparkTarball))
	}
	t.Env = map[string]string{envRole: role}
	for k, v := range env {
		t.Env[k] = v
	}
	t.Identity = &api.WorkloadIdentity{File: true}
	// Spark's decommission needs time after SIGTERM.
	t.KillTimeout = ptr(killTimeout)
	t.KillSignal = "SIGTERM"
	cpu, mem := 500, 1536 // the master: Spark's master JVM and the agent
	if role == agentapi.RoleWorker {
		cpu, mem = 250*c.Workers.Cores, c.Workers.MemoryMiB+1024
	}
	t.Resources = &api.Resources{CPU: ptr(cpu), MemoryMB: ptr(mem)}
	secret := func(item, dest, perms string) *api.Template {
		return &api.Template{EmbeddedTmpl: ptr(fmt.Sprintf(`{{ with nomadVar %q }}{{ .%s }}{{ end }}`, VariablePath(c.Name), item)),
			DestPath: ptr(dest), Perms: ptr(perms), ChangeMode: ptr("noop")}
	}
	t.Templates = []*api.Template{secret(itemToken, fileToken, "0600"), secret(itemKey, fileKey, "0600"), secret(itemCert, fileCert, "0644")}
	if role == agentapi.RoleWorker {
		// Workers find the master's agent by Nomad's service discovery; the file is empty until
		// the master's allocation registers it, and follows it when it moves.
		t.Templates = append(t.Templates, &api.Template{
			EmbeddedTmpl: ptr(fmt.Sprintf(`{{ range nomadService %q }}https://{{ .Address }}:{{ .Port }}{{ "\n" }}{{ end }}`, serviceName(c.Name))),
			DestPath:     ptr(fileMasterAgent), ChangeMode: ptr("noop")})
	}
	g.AddTask(t)
	return g
}

// artifact is a file the task downloads to dest before it starts, which Nomad checks against
// its checksum and leaves packed.
func artifact(a *spec.Artifact, dest string) *api.TaskArtifact {
	return &api.TaskArtifact{GetterSource: ptr(a.URL), GetterMode: ptr("file"), RelativeDest: ptr(dest),
		GetterOptions: map[string]string{"checksum": "sha256:" + a.SHA256, "archive": "false"}}
}

// workersOf are the worker groups of a cluster's job, in the job's order.
func workersOf(job *api.Job) []string {
	var out []string
	for _, g := range job.TaskGroups {
		if g.Meta[MetaRole] == agentapi.RoleWorker && g.Name != nil {
			out = append(out, *g.Name)
		}
	}
	return out
}

// specOf reads the spec and creation time a cluster's job carries.
func specOf(job *api.Job) (*spec.Cluster, time.Time, error) {
	var c spec.Cluster
	if err := json.Unmarshal([]byte(job.Meta[MetaSpec]), &c); err != nil {
		return nil, time.Time{}, fmt.Errorf("job %s: its %s meta: %w", deref(job.ID), MetaSpec, err)
	}
	created, _ := time.Parse(time.RFC3339, job.Meta[MetaCreated])
	return &c, created, nil
}

// withoutWorkers is the job with the given worker groups taken out.
func withoutWorkers(job *api.Job, remove []string) *api.Job {
	job.TaskGroups = slices.DeleteFunc(job.TaskGroups, func(g *api.TaskGroup) bool {
		return g.Name != nil && slices.Contains(remove, *g.Name) && g.Meta[MetaRole] == agentapi.RoleWorker
	})
	return job
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// isForbidden says whether Nomad refused a call for its token.
func isForbidden(err error) bool {
	var ue api.UnexpectedResponseError
	return errors.As(err, &ue) && (ue.StatusCode() == http.StatusForbidden || ue.StatusCode() == http.StatusUnauthorized)
}

// aclsOff says whether an ACL call failed because the Nomad cluster has no ACLs.
func aclsOff(err error) bool {
	var ue api.UnexpectedResponseError
	return errors.As(err, &ue) && ue.StatusCode() == http.StatusBadRequest && strings.Contains(ue.Body(), "ACL support disabled")
}

// isNotFound says whether a Nomad API error is a 404.
func isNotFound(err error) bool {
	var ue api.UnexpectedResponseError
	return errors.As(err, &ue) && ue.StatusCode() == http.StatusNotFound
}
