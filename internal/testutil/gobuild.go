// Package testutil holds helpers shared by tests: building this module's commands and waiting
// for conditions. It is imported only by tests.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/fsutil"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// Build compiles the main package importPath once per test process and returns the binary's
// path. Binaries live in one directory per user under the system's temp dir, replaced atomically,
// so that parallel test processes never see a half-written file and nothing piles up.
func Build(t testing.TB, importPath string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[importPath]; ok {
		return p
	}
	dir := BinDir(t)
	name := path.Base(importPath)
	tmp, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	cmd := exec.Command("go", "build", "-o", tmp.Name(), importPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp.Name())
		t.Fatalf("go build %s: %v\n%s", importPath, err, out)
	}
	final := filepath.Join(dir, name)
	if err := os.Rename(tmp.Name(), final); err != nil {
		t.Fatal(err)
	}
	built[importPath] = final
	return final
}

// BinDir is the directory, one per user under the system's temp dir, where tests keep what they
// build and reuse: binaries, Spark packed for shipping.
func BinDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("sparkplane-test-bin-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Eventually calls cond until it returns nil or timeout passes, then fails with cond's last error.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Tail returns the last n lines of a file, or why it cannot, for failure messages.
func Tail(path string, n int) string {
	s, err := fsutil.Tail(path, n)
	if err != nil {
		return err.Error()
	}
	return s
}

// RepoRoot is the directory of this module's go.mod, for tests that run the repository's scripts.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// TailString returns the last n lines of s, for failure messages.
func TailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
