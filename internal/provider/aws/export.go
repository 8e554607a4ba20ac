package aws

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"text/template"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/fsutil"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/terraform"
)

// ExportModuleDir is where an exported root module keeps its copy of the module.
const ExportModuleDir = "modules/sparkplane-aws"

// Export writes, into dir, a root module for the cluster a spec describes, for teams that run
// Terraform themselves: main.tf (the provider, the state backend, the module with the spec's
// values), outputs.tf, a copy of the module under modules/sparkplane-aws (so the root is pinned
// to this sparkplane), and a README of the steps sparkplane's create would take around apply:
// the secrets in SSM, the binary and Spark in the bucket. It returns the files it wrote.
func Export(c *spec.Cluster, dir string, overwrite bool) ([]string, error) {
	if err := validate(c); err != nil {
		return nil, err
	}
	if c.Storage.Bucket == "" {
		return nil, c.Origin.Errorf("storage.bucket", "create the bucket first (aws s3 mb s3://NAME) and set storage.bucket: NAME, or pass --set storage.bucket=NAME",
			"an exported cluster needs an existing bucket: its nodes read sparkplane and Spark from it while Terraform is still applying")
	}
	if !overwrite {
		for _, f := range []string{"main.tf", "outputs.tf"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return nil, fmt.Errorf("%s already exists; export into an empty directory, or pass --force to overwrite it", filepath.Join(dir, f))
			}
		}
	}
	root, err := rootFor(c, c.AWS.Region, c.Storage.Bucket, "./"+ExportModuleDir)
	if err != nil {
		return nil, err
	}
	mainTF, err := root.HCL()
	if err != nil {
		return nil, err
	}
	readme, err := exportReadme(c, root.Inputs)
	if err != nil {
		return nil, err
	}
	specJSON, err := json.MarshalIndent(SpecDoc{Spec: *c, CreatedAt: time.Now().UTC()}, "", "  ")
	if err != nil {
		return nil, err
	}
	moduleDir := filepath.Join(dir, ExportModuleDir)
	if err := os.RemoveAll(moduleDir); err != nil {
		return nil, err
	}
	if err := terraform.Write(terraform.AWS(), moduleDir); err != nil {
		return nil, err
	}
	files := []struct {
		name string
		body []byte
	}{
		{"main.tf", mainTF},
		{"outputs.tf", []byte(exportOutputs)},
		{"README.md", readme},
		{"spec.json", append(specJSON, '\n')},
	}
	written := []string{}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := fsutil.WriteFileAtomic(path, f.body, 0o644); err != nil {
			return nil, err
		}
		written = append(written, path)
	}
	return append(written, moduleDir+"/"), nil
}

const exportOutputs = `output "agent_url" {
  description = "The master's agent API (TLS). sparkplane's status and submit talk to it."
  value       = module.cluster.agent_url
}

output "master_private_ip" {
  description = "The master's private address."
  value       = module.cluster.master_private_ip
}

output "master_public_ip" {
  description = "The master's public address, if it has one."
  value       = module.cluster.master_public_ip
}

output "autoscaling_group" {
  description = "The workers' autoscaling group."
  value       = module.cluster.autoscaling_group
}

output "bucket" {
  description = "The cluster's bucket."
  value       = module.cluster.bucket
}
`

// HCL renders the root module in Terraform's native syntax, with the same content as JSON.
func (r Root) HCL() ([]byte, error) {
	f := hclwrite.NewEmptyFile()
	body := f.Body()

	tf := body.AppendNewBlock("terraform", nil).Body()
	tf.SetAttributeValue("required_version", cty.StringVal(requiredTerraform))
	tf.AppendNewline()
	tf.AppendNewBlock("required_providers", nil).Body().SetAttributeValue("aws", cty.ObjectVal(map[string]cty.Value{
		"source": cty.StringVal("hashicorp/aws"), "version": cty.StringVal(requiredAWSProvider)}))
	if b := r.Backend; b != nil {
		tf.AppendNewline()
		if err := setAll(tf.AppendNewBlock("backend", []string{"s3"}).Body(), r.backendSettings()); err != nil {
			return nil, err
		}
	}
	body.AppendNewline()

	p := body.AppendNewBlock("provider", []string{"aws"}).Body()
	if r.Region != "" {
		p.SetAttributeValue("region", cty.StringVal(r.Region))
	} else {
		p.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte("# region: from AWS_REGION or your AWS profile\n")}})
	}
	if r.Endpoint != "" {
		if err := setAll(p, endpointSettings()); err != nil {
			return nil, err
		}
		eps := p.AppendNewBlock("endpoints", nil).Body()
		for _, s := range services {
			eps.SetAttributeValue(s, cty.StringVal(r.Endpoint))
		}
	}
	if len(r.DefaultTags) > 0 {
		tags := map[string]cty.Value{}
		for k, v := range r.DefaultTags {
			tags[k] = cty.StringVal(v)
		}
		p.AppendNewBlock("default_tags", nil).Body().SetAttributeValue("tags", cty.MapVal(tags))
	}
	body.AppendNewline()

	m := body.AppendNewBlock("module", []string{"cluster"}).Body()
	m.SetAttributeValue("source", cty.StringVal(r.Source))
	m.AppendNewline()
	keys := make([]string, 0, len(r.Inputs))
	for k := range r.Inputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := ctyValue(r.Inputs[k])
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", k, err)
		}
		if v.IsNull() {
			continue
		}
		m.SetAttributeValue(k, v)
	}
	return hclwrite.Format(f.Bytes()), nil
}

