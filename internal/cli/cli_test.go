package cli_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
