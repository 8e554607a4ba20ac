package aws

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/sparkplane/sparkplane/internal/fsutil"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/terraform"
)

// record is what the working directory remembers of a cluster (cluster.json).
type record struct {
	Spec          spec.Cluster `json:"spec"`
	CreatedAt     time.Time    `json:"createdAt"`
	Region        string       `json:"region"`
	Bucket        string       `json:"bucket"`
	CreatedBucket bool         `json:"createdBucket"` // sparkplane made the bucket and removes it
	Arch          string       `json:"arch"`          // "amd64" or "arm64", of the binary uploaded
}

func (p *Provider) dir(name string) string { return filepath.Join(p.opts.Root, "aws", name) }

func (p *Provider) readRecord(name string) (*record, error) {
	if r := p.opts.InCluster; r != nil {
		if r.Spec.Name != name {
			return nil, provider.ErrNotFound
		}
		return r, nil
	}
	var r record
	err := fsutil.ReadJSON(filepath.Join(p.dir(name), "cluster.json"), &r)
	if errors.Is(err, os.ErrNotExist) {
		return nil, provider.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// open reads a cluster's record and makes the SDK configuration for it.
func (p *Provider) open(ctx context.Context, name string) (*record, aws.Config, error) {
	r, err := p.readRecord(name)
	if err != nil {
		return nil, aws.Config{}, err
	}
	cfg, err := p.awsConfig(ctx, &r.Spec)
	return r, cfg, err
}

func (p *Provider) writeRecord(r *record) error {
	return fsutil.WriteJSON(filepath.Join(p.dir(r.Spec.Name), "cluster.json"), r, 0o600)
}

// root is the root module of a cluster's working directory.
func (p *Provider) root(r *record) (Root, error) {
	return rootFor(&r.Spec, r.Region, r.Bucket, "./module")
}

// rootFor is the root module for a spec: the module at source with the spec's values, the
// provider for region ("" leaves it to the environment) and the spec's endpoint, the state
// backend, the cluster's tag on everything.
func rootFor(c *spec.Cluster, region, bucket, source string) (Root, error) {
	inputs, err := Inputs(c, bucket)
	if err != nil {
		return Root{}, err
	}
	root := Root{Source: source, Region: region, Endpoint: endpointOf(c), Inputs: inputs,
		DefaultTags: map[string]string{"sparkplane/cluster": c.Name}}
	if st := c.AWS.State; st.Backend == spec.StateS3 {
		root.Backend = &Backend{Bucket: st.Bucket, Key: StateKey(c), Region: cmp.Or(st.Region, region)}
	}
	return root, nil
}

// StateKey is the object a cluster's Terraform state is kept at with the S3 backend.
func StateKey(c *spec.Cluster) string {
	return cmp.Or(c.AWS.State.Key, "sparkplane/"+c.Name+"/terraform.tfstate")
}

// deleteState removes the (empty) state a destroy leaves in the S3 backend.
func deleteState(ctx context.Context, cfg aws.Config, c *spec.Cluster) error {
	st := c.AWS.State
	if st.Backend != spec.StateS3 {
		return nil
	}
	cfg = cfg.Copy()
	cfg.Region = cmp.Or(st.Region, cfg.Region)
	if _, err := newS3(cfg).DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(StateKey(c))}); err != nil {
		return fmt.Errorf("delete the state s3://%s/%s: %w", st.Bucket, StateKey(c), err)
	}
	return nil
}

// prepare writes a working directory (the module, the root module) and initialises Terraform in
// it.
func (p *Provider) prepare(ctx context.Context, dir string, root Root, log io.Writer) (*tfexec.Terraform, error) {
	if err := os.RemoveAll(filepath.Join(dir, "module")); err != nil {
		return nil, err
	}
	if err := terraform.Write(terraform.AWS(), filepath.Join(dir, "module")); err != nil {
		return nil, err
	}
	b, err := root.JSON()
	if err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, "main.tf.json"), b, 0o644); err != nil {
		return nil, err
	}
	tf, err := tfexec.NewTerraform(dir, p.opts.Terraform)
	if err != nil {
		return nil, fmt.Errorf("terraform: %w (install Terraform 1.5 or later, https://developer.hashicorp.com/terraform/install)", err)
	}
	if p.opts.PluginCache != "" {
		if err := os.MkdirAll(p.opts.PluginCache, 0o755); err != nil {
			return nil, err
		}
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		for _, k := range tfexec.ProhibitedEnv(env) { // terraform-exec sets these itself
			delete(env, k)
		}
		env["TF_PLUGIN_CACHE_DIR"] = p.opts.PluginCache
		if err := tf.SetEnv(env); err != nil {
			return nil, err
		}
	}
	tf.SetStdout(log)
	tf.SetStderr(log)
	if err := tf.Init(ctx, tfexec.Upgrade(false)); err != nil {
		return nil, fmt.Errorf("terraform init: %w", tfError(err))
	}
	return tf, nil
}

