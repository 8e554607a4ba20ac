package aws_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/sparkplane/sparkplane/internal/provider/aws/awstest"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// TestCLIExampleAgainstMoto is the issue's own check, through the binary a user runs:
// sparkplane create -f examples/aws.yaml (pointed at moto) brings up the topology, status shows
// it, add 2 and remove 1 change the group, destroy leaves nothing.
func TestCLIExampleAgainstMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("applies a whole cluster against moto")
	}
	t.Parallel()         // each test has a moto and a Terraform of its own
	awstest.Terraform(t) // sets TF_CLI_CONFIG_FILE, which the binary inherits
	moto := awstest.StartMoto(t)
	bin := testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	boot := awstest.Boot(t, moto, bin, "analytics")
	home := t.TempDir()
	env := append(os.Environ(), "SPARKPLANE_HOME="+home, "SPARKPLANE_CACHE="+filepath.Join(home, "cache"),
		"SPARK_HOME="+sparktest.Home(t, "3.5.3"), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("sparkplane %s: %v\n%s\n%s\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String(), boot.Logs())
		}
		return stdout.String()
	}
	t.Cleanup(func() {
		cmd := exec.Command(bin, "destroy", "analytics", "--yes")
		cmd.Env = env
		cmd.Run()
	})

	planStopsAtTheFirstInterrupt(t, bin, env, moto.URL)

	// The example as it is, but for where AWS is, and no autoscaler to change the group under
	// the test's feet.
	run("create", "-f", "../../../examples/aws.yaml", "--set", "aws.endpoint="+moto.URL, "--set", "autoscale.policy=off")

	var st struct {
		State string `json:"state"`
		Nodes []struct {
			Role string `json:"role"`
		} `json:"nodes"`
		Agent struct {
			AliveWorkers int `json:"aliveWorkers"`
		} `json:"agent"`
	}
	status := func() {
		t.Helper()
		out := run("status", "analytics", "-o", "json")
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status -o json: %v\n%s", err, out)
		}
	}
	roles := func() map[string]int {
		m := map[string]int{}
		for _, n := range st.Nodes {
			m[n.Role]++
		}
		return m
	}
	status()
	if r := roles(); r["master"] != 1 || r["gateway"] != 1 || r["worker"] != 3 || st.State != "running" {
		t.Errorf("after create: %s %v", st.State, r)
	}

	as := autoscaling.NewFromConfig(moto.Config())
	desired := func() int32 {
		return aws.ToInt32(group(t, as, "analytics").DesiredCapacity)
	}
	run("add", "analytics", "2")
	if d := desired(); d != 5 {
		t.Errorf("desired capacity after add 2: %d", d)
	}
	run("remove", "analytics", "1")
	if d := desired(); d != 4 {
		t.Errorf("desired capacity after remove 1: %d", d)
	}
	status()
	if r := roles(); r["worker"] != 4 {
		t.Errorf("after add 2 and remove 1: %v", r)
	}

	run("destroy", "analytics", "--yes")
	if left := awstest.Remains(context.Background(), t, moto.Config(), "analytics"); len(left) > 0 {
		t.Errorf("after destroy: %v", left)
	}
}

// planStopsAtTheFirstInterrupt sends Ctrl-C to plan while Terraform works: plan must end at
// once (exit 130), stopping Terraform and removing its scratch directory.
func planStopsAtTheFirstInterrupt(t *testing.T, bin string, env []string, endpoint string) {
	t.Helper()
	tmp := t.TempDir()
	cmd := exec.Command(bin, "plan", "-f", "../../../examples/aws.yaml", "--set", "aws.endpoint="+endpoint)
	cmd.Env = append(env, "TMPDIR="+tmp)
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, "plan runs Terraform", func() error {
		if dirs, _ := filepath.Glob(filepath.Join(tmp, "sparkplane-plan-*", ".terraform")); len(dirs) == 0 {
			return fmt.Errorf("no Terraform working directory in %s yet; stderr: %q", tmp, stderr.String())
		}
		return nil
	})
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("plan after Ctrl-C: %v, want exit 130\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("plan still ran 30 s after Ctrl-C\n%s", stderr.String())
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "sparkplane-plan-*")); len(left) != 0 {
		t.Errorf("plan left its scratch directory after Ctrl-C: %v", left)
	}
}
