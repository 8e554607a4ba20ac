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
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// apps are the applications a flow submits: stand-in programs, or sparkplane's own examples.
type apps struct {
	jar            string // file:// URL of the JVM application
	ok, fail, long call   // finishes and prints okLine; fails; runs until killed
	okLine         string
	py, pyLine     string // a Python application that prints pyLine
	pyNames        []string
}

type call struct {
	class string
	args  []string
}

func standInApps(t *testing.T) apps {
	dir := t.TempDir()
	jar := filepath.Join(dir, "pi.jar")
	os.WriteFile(jar, []byte("standin: work=0.5 print=\"Pi is roughly 3.14\"\n"), 0o644)
	py := filepath.Join(dir, "pi.py")
	os.WriteFile(py, []byte("# standin: work=0.5 print=\"Pi is roughly 3.14\"\n"), 0o644)
	pi := "org.apache.spark.examples.SparkPi"
	return apps{jar: "file://" + jar, ok: call{class: pi}, fail: call{pi, []string{"standin:exit=1"}}, long: call{pi, []string{"standin:duration=10m"}},
		okLine: "Pi is roughly 3.14", py: py, pyLine: "Pi is roughly 3.14", pyNames: []string{"pypi"}}
}

// realApps are examples/jvm's Busy (and WordCount without arguments, which fails) and
// examples/pi.py.
func realApps(t *testing.T, line string) apps {
	busy, wc := "dev.sparkplane.examples.Busy", "dev.sparkplane.examples.WordCount"
	return apps{jar: "file://" + sparktest.JVMExample(t, line),
		ok: call{busy, []string{"2", "1"}}, fail: call{class: wc}, long: call{busy, []string{"1", "600"}},
		okLine: "Busy: 2 tasks of 1s done", py: filepath.Join(testutil.RepoRoot(t), "examples", "pi.py"), pyLine: "Pi is roughly 3.1",
		pyNames: []string{"pypi", "PythonPi"}}
}

// SPARK-25078: a driver of a spark:// master refuses to start without spark.authenticate.secret in
// its conf (SecurityManager.initializeAuth), although the handshake takes the secret from
// _SPARK_AUTH_SECRET first; the daemons do not check. sparkplane's placeholder in
// JDK_JAVA_OPTIONS (spark.Environ) satisfies the check, and a worker hands it on to the drivers it
// starts. Here no process has it: the master and worker run, the driver dies.
func TestRealSparkNeedsTheSPARK25078Placeholder(t *testing.T) {
	for _, line := range sparktest.Lines() {
		t.Run("Spark"+line, func(t *testing.T) {
			needsPlaceholder(t, sparktest.RealHome(t, line), realApps(t, line))
		})
	}
}

func TestStandInNeedsTheSPARK25078Placeholder(t *testing.T) {
	needsPlaceholder(t, sparktest.Home(t, "3.5.3"), standInApps(t))
}

func needsPlaceholder(t *testing.T, home string, a apps) {
	d, err := spark.OpenHome(home)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const secret = "placeholder-test-secret"
	bare := func(vars map[string]string) []string {
		var env []string
		for _, kv := range spark.Environ(os.Environ(), vars, secret) {
			if !strings.HasPrefix(kv, "JDK_JAVA_OPTIONS=") {
				env = append(env, kv)
			}
		}
		return env
	}
	props := spark.Properties(spark.Settings{Authenticate: true})
	masterURL, ui, master, w := standalone(t, ctx, d, props, bare)
	id, dr := submitDriver(t, ctx, d, ui, d.ClusterDriver(spark.Submission{MasterURL: masterURL, Resource: a.jar, MainClass: a.ok.class, Name: "pi", Args: a.ok.args}), bare(master.vars))
	errOut, _ := os.ReadFile(filepath.Join(w.env.WorkDir, id, "stderr"))
	if dr.State == spark.DriverFinished {
		t.Fatalf("driver %s finished without the placeholder: the SPARK-25078 workaround is no longer needed on this Spark", id)
	}
	if !strings.Contains(string(errOut), "A secret key must be specified via the spark.authenticate.secret config") {
		t.Errorf("driver %s is %s, but not for want of spark.authenticate.secret:\n%s", id, dr.State, errOut)
	}
}