// logFile is the working directory's terraform.log, appended to.
func logFile(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(dir, "terraform.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
}

// tfError keeps the useful part of a Terraform failure: each "Error:" paragraph (the summary)
// and the paragraph after it (the detail).
func tfError(err error) error {
	msg := err.Error()
	var keep []string
	paras := strings.Split(msg, "\n\n")
	for i, para := range paras {
		if !strings.Contains(para, "Error:") {
			continue
		}
		keep = append(keep, strings.TrimSpace(para))
		if i+1 < len(paras) && !strings.Contains(paras[i+1], "Error:") {
			keep = append(keep, strings.Join(strings.Fields(paras[i+1]), " "))
		}
	}
	if len(keep) == 0 {
		return err
	}
	text := strings.Join(keep, "\n")
	if strings.Contains(text, "registry.terraform.io") {
		text += "\n(Terraform downloads the hashicorp/aws provider from registry.terraform.io: allow that, or point TF_CLI_CONFIG_FILE at a CLI config with a provider_installation mirror)"
	}
	return errors.New(text)
}

// progressWriter turns Terraform's machine-readable log (-json) into progress lines, keeps the
// diagnostics for the error, and counts what was done.
type progressWriter struct {
	progress    func(string)
	verb        string // "created", "destroyed"
	done, total int
	errors      []string
	rest        []byte
	important   func(addr string) bool
}

func (w *progressWriter) Write(b []byte) (int, error) {
	w.rest = append(w.rest, b...)
	for {
		i := bytes.IndexByte(w.rest, '\n')
		if i < 0 {
			break // a partial last line waits for the rest
		}
		w.line(w.rest[:i])
		w.rest = w.rest[i+1:]
	}
	return len(b), nil
}

func (w *progressWriter) line(line []byte) {
	var m struct {
		Type       string `json:"type"`
		Diagnostic struct {
			Severity string `json:"severity"`
			Summary  string `json:"summary"`
			Detail   string `json:"detail"`
			Address  string `json:"address"`
		} `json:"diagnostic"`
		Hook struct {
			Resource struct {
				Addr string `json:"addr"`
			} `json:"resource"`
			Action  string  `json:"action"`
			Elapsed float64 `json:"elapsed_seconds"`
		} `json:"hook"`
		Changes struct {
			Add, Remove int
		} `json:"changes"`
	}
	if json.Unmarshal(line, &m) != nil {
		return
	}
	switch m.Type {
	case "change_summary":
		if w.total == 0 {
			w.total = m.Changes.Add + m.Changes.Remove
		}
	case "apply_complete":
		if m.Hook.Action == "read" {
			return // a data source: not a resource made or removed, nor in the change summary
		}
		w.done++
		addr := strings.TrimPrefix(m.Hook.Resource.Addr, "module.cluster.")
		if w.progress != nil && (w.important == nil || w.important(addr)) {
			w.progress(fmt.Sprintf("%s %s (%d/%d, %.0fs)", w.verb, addr, w.done, max(w.total, w.done), m.Hook.Elapsed))
		}
	case "diagnostic":
		if m.Diagnostic.Severity == "error" {
			msg := m.Diagnostic.Summary
			if m.Diagnostic.Detail != "" {
				msg += ": " + m.Diagnostic.Detail
			}
			if m.Diagnostic.Address != "" {
				msg = strings.TrimPrefix(m.Diagnostic.Address, "module.cluster.") + ": " + msg
			}
			w.errors = append(w.errors, msg)
		}
	}
}

// err is Terraform's own account of a failed run, or err itself.
func (w *progressWriter) err(err error) error {
	if len(w.errors) > 0 {
		return errors.New(strings.Join(w.errors, "; "))
	}
	return tfError(err)
}

// importantResource says which resources are worth a progress line.
func importantResource(addr string) bool {
	for _, k := range []string{"aws_vpc.", "aws_instance.", "aws_autoscaling_group.", "aws_route53_zone.", "aws_s3_bucket.this", "aws_iam_role.node"} {
		if strings.HasPrefix(addr, k) {
			return true
		}
	}
	return false
}
