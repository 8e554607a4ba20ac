package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The Spark stand-in is test code: it must never be linked into the binary users get.
func TestStandInNeverShips(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := string(out)
	if !strings.Contains(deps, "github.com/sparkplane/sparkplane/internal/agent") {
		t.Fatalf("go list -deps does not look right:\n%s", deps)
	}
	for _, forbidden := range []string{"internal/spark/sparktest", "internal/testutil", "go-internal/testscript"} {
		if strings.Contains(deps, forbidden) {
			t.Errorf("the sparkplane binary depends on %s", forbidden)
		}
	}
}
