package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparkplane/sparkplane/internal/testutil"
)

// Every submit and run in the README and docs/ puts sparkplane's flags before the application,
// as the binary requires (appArgs): a doc that shows otherwise teaches a command that fails.
func TestDocsPutFlagsBeforeTheApplication(t *testing.T) {
	root := testutil.RepoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	more, _ := filepath.Glob(filepath.Join(root, "docs", "*", "*.md"))
	files = append(append(files, more...), filepath.Join(root, "README.md"))
	cmdRe := regexp.MustCompile("sparkplane (submit|run) ([^`|\\n]*)")
	seen := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range cmdRe.FindAllStringSubmatch(line, -1) {
				rootCmd := NewRoot(&Factory{IO: &IOStreams{}, Getenv: func(string) string { return "" }})
				cmd, _, err := rootCmd.Find([]string{m[1]})
				if err != nil {
					t.Fatal(err)
				}
				words := strings.Fields(strings.Split(m[2], "#")[0])
				if err := cmd.ParseFlags(words); err != nil {
					continue // prose, not a command line
				}
				args := cmd.Flags().Args()
				if m[1] == "submit" && len(args) > 0 && cmd.Flags().Lookup("name").Changed == false && !strings.HasPrefix(words[0], "-") {
					args = args[1:] // submit NAME APP …
				}
				if len(args) == 0 {
					continue
				}
				seen++
				if _, err := appArgs(cmd, args[0], args[1:]); err != nil {
					t.Errorf("%s:%d: %s\n%v", filepath.Base(file), i+1, m[0], err)
				}
			}
		}
	}
	if seen < 5 {
		t.Errorf("only %d submit and run command lines found in the docs: the check proves little", seen)
	}
}

// The providers help offers are the ones the registry has.
func TestBuiltInProvidersAreRegistered(t *testing.T) {
	f := &Factory{IO: &IOStreams{}, Getenv: func(k string) string {
		if k == "SPARKPLANE_HOME" {
			return t.TempDir()
		}
		return ""
	}}
	r, err := f.Providers()
	if err != nil {
		t.Fatal(err)
	}
	got := r.Names()
	want := slices.Sorted(slices.Values(builtInProviders))
	if !slices.Equal(got, want) {
		t.Errorf("registered %v, help offers %v", got, want)
	}
}

// Every verb's help has examples, and each example is a command line the binary accepts: a verb
// that exists, flags it has, as many arguments as it takes.
func TestEveryVerbHasExamplesThatParse(t *testing.T) {
	newRoot := func() *cobra.Command {
		return NewRoot(&Factory{IO: &IOStreams{}, Getenv: func(string) string { return "" }})
	}
	var walk func(c *cobra.Command)
	checked := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Hidden || !c.Runnable() || slices.Contains([]string{"help", "completion", "agent"}, c.Name()) || c.Parent() != nil && c.Parent().Name() == "completion" {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no examples", c.CommandPath())
			return
		}
		for _, ex := range strings.Split(strings.TrimSpace(c.Example), "\n") {
			ex, _, _ = strings.Cut(ex, " | ") // piped into another tool
			ex, _, _ = strings.Cut(ex, " #")  // a comment
			words := strings.Fields(strings.TrimSpace(ex))
			if len(words) < 2 || words[0] != "sparkplane" {
				t.Errorf("%s: example %q does not start with sparkplane", c.CommandPath(), ex)
				continue
			}
			cmd, rest, err := newRoot().Find(words[1:])
			if err != nil || cmd.CommandPath() != c.CommandPath() {
				t.Errorf("%s: example %q runs %v (%v)", c.CommandPath(), ex, cmd.CommandPath(), err)
				continue
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%s: example %q: %v", c.CommandPath(), ex, err)
				continue
			}
			if cmd.Args != nil {
				if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
					t.Errorf("%s: example %q: %v", c.CommandPath(), ex, err)
				}
			}
			checked++
		}
	}
	walk(newRoot())
	if checked < 20 {
		t.Errorf("only %d examples checked", checked)
	}
}

// The first Ctrl-C stops simulate at once, in the middle of a long replay: it has nothing to
// clean up, so it need not finish its computation first.
func TestSimulateStopsAtTheFirstInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("replays a large trace")
	}
	bin, env := cliEnv(t)
	var trace strings.Builder
	trace.WriteString("submit,tasks,secs\n")
	for i := range 200_000 {
		fmt.Fprintf(&trace, "%d,%d,%d\n", i/3, 1+i%50, 5+i%300)
	}
	path := filepath.Join(t.TempDir(), "busy.csv")
	os.WriteFile(path, []byte(trace.String()), 0o644)
	cmd := exec.Command(bin, "simulate", "--trace", path, "--days", "30")
	cmd.Env = append(os.Environ(), env...)
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, "simulate starts replaying", func() error {
		if !strings.Contains(stderr.String(), "Simulating") {
			return fmt.Errorf("stderr: %q", stderr.String())
		}
		return nil
	})
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != ExitInterrupted {
			t.Errorf("simulate after Ctrl-C: %v, want exit %d\n%s", err, ExitInterrupted, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("simulate still ran 30 s after Ctrl-C\n%s", stderr.String())
	}
}

// A long replay says how far it has got: off a terminal a line per tenth of each policy's jobs
// (none for a replay shorter than the quiet time), on one the spinner's status each hundredth.
func TestReplayProgress(t *testing.T) {
	var lines []string
	report := replayProgress(func(s string) { lines = append(lines, s) }, false, 0)
	for _, p := range []string{"spark", "cpu"} {
		for done := 10; done <= 1000; done += 10 {
			report(p, done, 1000)
		}
	}
	if len(lines) != 18 || lines[0] != "spark: 100 of 1000 jobs finished" || lines[17] != "cpu: 900 of 1000 jobs finished" {
		t.Errorf("off a terminal: %q", lines)
	}
	lines = nil
	report = replayProgress(func(s string) { lines = append(lines, s) }, false, time.Hour)
	for done := 10; done <= 1000; done += 10 {
		report("spark", done, 1000)
	}
	if len(lines) != 0 {
		t.Errorf("a short replay printed %q", lines)
	}
	report = replayProgress(func(s string) { lines = append(lines, s) }, true, time.Hour)
	for done := 10; done <= 1000; done += 10 {
		report("spark", done, 1000)
	}
	if len(lines) != 100 || lines[99] != "spark: 1000 of 1000 jobs finished" {
		t.Errorf("on a terminal: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
}
