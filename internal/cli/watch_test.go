package cli

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/state"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

func TestRenderWatch(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.Local)
	st := &cluster.Status{Name: "c", Provider: "local", State: cluster.StateRunning, Agent: &agentapi.ClusterStatus{
		Master: agentapi.MasterInfo{URL: "spark://127.0.0.1:7077", UI: "http://127.0.0.1:8080", State: "ALIVE", Version: "3.5.3"},
		Cores:  8, CoresUsed: 6, MemoryMiB: 8192, MemoryUsed: 2048,
		Workers: []agentapi.WorkerStatus{
			{NodeID: "worker-1", State: "ALIVE", Cores: 4, CoresUsed: 4, MemoryMiB: 4096, MemoryUsed: 2048, Drivers: 1, Executors: 1},
			{NodeID: "worker-2", State: "ALIVE", Cores: 4, CoresUsed: 2, MemoryMiB: 4096},
			{NodeID: "worker-3", State: "STARTING", Registering: true},
		},
		Jobs: []state.Job{{ID: "j-1", Name: "a-very-long-job-name-that-does-not-fit-its-column", State: state.JobRunning, DeployMode: "cluster",
			StartedAt: now.Add(-90 * time.Second)}},
		Autoscale: &agentapi.AutoscaleStatus{Policy: "spark", LaunchLatency: 2 * time.Second, Requested: 1, Recent: []agentapi.Decision{
			{At: now.Add(-time.Minute), Summary: "scale out +1: 1 app(s) waiting for 4 more cores", Nodes: []string{"worker-3"}},
			{At: now.Add(-10 * time.Second), Summary: "scale in -1: 1 worker(s) idle for over 1m0s " + strings.Repeat("x", 200), Nodes: []string{"worker-9"}},
		}},
	}}
	for _, style := range []watchStyle{
		{width: 110, unicode: true, paint: func(code, s string) string { return "\x1b[" + code + "m" + s + "\x1b[0m" }},
		{width: 80, unicode: false, paint: func(_, s string) string { return s }},
	} {
		frame := renderWatch(st, now, 2*time.Second, style)
		plain := stripEscapes(frame)
		for _, l := range strings.Split(plain, "\n") {
			if n := utf8.RuneCountInString(l); n > style.width {
				t.Errorf("width %d: a line of %d runes would wrap: %q", style.width, n, l)
			}
		}
		full, empty := "#", "."
		if style.unicode {
			full, empty = "█", "░"
		}
		wb := workerBar(style.width)
		bar := func(k int) string {
			b := strings.Repeat(full, k) + strings.Repeat(empty, wb-k)
			if !style.unicode {
				b = "[" + b + "]"
			}
			return b
		}
		for _, want := range []string{
			"c · local · running", "12:00:00 · every 2s",
			"worker-1", "worker-3     STARTING",
			bar(wb) + " 4/4",       // a full worker
			bar((wb+1)/2) + " 2/4", // half, rounded up
			bar(0) + " 0g/4g",      // unused memory
			"j-1", "RUNNING", "1m30s",
			"spark policy · launches take 2.0s · 1 starting",
		} {
			if !strings.Contains(plain, want) {
				t.Errorf("width %d: frame lacks %q:\n%s", style.width, want, plain)
			}
		}
		// The latest decision first.
		if i, j := strings.Index(plain, "scale in -1"), strings.Index(plain, "scale out +1"); i < 0 || j < 0 || i > j {
			t.Errorf("decisions not latest first:\n%s", plain)
		}
		if style.unicode != strings.Contains(frame, "\x1b[") {
			t.Errorf("colour escapes on a terminal only")
		}
	}
	// However narrow the terminal, no line wraps.
	for _, l := range strings.Split(renderWatch(st, now, time.Second, watchStyle{width: 50, paint: func(_, s string) string { return s }}), "\n") {
		if n := utf8.RuneCountInString(l); n > 50 {
			t.Errorf("width 50: a line of %d runes: %q", n, l)
		}
	}
	// A master that does not answer is said so.
	frame := renderWatch(&cluster.Status{Name: "c", Provider: "local", State: cluster.StateNoMaster, AgentError: "connection refused"},
		now, time.Second, watchStyle{width: 80, paint: func(_, s string) string { return s }})
	if !strings.Contains(frame, "not answering: connection refused") {
		t.Errorf("frame without a master:\n%s", frame)
	}
}

