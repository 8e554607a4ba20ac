package aws

import (
	"errors"
	"strings"
	"testing"
)

// Progress counts the resources Terraform made, not the data sources it read, against the
// summary of its plan, and keeps its diagnostics for the error.
func TestProgressWriter(t *testing.T) {
	var lines []string
	w := &progressWriter{progress: func(s string) { lines = append(lines, s) }, verb: "created", important: importantResource}
	log := `{"type":"change_summary","changes":{"add":2,"change":0,"remove":0,"operation":"plan"}}
{"type":"apply_complete","hook":{"resource":{"addr":"module.cluster.data.aws_ami.node"},"action":"read","elapsed_seconds":0}}
{"type":"apply_complete","hook":{"resource":{"addr":"module.cluster.aws_vpc.this[0]"},"action":"create","elapsed_seconds":3}}
{"type":"apply_complete","hook":{"resource":{"addr":"module.cluster.aws_subnet.public[0]"},"action":"create","elapsed_seconds":1}}
not json
{"type":"diagnostic","diagnostic":{"severity":"error","summary":"creating EC2 Instance","detail":"InsufficientInstanceCapacity","address":"module.cluster.aws_instance.master"}}
{"type":"diagnostic","diagnostic":{"severity":"warning","summary":"deprecated"}}
`
	// Written in two pieces that split a line, as a pipe may.
	w.Write([]byte(log[:100]))
	w.Write([]byte(log[100:]))
	if w.done != 2 || w.total != 2 {
		t.Errorf("done %d of %d, want 2 of 2 (a data source read is not a resource made)", w.done, w.total)
	}
	if len(lines) != 1 || lines[0] != "created aws_vpc.this[0] (1/2, 3s)" {
		t.Errorf("progress %q, want only the VPC's line", lines)
	}
	err := w.err(errors.New("exit status 1"))
	if want := "aws_instance.master: creating EC2 Instance: InsufficientInstanceCapacity"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// Terraform's own error text keeps its summaries and details, and says what to do when the
// provider cannot be downloaded.
func TestTFError(t *testing.T) {
	err := tfError(errors.New("exit status 1\n\nError: Failed to query available provider packages\n\nCould not retrieve the list of available versions for provider hashicorp/aws: could not connect to registry.terraform.io\n\nTo see which modules..."))
	for _, want := range []string{"Error: Failed to query available provider packages", "could not connect to registry.terraform.io", "TF_CLI_CONFIG_FILE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "To see which modules") {
		t.Errorf("%q keeps Terraform's advice paragraph", err)
	}
}