// setAll sets attributes in order.
func setAll(body *hclwrite.Body, settings []setting) error {
	for _, kv := range settings {
		v, err := ctyValue(kv.value)
		if err != nil {
			return fmt.Errorf("%s: %w", kv.key, err)
		}
		body.SetAttributeValue(kv.key, v)
	}
	return nil
}

// ctyValue converts a module input (as Inputs makes them) to a Terraform value.
func ctyValue(v any) (cty.Value, error) {
	switch v := v.(type) {
	case nil:
		return cty.NullVal(cty.DynamicPseudoType), nil
	case string:
		return cty.StringVal(v), nil
	case bool:
		return cty.BoolVal(v), nil
	case int:
		return cty.NumberIntVal(int64(v)), nil
	case int64:
		return cty.NumberIntVal(v), nil
	case float64:
		return cty.NumberFloatVal(v), nil
	case []string:
		if len(v) == 0 {
			return cty.ListValEmpty(cty.String), nil
		}
		vals := make([]cty.Value, len(v))
		for i, s := range v {
			vals[i] = cty.StringVal(s)
		}
		return cty.ListVal(vals), nil
	case map[string]string:
		if len(v) == 0 {
			return cty.MapValEmpty(cty.String), nil
		}
		vals := map[string]cty.Value{}
		for k, s := range v {
			vals[k] = cty.StringVal(s)
		}
		return cty.MapVal(vals), nil
	}
	return cty.NilVal, fmt.Errorf("no Terraform value for %T", v)
}

var readmeTemplate = template.Must(template.New("readme").Parse(`# Spark cluster {{.Name}}, as Terraform

Written by ` + "`sparkplane export terraform`" + ` from a sparkplane spec. ` + "`main.tf`" + ` uses the module in
` + "`" + ExportModuleDir + "`" + ` (sparkplane's own, pinned to the sparkplane that wrote it) with the spec's values;
change them there. Before the first ` + "`terraform apply`" + `, do once what ` + "`sparkplane create`" + ` would do
for you: put the secrets in SSM and the software in the bucket. Neither ever enters Terraform's
state or the instances' user-data.

## 1. Secrets (SSM SecureString)

` + "```sh" + `
# the cluster secret: the agents' API token and Spark's shared secret
aws ssm put-parameter --type SecureString --name {{.Params}}secret --value "$(openssl rand -hex 32)"

# the agents' TLS certificate (self-signed; sparkplane pins it) and its key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN={{.ServerName}}" -addext "subjectAltName=DNS:{{.ServerName}}" \
  -keyout agent.key -out agent.crt
aws ssm put-parameter --type SecureString --name {{.Params}}tls-key --value file://agent.key
rm agent.key
` + "```" + `

## 2. Software (in the bucket, under the cluster's prefix)

` + "```sh" + `
aws s3 cp agent.crt s3://{{.Bucket}}/{{.Prefix}}tls/agent.crt
# sparkplane for linux/{{.GoArch}}: a release binary, or GOOS=linux GOARCH={{.GoArch}} go build ./cmd/sparkplane
aws s3 cp sparkplane s3://{{.Bucket}}/{{.Prefix}}bin/sparkplane-linux-{{.GoArch}}
aws s3 cp spec.json s3://{{.Bucket}}/{{.Prefix}}spec.json   # the spec the agents run by, written next to this file
curl -fLO https://archive.apache.org/dist/spark/spark-{{.Spark}}/{{.Tarball}}
aws s3 cp {{.Tarball}} s3://{{.Bucket}}/{{.Prefix}}spark/{{.Tarball}}
` + "```" + `

## 3. Apply

` + "```sh" + `
terraform init
terraform apply
` + "```" + `

Then ` + "`terraform output agent_url`" + ` is the master's agent. To remove the cluster: ` + "`terraform destroy`" + `,
then delete the two parameters under ` + "`{{.Params}}`" + ` and the objects under
` + "`s3://{{.Bucket}}/{{.Prefix}}`" + `.
`))

func exportReadme(c *spec.Cluster, inputs map[string]any) ([]byte, error) {
	arch, _ := inputs["architecture"].(string)
	goarch := GoArch(arch)
	var b bytes.Buffer
	err := readmeTemplate.Execute(&b, map[string]string{
		"Name": c.Name, "Params": ParameterPath(c.Name), "ServerName": agentapi.TLSServerName, "Bucket": c.Storage.Bucket,
		"Prefix": Prefix(c), "GoArch": goarch, "Spark": c.Spark.Version, "Tarball": spark.TarballName(c.Spark.Version),
	})
	return b.Bytes(), err
}
