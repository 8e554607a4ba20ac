package aws_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-exec/tfexec"

	sparkaws "github.com/sparkplane/sparkplane/internal/provider/aws"
	"github.com/sparkplane/sparkplane/internal/provider/aws/awstest"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// TestExportPlansAgainstMoto exports examples/aws.yaml as a root module, checks what it renders
// (main.tf, and the nodes' user-data in Terraform's plan) against golden files, and plans it
// against moto with Terraform alone.
func TestExportPlansAgainstMoto(t *testing.T) {
	t.Parallel() // each test has a moto and a Terraform of its own
	tf := awstest.Terraform(t)
	moto := awstest.StartMoto(t)
	var ov []spec.Override
	for _, set := range []string{"storage.bucket=analytics-data", "aws.endpoint=" + moto.URL, "monitoring.prometheus=true", "monitoring.grafana=true"} {
		o, err := spec.SetFlag(set)
		if err != nil {
			t.Fatal(err)
		}
		ov = append(ov, o)
	}
	c, err := spec.LoadFile("../../../examples/aws.yaml", spec.Options{Overrides: ov})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := sparkaws.Export(c, dir, false); err != nil {
		t.Fatal(err)
	}
	if _, err := sparkaws.Export(c, dir, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("a second export over the first: %v, want a refusal that names --force", err)
	}
	// The endpoint is moto's port of the day.
	normalize := func(b []byte) []byte { return []byte(strings.ReplaceAll(string(b), moto.URL, "http://127.0.0.1:MOTO")) }
	mainTF, err := os.ReadFile(filepath.Join(dir, "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, "testdata/export/main.tf", normalize(mainTF))
	readme, _ := os.ReadFile(filepath.Join(dir, "README.md"))
	for _, want := range []string{"/sparkplane/analytics/secret", "s3://analytics-data/clusters/analytics/bin/sparkplane-linux-amd64", "spark-4.3.0-bin-hadoop3.tgz"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("the README lacks %q", want)
		}
	}

	ctx := context.Background()
	x, err := tfexec.NewTerraform(dir, tf)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := x.Validate(ctx); err != nil || !v.Valid {
		t.Fatalf("validate: %+v %v", v, err)
	}
	if ok, err := x.Plan(ctx, tfexec.Out("plan.bin")); err != nil || !ok {
		t.Fatalf("plan: changes %v, %v", ok, err)
	}
	plan, err := x.ShowPlanFile(ctx, filepath.Join(dir, "plan.bin"))
	if err != nil {
		t.Fatal(err)
	}
	userData := map[string]string{}
	creates := map[string]bool{}
	for _, rc := range plan.ResourceChanges {
		if rc.Change.Actions.Create() {
			creates[strings.TrimPrefix(rc.Address, "module.cluster.")] = true
		}
		after, _ := rc.Change.After.(map[string]any)
		switch rc.Address {
		case "module.cluster.aws_instance.master":
			userData["master"], _ = after["user_data"].(string)
		case `module.cluster.aws_instance.extra["gateway"]`:
			userData["gateway"], _ = after["user_data"].(string)
		case `module.cluster.aws_instance.extra["monitoring"]`:
			userData["monitoring"], _ = after["user_data"].(string)
		case "module.cluster.aws_launch_template.worker":
			b64, _ := after["user_data"].(string)
			b, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				t.Fatalf("the launch template's user-data: %v", err)
			}
			userData["worker"] = string(b)
		}
	}
	for _, want := range []string{"aws_vpc.this[0]", "aws_subnet.public[2]", "aws_security_group.cluster", "aws_iam_role.node",
		"aws_route53_record.master", "aws_instance.master", `aws_instance.extra["gateway"]`, "aws_autoscaling_group.workers",
		"aws_autoscaling_lifecycle_hook.decommission", `aws_instance.extra["monitoring"]`, "aws_security_group.monitoring[0]"} {
		if !creates[want] {
			t.Errorf("the plan does not create %s", want)
		}
	}
	if creates["aws_s3_bucket.this[0]"] {
		t.Error("the plan creates a bucket, though the spec names one")
	}
	// The launch template holds the workers' whole script; an instance's user_data is kept by
	// the AWS provider as the SHA-1 of its script, so the golden files of the master, gateway and
	// monitoring instance are those (the module's test reads their full scripts from moto and
	// runs shellcheck on them).
	for _, role := range []string{"master", "worker", "gateway", "monitoring"} {
		if userData[role] == "" {
			t.Errorf("no %s user-data known at plan time", role)
			continue
		}
		name := "testdata/export/user-data-" + role + ".sh"
		if role != "worker" {
			name = "testdata/export/user-data-" + role + ".sha1"
		}
		testutil.Golden(t, name, normalize([]byte(userData[role])))
	}
}
