package spark_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// apps are the applications a flow submits: stand-in programs, or Spark's own examples.
type apps struct {
	jar, class string   // finishes and prints piLine
	jarArgs    []string //
	failArgs   []string // makes the jar fail
	longArgs   []string // keeps the jar running until killed
	py         string   // finishes and prints piLine
	piLine     string
}

func standInApps(t *testing.T) apps {
	dir := t.TempDir()
	jar := filepath.Join(dir, "pi.jar")
	os.WriteFile(jar, []byte("standin: work=0.5 print=\"Pi is roughly 3.14\"\n"), 0o644)
	py := filepath.Join(dir, "pi.py")
	os.WriteFile(py, []byte("# standin: work=0.5 print=\"Pi is roughly 3.14\"\n"), 0o644)
	return apps{jar: "file://" + jar, class: "org.apache.spark.examples.SparkPi", py: py, piLine: "Pi is roughly 3.14",
		failArgs: []string{"standin:exit=1"}, longArgs: []string{"standin:duration=10m"}}
}

func realApps(t *testing.T, home string) apps {
	jars, _ := filepath.Glob(filepath.Join(home, "examples/jars/spark-examples_*.jar"))
	if len(jars) == 0 {
		t.Skip("the Spark distribution has no examples jar")
	}
	return apps{jar: "file://" + jars[0], class: "org.apache.spark.examples.SparkPi", jarArgs: []string{"2"},
		py: filepath.Join(home, "examples/src/main/python/pi.py"), piLine: "Pi is roughly 3.1",
		failArgs: []string{"not-a-number"}, longArgs: []string{"100000"}}
}

func TestStandInFlows(t *testing.T) {
	home := sparktest.Home(t, "3.5.3")
	runFlows(t, home, standInApps(t))
}

func TestRealSparkFlows(t *testing.T) {
	home := sparktest.RealHome(t)
	runFlows(t, home, realApps(t, home))
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type node struct {
	env  spark.NodeEnv
	vars map[string]string
}

func newNode(t *testing.T, props map[string]string) node {
	dir := t.TempDir()
	javaHome, _ := spark.FindJava(os.Getenv)
	e := spark.NodeEnv{JavaHome: javaHome, ConfDir: filepath.Join(dir, "conf"), LogDir: filepath.Join(dir, "logs"),
		LocalIP: "127.0.0.1", WorkDir: filepath.Join(dir, "work")}
	os.MkdirAll(e.LogDir, 0o755)
	if err := spark.WriteConf(e.ConfDir, props, e); err != nil {
		t.Fatal(err)
	}
	return node{env: e, vars: e.Vars()}
}

// start runs a daemon in its own process group and stops it when the test ends.
func start(t *testing.T, argv []string, env []string, log string) *exec.Cmd {
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		f.Close()
	})
	return cmd
}