// cliEnv is a state directory and a stand-in Spark for running the binary.
func cliEnv(t *testing.T) (bin string, env []string) {
	t.Helper()
	bin = testutil.Build(t, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	state := filepath.Join(t.TempDir(), "state")
	env = []string{"SPARKPLANE_HOME=" + state, "SPARK_HOME=" + sparktest.Home(t, "3.5.3")}
	t.Cleanup(func() {
		entries, _ := os.ReadDir(filepath.Join(state, "clusters"))
		for _, e := range entries {
			cmd := exec.Command(bin, "destroy", e.Name(), "--yes")
			cmd.Env = append(os.Environ(), env...)
			cmd.Run()
		}
	})
	return bin, env
}

func runBin(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sparkplane %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestWatchInTmux runs status --watch in a real terminal (a tmux pane), reads the screen, changes
// the cluster, reads it again, and stops the view with Ctrl-C.
func TestWatchInTmux(t *testing.T) {
	tmux := testutil.Tool(t, "tmux", "apt-get install tmux")
	bin, env := cliEnv(t)
	runBin(t, bin, env, "create", "-n", "tw", "--workers", "2", "--set", "autoscale.policy=spark", "--set", "workers.max=4",
		"--set", "autoscale.keepAlive=1h")
	app := filepath.Join(t.TempDir(), "long.py")
	os.WriteFile(app, []byte("# standin: duration=10m\n"), 0o644)
	runBin(t, bin, env, "submit", "-n", "tw", app)

	socket := fmt.Sprintf("sparkplane-test-%d", os.Getpid())
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-L", socket}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { tm("kill-server") })
	args := []string{"new-session", "-d", "-s", "w", "-x", "110", "-y", "40"}
	for _, kv := range env {
		args = append(args, "-e", kv)
	}
	args = append(args, "-e", "NO_COLOR=", fmt.Sprintf("%s status tw --watch --interval 300ms; echo EXIT=$?; sleep 600", bin))
	if out, err := tm(args...); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	screen := func() string {
		out, _ := tm("capture-pane", "-p", "-t", "w")
		return out
	}
	waitScreen := func(what string, wants ...string) string {
		var s string
		testutil.Eventually(t, time.Minute, what, func() error {
			s = screen()
			for _, w := range wants {
				if !strings.Contains(s, w) {
					return fmt.Errorf("no %q on the screen:\n%s", w, s)
				}
			}
			return nil
		})
		return s
	}
	s := waitScreen("the live view", "tw · local · running", "worker-1", "worker-2", "RUNNING", "█", "AUTOSCALER DECISIONS")
	if first := strings.SplitN(s, "\n", 2)[0]; !strings.HasPrefix(first, "tw · local · running") {
		t.Errorf("the view is not drawn from the top of the screen: %q", first)
	}
	if n := strings.Count(s, "tw · local · running"); n != 1 {
		t.Errorf("the view is drawn %d times on one screen, not redrawn in place:\n%s", n, s)
	}
	colored, _ := tm("capture-pane", "-p", "-e", "-t", "w")
	if !strings.Contains(colored, "\x1b[") {
		t.Error("no colour on a terminal")
	}

	runBin(t, bin, env, "add", "tw", "1")
	waitScreen("the added worker", "worker-3")

	if _, err := tm("send-keys", "-t", "w", "C-c"); err != nil {
		t.Fatal(err)
	}
	s = waitScreen("the view ends on Ctrl-C", "EXIT=0")
	if strings.Contains(s, "interrupted") {
		t.Errorf("Ctrl-C on a live view is not an interruption to report:\n%s", s)
	}
}

// TestWatchPiped: without a terminal, --watch prints plain snapshots, one per interval.
func TestWatchPiped(t *testing.T) {
	bin, env := cliEnv(t)
	runBin(t, bin, env, "create", "-n", "tp", "--workers", "1")
	cmd := exec.Command(bin, "status", "tp", "--watch", "--interval", "200ms")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	frames := 0
	sc := bufio.NewScanner(out)
	for frames < 3 && sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "tp · local · running") {
			frames++
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	rest, _ := bufio.NewReader(out).ReadString(0)
	err = cmd.Wait()
	all := strings.Join(lines, "\n") + rest
	if frames < 3 || err != nil {
		t.Fatalf("%d frames, exit %v:\n%s", frames, err, all)
	}
	if strings.Contains(all, "\x1b") {
		t.Errorf("escape sequences in piped output:\n%q", all)
	}
	if !strings.Contains(all, "[################] 0/2") && !strings.Contains(all, "[................] 0/2") {
		t.Errorf("no ASCII bars:\n%s", all)
	}
}

// On a terminal the frame fits its height (it never scrolls), counting what it leaves out, and
// the recent events are the newest, newest first.
func TestRenderWatchFitsTheTerminal(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.Local)
	a := &agentapi.ClusterStatus{Master: agentapi.MasterInfo{URL: "spark://127.0.0.1:7077", State: "ALIVE"}}
	for i := range 30 {
		a.Workers = append(a.Workers, agentapi.WorkerStatus{NodeID: fmt.Sprintf("worker-%d", i+1), State: "ALIVE", Cores: 2})
		a.Jobs = append(a.Jobs, state.Job{ID: fmt.Sprintf("j-%d", i), Name: "job", State: state.JobFinished})
		a.Events = append(a.Events, state.Event{Time: now.Add(time.Duration(i) * time.Second), Kind: "job", Message: fmt.Sprintf("event %d", i)})
	}
	st := &cluster.Status{Name: "c", Provider: "local", State: cluster.StateRunning, Agent: a}
	plain := func(_, s string) string { return s }
	tall := renderWatch(st, now, time.Second, watchStyle{width: 100, paint: plain})
	if i, j := strings.Index(tall, "event 29"), strings.Index(tall, "event 25"); i < 0 || j < 0 || i > j || strings.Contains(tall, "event 24") {
		t.Errorf("the recent events are not the five newest, newest first:\n%s", tall)
	}
	for _, h := range []int{40, 24, 16, 12, 5} {
		frame := renderWatch(st, now, time.Second, watchStyle{width: 100, height: h, paint: plain})
		if n := strings.Count(frame, "\n"); n > h-1 {
			t.Errorf("height %d: %d lines would scroll:\n%s", h, n, frame)
		}
		if h >= 16 {
			for _, want := range []string{"worker-1", "more workers", "more (sparkplane jobs c)", "event 29"} {
				if !strings.Contains(frame, want) {
					t.Errorf("height %d: the frame lacks %q:\n%s", h, want, frame)
				}
			}
		}
	}
	if n := strings.Count(renderWatch(st, now, time.Second, watchStyle{width: 100, height: 200, paint: plain}), "worker-"); n != 30 {
		t.Errorf("a tall terminal shows %d of 30 workers", n)
	}
}
