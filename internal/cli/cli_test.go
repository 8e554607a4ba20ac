package cli_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// TestScripts runs the .txtar scripts in testdata/script against the real sparkplane binary and a
// stand-in Spark. Each script has its own state directory; whatever clusters it leaves are
// destroyed afterwards.
func TestScripts(t *testing.T) {
	bin := testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	home := sparktest.Home(t, "3.5.3")
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			state := filepath.Join(env.WorkDir, ".sparkplane")
			env.Setenv("SPARKPLANE_HOME", state)
			env.Setenv("SPARKPLANE_CACHE", filepath.Join(env.WorkDir, ".cache"))
			env.Setenv("SPARK_HOME", home)
			env.Setenv("NO_COLOR", "1")
			env.Defer(func() {
				entries, _ := os.ReadDir(filepath.Join(state, "clusters"))
				for _, e := range entries {
					cmd := exec.Command(bin, "destroy", e.Name(), "--yes")
					cmd.Env = append(os.Environ(), "SPARKPLANE_HOME="+state)
					cmd.Run()
				}
			})
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// exitcode N cmd args... runs a command and checks its exit status.
			"exitcode": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) < 2 {
					ts.Fatalf("usage: exitcode N command [args...]")
				}
				want, err := strconv.Atoi(args[0])
				if err != nil {
					ts.Fatalf("exitcode: %v", err)
				}
				err = ts.Exec(args[1], args[2:]...)
				got := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					got = ee.ExitCode()
				} else if err != nil {
					ts.Fatalf("%s: %v", args[1], err)
				}
				if got != want {
					ts.Fatalf("%s exited %d, want %d\nstderr:\n%s", args[1], got, want, ts.ReadFile("stderr"))
				}
			},
		},
	})
}

// tarDir packs dir as the single top-level directory top of a gzipped tar, as Apache releases are.
func tarDir(t *testing.T, dir, top string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(filepath.Join(top, rel))
		if info.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			tw.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// Without SPARK_HOME the binary downloads the release from the mirror, checks its SHA-512,
// unpacks it into the cache, reports its progress, and runs the cluster on it; a second create
// uses the cache.
func TestDownloadFromMirror(t *testing.T) {
	bin := testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	tgz := tarDir(t, sparktest.Home(t, "3.5.3"), "spark-3.5.3-bin-hadoop3")
	sum := sha512.Sum512(tgz)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/spark/spark-3.5.3/spark-3.5.3-bin-hadoop3.tgz":
			w.Write(tgz)
		case "/spark/spark-3.5.3/spark-3.5.3-bin-hadoop3.tgz.sha512":
			fmt.Fprintf(w, "%x  spark-3.5.3-bin-hadoop3.tgz\n", sum)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "SPARKPLANE_HOME="+filepath.Join(dir, "state"), "SPARKPLANE_CACHE="+filepath.Join(dir, "cache"), "SPARK_HOME=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { run("destroy", "dl", "--yes"); run("destroy", "dl2", "--yes") })
	out, err := run("create", "-n", "dl", "--workers", "1", "--set", "spark.version=3.5.3", "--set", "spark.mirror="+srv.URL)
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	for _, want := range []string{"Downloading spark-3.5.3-bin-hadoop3.tgz: 100% of", "✓ Spark 3.5.3 at " + filepath.Join(dir, "cache", "spark", "spark-3.5.3-bin-hadoop3"), "✓ cluster dl is ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	before := hits.Load()
	if out, err := run("create", "-n", "dl2", "--workers", "1", "--set", "spark.version=3.5.3", "--set", "spark.mirror="+srv.URL); err != nil || strings.Contains(out, "Downloading") {
		t.Errorf("second create should use the cache: %v\n%s", err, out)
	}
	if hits.Load() != before {
		t.Error("the mirror was asked again")
	}
}

// With no Spark given, the pyspark that PYSPARK_PYTHON imports is used when it is the spec's
// release, and the status line says so; another release's pyspark is passed over.
func TestPySparkIsFound(t *testing.T) {
	bin := testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	// A pip-installed pyspark: no RELEASE file, a find_spark_home.py, the release in its jars' names.
	home := filepath.Join(t.TempDir(), "site-packages", "pyspark")
	os.MkdirAll(filepath.Dir(home), 0o755)
	if err := os.Rename(sparktest.Home(t, "4.3.0"), home); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(home, "RELEASE"))
	os.WriteFile(filepath.Join(home, "find_spark_home.py"), nil, 0o644)
	os.MkdirAll(filepath.Join(home, "jars"), 0o755)
	os.WriteFile(filepath.Join(home, "jars", "spark-core_2.13-4.3.0.jar"), nil, 0o644)
	for _, prog := range []string{"spark-class", "spark-submit"} { // the stand-in's scripts name their old home
		p := filepath.Join(home, "bin", prog)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "export SPARK_HOME=", "export SPARK_HOME='"+home+"' #")), 0o755)
	}
	python := filepath.Join(t.TempDir(), "python3")
	os.WriteFile(python, []byte("#!/bin/sh\necho '"+home+"'\n"), 0o755)

	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "SPARKPLANE_HOME="+filepath.Join(dir, "state"), "SPARKPLANE_CACHE="+filepath.Join(dir, "cache"),
			"SPARK_HOME=", "PYSPARK_PYTHON="+python)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { run("destroy", "py", "--yes") })
	out, err := run("create", "-n", "py", "--workers", "1", "--set", "spark.version=4.3.0")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	if want := "✓ Spark 4.3.0 at " + home + " (the pyspark of " + python + ")"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if out, err := run("destroy", "py", "--yes"); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	out, err = run("create", "-n", "py", "--workers", "1", "--set", "spark.version=3.5.9", "--set", "spark.mirror=http://127.0.0.1:9")
	if err == nil || !strings.Contains(out, "could not download Spark 3.5.9") {
		t.Errorf("a pyspark of another release must not be used: %v\n%s", err, out)
	}
}
