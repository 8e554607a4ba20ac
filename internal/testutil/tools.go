package testutil

import (
	"os"
	"os/exec"
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
