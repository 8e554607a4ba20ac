// Package sparktest gives tests a Spark to run against: a fake SPARK_HOME whose launch scripts
// run the stand-in in package standin, or a real Spark when SPARK_HOME is set. It is imported only
// by tests and never linked into the sparkplane binary.
package sparktest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

const standInPkg = "github.com/sparkplane/sparkplane/internal/spark/sparktest/spark-standin"

// Home makes a fake SPARK_HOME for the given Spark version and returns its path.
func Home(t testing.TB, version string) string {
	t.Helper()
	bin := testutil.Build(t, standInPkg)
	home := filepath.Join(t.TempDir(), "spark-"+version+"-bin-hadoop3")
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(home, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("RELEASE", "Spark "+version+" built for Hadoop 3.3.4 (sparkplane test stand-in)\n", 0o644)
	for _, prog := range []string{"spark-class", "spark-submit"} {
		// Like Spark's own scripts these set SPARK_HOME and exec, so that the process the agent
		// started is the one that receives its signals.
		write("bin/"+prog, "#!/bin/sh\n"+
			"export SPARK_HOME='"+home+"'\n"+
			"export STANDIN_VERSION='"+version+"'\n"+
			"exec '"+bin+"' "+prog+" \"$@\"\n", 0o755)
	}
	return home
}

// RealHome returns a real Apache Spark of the given tested line ("3.5", "4"): SPARK_HOME when it
// is a release of that line, else the one hack/spark-home installed. Without one the test is
// skipped with the command that installs it, or fails when testutil.RequireToolsEnv=1 (as in CI).
// Real Spark costs seconds per JVM, so -short skips these tests.
func RealHome(t testing.TB, line string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("real Spark is not started under -short")
	}
	if home := os.Getenv("SPARK_HOME"); home != "" {
		if d, err := spark.OpenHome(home); err == nil {
			if l, ok := spark.LineOf(d.Version); ok && l.Name == line {
				return d.Home
			}
		}
	}
	script := filepath.Join(testutil.RepoRoot(t), "hack", "spark-home")
	var stderr bytes.Buffer
	cmd := exec.Command(script, "--installed", line)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := fmt.Sprintf("needs real Spark %s: %s (%v)", line, strings.TrimSpace(stderr.String()), err)
		if os.Getenv(testutil.RequireToolsEnv) == "1" {
			t.Fatalf("%s, and %s=1 requires it", msg, testutil.RequireToolsEnv)
		}
		t.Skip(msg)
	}
	return strings.TrimSpace(string(out))
}

// Lines are the names of the Spark lines sparkplane is tested with, oldest first.
func Lines() []string {
	var names []string
	for _, l := range spark.TestedLines() {
		names = append(names, l.Name)
	}
	return names
}

// Oldest and Newest are the first and last of Lines: a test of what does not depend on Spark's
// version runs on one of them, so that each line still runs a share of such tests.
func Oldest() string { return Lines()[0] }

// Newest: see Oldest.
func Newest() string {
	l := Lines()
	return l[len(l)-1]
}

// Packed is the Spark at home packed as sparkplane ships it to nodes (spark.Pack), made once and
// kept in testutil.BinDir while it is newer than the distribution and than spark.Pack's source:
// packing 400 MB takes most of a minute under -race, and the tests of several providers ship
// Spark. Processes that pack at once each write a file of their own and rename it into place.
func Packed(t testing.TB, home, version string) string {
	t.Helper()
	path := filepath.Join(testutil.BinDir(t), "packed-"+spark.TarballName(version))
	if fi, err := os.Stat(path); err == nil {
		fresh := true
		for _, src := range []string{filepath.Join(home, "RELEASE"), filepath.Join(home, "jars"), filepath.Join(testutil.RepoRoot(t), "internal", "spark", "dist.go")} {
			if si, err := os.Stat(src); err != nil || si.ModTime().After(fi.ModTime()) {
				fresh = false
			}
		}
		if fresh {
			return path
		}
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".packed-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	if err := spark.Pack(f, home, version); err != nil {
		f.Close()
		t.Fatalf("pack Spark %s: %v", version, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		t.Fatal(err)
	}
	return path
}

// JVMExample builds examples/jvm for a line's Spark (once; the script skips an up-to-date build)
// and returns the jar.
func JVMExample(t testing.TB, line string) string {
	t.Helper()
	script := filepath.Join(testutil.RepoRoot(t), "examples", "jvm", "build.sh")
	var stderr bytes.Buffer
	cmd := exec.Command(script, line)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("examples/jvm/build.sh %s: %v\n%s", line, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// WordCount is the JVM example's word-count class; its arguments are INPUT OUTPUT.
const WordCount = "dev.sparkplane.examples.WordCount"

// WordsInput writes a text whose word count is known, and returns its path, the one part file
// WordCount writes for it, and the line WordCount prints for it with output dir out.
func WordsInput(t testing.TB, out string) (path, want, line string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "input.txt")
	if err := os.WriteFile(path, []byte("the quick brown fox\njumps over the lazy dog\nThe DOG sleeps.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, "the\t3\ndog\t2\nbrown\t1\nfox\t1\njumps\t1\nlazy\t1\nover\t1\nquick\t1\nsleeps\t1\n",
		"WordCount: 9 distinct words, 12 words, written to " + out
}

// ReadPart reads the one part file a job wrote into dir.
func ReadPart(t testing.TB, dir string) string {
	t.Helper()
	parts, _ := filepath.Glob(filepath.Join(dir, "part-*"))
	if len(parts) != 1 {
		t.Fatalf("%s holds %d part files, want 1", dir, len(parts))
	}
	b, err := os.ReadFile(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
