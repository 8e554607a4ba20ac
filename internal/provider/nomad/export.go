package nomad

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sparkplane/sparkplane/internal/fsutil"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// Export writes the cluster's job as `nomad job run -json` takes it, rendered by the same code
// Create registers, the ACL policy Create attaches to it, and a README with the steps Create
// takes besides registering: the cluster's variable and, where ACLs are on, the policy. It returns the files written. An existing job file is refused unless force.
func (p *Provider) Export(c *spec.Cluster, dir string, force bool) ([]string, error) {
	if err := check(c); err != nil {
		return nil, err
	}
	job, err := renderJob(c, p.opts.Now().UTC().Truncate(time.Second), newWorkerIDs(c.Workers.Count, nil), p.address(c.Nomad))
	if err != nil {
		return nil, err
	}
	body, err := json.MarshalIndent(map[string]any{"Job": job}, "", "  ")
	if err != nil {
		return nil, err
	}
	jobFile := filepath.Join(dir, JobID(c.Name)+".nomad.json")
	if _, err := os.Stat(jobFile); err == nil && !force {
		return nil, fmt.Errorf("%s exists; give --force to overwrite it", jobFile)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	ns := p.namespace(c.Nomad)
	policy := PolicyName(ns, c.Name)
	readme := fmt.Sprintf(`# %[1]s on Nomad

Written by sparkplane export nomad. %[2]s is the cluster's job, as sparkplane create would
register it: a group master and a group per worker, each a %[3]s task running sparkplane's
agent (%[4]s) and Spark (%[5]s).

Before running it, store the cluster's secret, TLS key and certificate in the Nomad Variable
its tasks read, %[6]s. The certificate must be issued to sparkplane-agent:

    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj /CN=sparkplane-agent -addext subjectAltName=DNS:sparkplane-agent \
      -keyout agent.key -out agent.crt
    nomad var put %[6]s token="$(openssl rand -hex 32)" tls_key=@agent.key tls_cert=@agent.crt

Where the Nomad cluster's ACLs are on, attach %[7]s to the job, so that its tasks may change and
stop it (the master's agent adds and removes workers, and ends the cluster's lifetime; a worker
asks whether a SIGTERM is a drain). Only a management token may:

    nomad acl policy apply -namespace %[8]s -job %[9]s %[7]s %[7]s.policy.hcl

Then run the job:

    nomad job run -json %[2]s

sparkplane status %[1]s then finds the cluster through Nomad's API, as it finds one it created.
`, c.Name, filepath.Base(jobFile), c.Nomad.Driver, where(c.Nomad.Sparkplane, c.Nomad.Artifacts.Sparkplane), where(c.Spark.Home, c.Nomad.Artifacts.Spark), VariablePath(c.Name), policy, ns, JobID(c.Name))
	files := []string{jobFile, filepath.Join(dir, policy+".policy.hcl"), filepath.Join(dir, "README.md")}
	for i, b := range [][]byte{append(body, '\n'), []byte(policyRules(ns, c.Name)), []byte(readme)} {
		if err := fsutil.WriteFileAtomic(files[i], b, 0o644); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// where says where the client nodes find a file: downloaded from an artifact's URL, or at path.
func where(path string, a *spec.Artifact) string {
	if a != nil {
		return "downloaded from " + a.URL + ", sha256 " + a.SHA256
	}
	return "at " + path + " on the client nodes"
}
