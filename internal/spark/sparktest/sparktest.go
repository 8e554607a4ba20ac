// Package sparktest gives tests a Spark to run against: a fake SPARK_HOME whose launch scripts
// run the stand-in in package standin, or a real Spark when SPARK_HOME is set. It is imported only
// by tests and never linked into the sparkplane binary.
package sparktest

import (
	"os"
	"path/filepath"
	"testing"

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

// RealHome returns SPARK_HOME when it points at a real Spark, and skips the test otherwise.
func RealHome(t testing.TB) string {
	t.Helper()
	home := os.Getenv("SPARK_HOME")
	if home == "" {
		t.Skip("needs a real Apache Spark 3.5 or 4.0: set SPARK_HOME to an unpacked distribution to run this test")
	}
	if _, err := os.Stat(filepath.Join(home, "jars")); err != nil {
		t.Skipf("SPARK_HOME=%s has no jars/ directory; it does not look like a real Spark distribution", home)
	}
	return home
}
