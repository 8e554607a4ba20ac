package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RequireToolsEnv, when set to 1, turns a missing external tool (prometheus, promtool, tmux)
// from a skipped test into a failed one. hack/test.sh sets it, so that CI cannot pass by
// skipping what it was meant to run.
const RequireToolsEnv = "SPARKPLANE_REQUIRE_TOOLS"

// Tool returns the path of an external program the test needs. When it is not installed the
// test is skipped with a message saying how to install it, or fails under RequireToolsEnv=1.
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " is not installed (" + install + ")"
	if os.Getenv(RequireToolsEnv) == "1" {
		t.Fatalf("%s, and %s=1 requires it", msg, RequireToolsEnv)
	}
	t.Skip(msg)
	return ""
}

// Testbed returns a test server that hack/testbed/build builds from the Go module proxy into the
// tools cache (nomad, consul). When it is not built the test is skipped with the command that
// builds it, or fails under RequireToolsEnv=1 (hack/setup.sh builds it for CI).
func Testbed(t testing.TB, server string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(RepoRoot(t), "hack", "testbed", "build"), "--installed", server)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		return strings.TrimSpace(string(out))
	}
	msg := fmt.Sprintf("needs %s: %s (%v)", server, strings.TrimSpace(stderr.String()), err)
	if os.Getenv(RequireToolsEnv) == "1" {
		t.Fatalf("%s, and %s=1 requires it", msg, RequireToolsEnv)
	}
	t.Skip(msg)
	return ""
}
