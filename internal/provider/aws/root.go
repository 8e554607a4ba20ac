package aws

import (
	"encoding/json"
	"sort"
)

// services are the AWS APIs the module and sparkplane use; an endpoint override applies to each.
var services = []string{"autoscaling", "cloudwatch", "ec2", "iam", "route53", "s3", "ssm", "sts"}

// Root is the root module sparkplane writes next to the module for one cluster: the provider's
// configuration, the state backend, the module with the cluster's inputs, and its outputs. It is
// written as JSON (main.tf.json), which Terraform reads like HCL.
type Root struct {
	// Source is where the module is: "./module" in sparkplane's working directories.
	Source string
	Region string
	// Endpoint, when set, sends every AWS API call to it (moto, LocalStack, S3-compatible
	// servers), with path-style S3 and no credential or account checks.
	Endpoint string
	// Backend is the state backend; nil keeps the state in the working directory.
	Backend *Backend
	// Inputs are the module's variables.
	Inputs map[string]any
	// DefaultTags go on every resource the provider makes.
	DefaultTags map[string]string
}

// Backend is an S3 state backend, with Terraform's S3 lock file.
type Backend struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	Region string `json:"region,omitempty"`
}

// JSON renders the root module.
func (r Root) JSON() ([]byte, error) {
	provider := map[string]any{"region": r.Region}
	if len(r.DefaultTags) > 0 {
		provider["default_tags"] = map[string]any{"tags": r.DefaultTags}
	}
	if r.Endpoint != "" {
		eps := map[string]string{}
		for _, s := range services {
			eps[s] = r.Endpoint
		}
		provider["endpoints"] = []any{eps}
		provider["s3_use_path_style"] = true
		provider["skip_credentials_validation"] = true
		provider["skip_metadata_api_check"] = true
		provider["skip_requesting_account_id"] = true
	}
	tf := map[string]any{
		"required_version":   ">= 1.5.0",
		"required_providers": map[string]any{"aws": map[string]any{"source": "hashicorp/aws", "version": ">= 5.40.0, < 7.0.0"}},
	}
	if b := r.Backend; b != nil {
		s3 := map[string]any{"bucket": b.Bucket, "key": b.Key, "use_lockfile": true, "encrypt": true}
		if b.Region != "" {
			s3["region"] = b.Region
		}
		if r.Endpoint != "" {
			s3["endpoints"] = map[string]string{"s3": r.Endpoint, "sts": r.Endpoint}
			s3["use_path_style"] = true
			s3["skip_credentials_validation"] = true
			s3["skip_requesting_account_id"] = true
			s3["skip_metadata_api_check"] = true
		}
		tf["backend"] = map[string]any{"s3": s3}
	}
	module := map[string]any{"source": r.Source}
	keys := make([]string, 0, len(r.Inputs))
	for k := range r.Inputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		module[k] = r.Inputs[k]
	}
	doc := map[string]any{
		"terraform": tf,
		"provider":  map[string]any{"aws": provider},
		"module":    map[string]any{"cluster": module},
		"output":    map[string]any{"cluster": map[string]any{"value": "${module.cluster}"}},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