func TestStandInFlows(t *testing.T) {
	home := sparktest.Home(t, "3.5.3")
	runFlows(t, home, standInApps(t))
}

func TestRealSparkFlows(t *testing.T) {
	for _, line := range sparktest.Lines() {
		t.Run("Spark"+line, func(t *testing.T) {
			runFlows(t, sparktest.RealHome(t, line), realApps(t, line))
		})
	}
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
	return newNodeAt(t, props, "127.0.0.1")
}

// newNodeAt is a node whose Spark processes bind to ip.
func newNodeAt(t *testing.T, props map[string]string, ip string) node {
	dir := t.TempDir()
	javaHome, _ := spark.FindJava(os.Getenv)
	e := spark.NodeEnv{JavaHome: javaHome, ConfDir: filepath.Join(dir, "conf"), LogDir: filepath.Join(dir, "logs"),
		LocalIP: ip, WorkDir: filepath.Join(dir, "work")}
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
	submitCluster := func(c call) string {
		argv, err := d.SubmitCommand(d.ClusterDriver(spark.Submission{MasterURL: masterURL, Resource: a.jar, MainClass: c.class, Name: "pi", Args: c.args}))
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
		id := submitCluster(a.ok)
		dr := waitDriver(t, ctx, ui, id)
		out, _ := os.ReadFile(filepath.Join(wnode.env.WorkDir, id, "stdout"))
		errOut, _ := os.ReadFile(filepath.Join(wnode.env.WorkDir, id, "stderr"))
		if dr.State != spark.DriverFinished || !strings.Contains(string(out), a.okLine) {
			t.Fatalf("driver %s: state %s\nstdout:\n%s\nstderr:\n%s", id, dr.State, out, errOut)
		}
	})
	t.Run("failing driver", func(t *testing.T) {
		if dr := waitDriver(t, ctx, ui, submitCluster(a.fail)); dr.State != spark.DriverFailed {
			t.Errorf("state %s, want FAILED", dr.State)
		}
	})
	t.Run("kill", func(t *testing.T) {
		id := submitCluster(a.long)
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
		if _, stderr, err := run(ctx, d.KillCommand(masterURL, id), spark.KillEnviron(submitEnv, true)); err != nil {
			t.Fatalf("kill: %v\n%s", err, stderr)
		}
		if dr := waitDriver(t, ctx, ui, id); dr.State != spark.DriverKilled {
			t.Errorf("state %s, want KILLED", dr.State)
		}
	})
	t.Run("client mode Python app", func(t *testing.T) {
		argv, _ := d.SubmitCommand(spark.Submission{MasterURL: masterURL, Resource: a.py, Name: "pypi"})
		stdout, stderr, err := run(ctx, argv, submitEnv)
		if err != nil || !strings.Contains(stdout, a.pyLine) {
			t.Fatalf("python: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
		}
		s, _ := ui.MasterState(ctx)
		found := false
		for _, app := range s.CompletedApps {
			found = found || slices.Contains(a.pyNames, app.Name)
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

// waitDriver waits until the master lists a driver among the completed ones.
func waitDriver(t *testing.T, ctx context.Context, ui *spark.UI, id string) spark.DriverInfo {
	t.Helper()
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

// Before Spark 4.3.0 a cluster-mode driver inherits the environment of the spark-submit that
// sent it, laid over its worker's: with the submitter's SPARK_LOCAL_IP it binds to the submitting
// host's address. Here the submitter says 127.0.0.2 and the worker 127.0.0.1 (both on loopback,
// so that the driver can bind either); the driver must come up on the submitter's address exactly
// when Distribution.SubmitEnviron keeps that variable out of a submission between hosts.
func TestRealSparkClusterDriverEnvironment(t *testing.T) {
	for _, line := range sparktest.Lines() {
		t.Run("Spark"+line, func(t *testing.T) {
			home, a := sparktest.RealHome(t, line), realApps(t, line)
			d, err := spark.OpenHome(home)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			props := spark.Properties(spark.Settings{})
			masterURL, ui, _, w := standalone(t, ctx, d, props, func(vars map[string]string) []string { return spark.Environ(os.Environ(), vars, "") })
			submitter := newNodeAt(t, props, "127.0.0.2") // its spark-env.sh says so too, as on a node
			env := spark.Environ(os.Environ(), submitter.vars, "")
			sub := d.ClusterDriver(spark.Submission{MasterURL: masterURL, Resource: a.jar, MainClass: a.ok.class, Name: "env", Args: a.ok.args})
			kept := slices.Equal(d.SubmitEnviron(env, sub, false), env)
			id, dr := submitDriver(t, ctx, d, ui, sub, env)
			errOut, _ := os.ReadFile(filepath.Join(w.env.WorkDir, id, "stderr"))
			m := regexp.MustCompile(`DriverWrapper: Driver address: ([0-9.]+):`).FindStringSubmatch(string(errOut))
			if dr.State != spark.DriverFinished || m == nil {
				t.Fatalf("driver %s is %s; its address is not in its log:\n%s", id, dr.State, testutil.TailString(string(errOut), 20))
			}
			want := "127.0.0.2" // inherited, so SubmitEnviron must drop it between hosts
			if kept {
				want = "127.0.0.1"
			}
			if m[1] != want {
				t.Errorf("Spark %s: the driver bound %s, want %s (SubmitEnviron keeps the host's variables: %v)", d.Version, m[1], want, kept)
			}
		})
	}
}

// standalone starts a Spark master and one 2-core worker on loopback, each with the environment
// env makes of its node's variables, and waits until the worker has registered.
func standalone(t *testing.T, ctx context.Context, d *spark.Distribution, props map[string]string, env func(map[string]string) []string) (masterURL string, ui *spark.UI, master, worker node) {
	t.Helper()
	mport, mui := freePort(t), freePort(t)
	master = newNode(t, props)
	start(t, d.MasterCommand(spark.MasterArgs{Host: "127.0.0.1", Port: mport, WebUIPort: mui}), env(master.vars), filepath.Join(master.env.LogDir, "master.out"))
	masterURL = fmt.Sprintf("spark://127.0.0.1:%d", mport)
	ui = &spark.UI{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", mui)}
	worker = newNode(t, props)
	start(t, d.WorkerCommand(spark.WorkerArgs{MasterURL: masterURL, Host: "127.0.0.1", WebUIPort: freePort(t), Cores: 2, MemoryMiB: 2048, WorkDir: worker.env.WorkDir}),
		env(worker.vars), filepath.Join(worker.env.LogDir, "worker.out"))
	testutil.Eventually(t, time.Minute, "the worker registers", func() error {
		s, err := ui.MasterState(ctx)
		if err != nil {
			return err
		}
		if s.AliveWorkers != 1 {
			return fmt.Errorf("alive workers %d\n%s", s.AliveWorkers, testutil.Tail(filepath.Join(worker.env.LogDir, "worker.out"), 5))
		}
		return nil
	})
	return masterURL, ui, master, worker
}

// submitDriver hands sub to the master with spark-submit in env and waits for the driver's end.
func submitDriver(t *testing.T, ctx context.Context, d *spark.Distribution, ui *spark.UI, sub spark.Submission, env []string) (string, spark.DriverInfo) {
	t.Helper()
	argv, _ := d.SubmitCommand(sub)
	_, stderr, err := run(ctx, argv, env)
	if err != nil {
		t.Fatalf("spark-submit: %v\n%s", err, stderr)
	}
	id, ok := spark.ParseDriverID(stderr)
	if !ok {
		t.Fatalf("no driver id in spark-submit's output:\n%s", stderr)
	}
	return id, waitDriver(t, ctx, ui, id)
}
