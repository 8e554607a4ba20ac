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
		for _, kv := range endpointSettings() {
			provider[kv.key] = kv.value
		}
	}
	tf := map[string]any{
		"required_version":   requiredTerraform,
		"required_providers": map[string]any{"aws": map[string]any{"source": "hashicorp/aws", "version": requiredAWSProvider}},
	}
	if r.Backend != nil {
		s3 := map[string]any{}
		for _, kv := range r.backendSettings() {
			s3[kv.key] = kv.value
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

// The versions a root module requires, as the module itself does.
const (
	requiredTerraform   = ">= 1.5.0"
	requiredAWSProvider = ">= 5.40.0, < 7.0.0"
)

// setting is one argument of a block, in the order it is written.
type setting struct {
	key   string
	value any
}

// endpointSettings are what the AWS provider needs besides the endpoints to talk to a test or
// S3-compatible server.
func endpointSettings() []setting {
	return []setting{
		{"s3_use_path_style", true},
		{"skip_credentials_validation", true},
		{"skip_metadata_api_check", true},
		{"skip_requesting_account_id", true},
	}
}

// backendSettings are the S3 backend's arguments: the state encrypted, locked with Terraform's
// S3 lock file.
func (r Root) backendSettings() []setting {
	b := r.Backend
	out := []setting{{"bucket", b.Bucket}, {"key", b.Key}}
	if b.Region != "" {
		out = append(out, setting{"region", b.Region})
	}
	out = append(out, setting{"use_lockfile", true}, setting{"encrypt", true})
	if r.Endpoint != "" {
		out = append(out, setting{"endpoints", map[string]string{"s3": r.Endpoint, "sts": r.Endpoint}},
			setting{"use_path_style", true}, setting{"skip_credentials_validation", true},
			setting{"skip_requesting_account_id", true}, setting{"skip_metadata_api_check", true})
	}
	return out
}