func run(ctx context.Context, argv []string, env []string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var o, e bytes.Buffer
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func runFlows(t *testing.T, home string, a apps) {
	d, err := spark.OpenHome(home)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const secret = "flows-test-secret"
	props := spark.Properties(spark.Settings{Authenticate: true})
	mport, mui := freePort(t), freePort(t)
	master := newNode(t, props)
	start(t, d.MasterCommand(spark.MasterArgs{Host: "127.0.0.1", Port: mport, WebUIPort: mui}),
		spark.Environ(os.Environ(), master.vars, secret), filepath.Join(master.env.LogDir, "master.out"))
	masterURL := fmt.Sprintf("spark://127.0.0.1:%d", mport)
	ui := &spark.UI{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", mui)}

	wnode := newNode(t, props)
	wui := freePort(t)
	wcmd := start(t, d.WorkerCommand(spark.WorkerArgs{MasterURL: masterURL, Host: "127.0.0.1", WebUIPort: wui, Cores: 2, MemoryMiB: 2048, WorkDir: wnode.env.WorkDir}),
		spark.Environ(os.Environ(), wnode.vars, secret), filepath.Join(wnode.env.LogDir, "worker.out"))

	testutil.Eventually(t, time.Minute, "worker registered", func() error {
		s, err := ui.MasterState(ctx)
		if err != nil {
			return err
		}
		if s.AliveWorkers != 1 {
			return fmt.Errorf("alive workers %d\nmaster log:\n%s\nworker log:\n%s", s.AliveWorkers,
				testutil.Tail(filepath.Join(master.env.LogDir, "master.out"), 5), testutil.Tail(filepath.Join(wnode.env.LogDir, "worker.out"), 5))
		}
		return nil
	})
	ws, err := (&spark.UI{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", wui)}).WorkerState(ctx)
	if err != nil || ws.Cores != 2 || !strings.HasPrefix(ws.ID, "worker-") {
		t.Fatalf("worker state: %+v %v", ws, err)
	}

	submitEnv := spark.Environ(os.Environ(), master.vars, secret)
	waitDriver := func(id string) spark.DriverInfo {
		var found spark.DriverInfo
		testutil.Eventually(t, 2*time.Minute, "driver "+id+" ends", func() error {
			s, err := ui.MasterState(ctx)
			if err != nil {
				return err
			}
			for _, dr := range s.CompletedDrivers {
				if dr.ID == id {
					found = dr
					return nil
				}
			}
			return errors.New("still running")
		})
		return found
	}
	submitCluster := func(args []string) string {
		argv, err := d.SubmitCommand(spark.Submission{MasterURL: masterURL, Resource: a.jar, MainClass: a.class, Name: "pi", Args: args})
		if err != nil {
			t.Fatal(err)
		}
		_, stderr, err := run(ctx, argv, submitEnv)
		if err != nil {
			t.Fatalf("spark-submit: %v\n%s", err, stderr)
		}
		id, ok := spark.ParseDriverID(stderr)
		if !ok {
			t.Fatalf("no driver id in spark-submit's output:\n%s", stderr)
		}
		return id
	}

	t.Run("cluster mode JVM app with authentication", func(t *testing.T) {
		id := submitCluster(a.jarArgs)
		dr := waitDriver(id)
		out, _ := os.ReadFile(filepath.Join(wnode.env.WorkDir, id, "stdout"))
		errOut, _ := os.ReadFile(filepath.Join(wnode.env.WorkDir, id, "stderr"))
		if dr.State != spark.DriverFinished || !strings.Contains(string(out), a.piLine) {
			t.Fatalf("driver %s: state %s\nstdout:\n%s\nstderr:\n%s", id, dr.State, out, errOut)
		}
	})
	t.Run("failing driver", func(t *testing.T) {
		if dr := waitDriver(submitCluster(a.failArgs)); dr.State != spark.DriverFailed {
			t.Errorf("state %s, want FAILED", dr.State)
		}
	})
	t.Run("kill", func(t *testing.T) {
		id := submitCluster(a.longArgs)
		testutil.Eventually(t, time.Minute, "driver running", func() error {
			s, err := ui.MasterState(ctx)
			if err != nil {
				return err
			}
			for _, dr := range s.ActiveDrivers {
				if dr.ID == id && dr.State == spark.DriverRunning {
					return nil
				}
			}
			return errors.New("not running")
		})
		if _, stderr, err := run(ctx, d.KillCommand(masterURL, id), submitEnv); err != nil {
			t.Fatalf("kill: %v\n%s", err, stderr)
		}
		if dr := waitDriver(id); dr.State != spark.DriverKilled {
			t.Errorf("state %s, want KILLED", dr.State)
		}
	})
	t.Run("client mode Python app", func(t *testing.T) {
		argv, _ := d.SubmitCommand(spark.Submission{MasterURL: masterURL, Resource: a.py, Name: "pypi"})
		stdout, stderr, err := run(ctx, argv, submitEnv)
		if err != nil || !strings.Contains(stdout, a.piLine) {
			t.Fatalf("python: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
		}
		s, _ := ui.MasterState(ctx)
		found := false
		for _, app := range s.CompletedApps {
			found = found || app.Name == "pypi" || app.Name == "PythonPi"
		}
		if !found {
			t.Errorf("the Python application is not among the completed apps: %+v", s.CompletedApps)
		}
	})
	t.Run("wrong secret is refused", func(t *testing.T) {
		bad := newNode(t, props)
		badUI := freePort(t)
		start(t, d.WorkerCommand(spark.WorkerArgs{MasterURL: masterURL, Host: "127.0.0.1", WebUIPort: badUI, Cores: 1, MemoryMiB: 1024, WorkDir: bad.env.WorkDir}),
			spark.Environ(os.Environ(), bad.vars, "wrong"), filepath.Join(bad.env.LogDir, "worker.out"))
		time.Sleep(3 * time.Second)
		s, err := ui.MasterState(ctx)
		if err != nil || len(s.Workers) != 1 {
			t.Errorf("a worker with the wrong secret registered: %+v %v", s, err)
		}
	})
	t.Run("decommission by signal", func(t *testing.T) {
		if err := wcmd.Process.Signal(syscall.SIGPWR); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, time.Minute, "worker decommissioned", func() error {
			s, err := ui.MasterState(ctx)
			if err != nil {
				return err
			}
			if len(s.Workers) == 0 || s.Workers[0].State != spark.WorkerDecommissioned || s.AliveWorkers != 0 {
				return fmt.Errorf("workers %+v", s.Workers)
			}
			return nil
		})
	})
}
