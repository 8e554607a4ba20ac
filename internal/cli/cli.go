// Package cli is sparkplane's command line: it parses flags, calls the cluster package and prints.
// Each command has an options struct and a run function that tests call directly.
package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
)

// Exit codes, documented in docs/cli.md.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2 // bad flags or arguments, or a spec that needs mending
	ExitJobFailed   = 3 // the job ran and did not finish successfully
	ExitNotFound    = 4 // no such cluster or job
	ExitInterrupted = 130
)

// ExitError carries an exit code with an error already worth printing.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// usageError marks an error in what the user typed.
type usageError struct{ error }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// errSilent means the command already said everything; only the exit code remains.
var errSilent = errors.New("")

// Main runs sparkplane with os.Args and returns the exit code.
func Main() int {
	f := &Factory{IO: System(), Getenv: os.Getenv}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sig := <-sigs:
				if ch := f.term.Load(); ch != nil && sig == syscall.SIGTERM {
					f.term.Store(nil)
					close(*ch)
					continue
				}
				// After the first Ctrl-C, commands clean up (a create rolls back, run destroys its
				// cluster); with the handler gone, a second one ends the program at once.
				signal.Stop(sigs)
				if f.instantInterrupt.Load() {
					fmt.Fprintln(f.IO.ErrOut, "\ninterrupted")
					os.Exit(ExitInterrupted)
				}
				if len(os.Args) > 1 && os.Args[1] != "agent" && !f.noInterruptNote.Load() {
					f.IO.Warn("interrupted: cleaning up (Ctrl-C again to abandon the clean-up)")
				}
				cancel()
				return
			case <-done:
				return
			}
		}
	}()
	return Run(ctx, f, os.Args[1:])
}

// Run runs one command line against f and returns the exit code.
func Run(ctx context.Context, f *Factory, args []string) int {
	root := NewRoot(f)
	root.SetArgs(args)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(ctx, err)
	if err != errSilent && err.Error() != "" {
		var list spec.ErrorList
		if errors.As(err, &list) && len(list) > 1 {
			fmt.Fprintf(f.IO.ErrOut, "Error: %d problems in the cluster spec:\n", len(list))
			for _, e := range list {
				fmt.Fprintf(f.IO.ErrOut, "  %s\n", e)
			}
		} else {
			fmt.Fprintf(f.IO.ErrOut, "Error: %s\n", err)
		}
		var ue *usageError
		if errors.As(err, &ue) || isCobraUsage(err) {
			fmt.Fprintf(f.IO.ErrOut, "Run '%s --help' for usage.\n", commandPath(root, args))
		}
	}
	return code
}

func commandPath(root *cobra.Command, args []string) string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return root.Name()
	}
	return cmd.CommandPath()
}

func exitCode(ctx context.Context, err error) int {
	var ee *ExitError
	var ue *usageError
	var list spec.ErrorList
	var fe *spec.FieldError
	switch {
	case errors.As(err, &ee):
		return ee.Code
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &ue), errors.As(err, &list), errors.As(err, &fe), isCobraUsage(err):
		return ExitUsage
	case errors.Is(err, provider.ErrNotFound), errors.Is(err, state.ErrNotFound):
		return ExitNotFound
	}
	// An agent's 404: the cluster is there, the job it was asked about is not.
	if ae := (*agentapi.APIError)(nil); errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return ExitNotFound
	}
	return ExitFailure
}

// isCobraUsage recognises cobra's own complaints about the command line.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "required flag", "invalid argument"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// NewRoot builds the command tree.
func NewRoot(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "sparkplane",
		Short: "Run Apache Spark clusters from a short YAML spec",
		Long: `sparkplane turns a short YAML spec into a running Apache Spark cluster on this machine,
on AWS, on Kubernetes or on Nomad; submits and tracks jobs on it; and tears it down.

  sparkplane create                      # a local cluster: one master, two workers
  sparkplane submit -n spark app.py      # run a job on it
  sparkplane run -f cluster.yaml app.py  # create, run one job, destroy
  sparkplane destroy spark --yes

The spec is documented in docs/spec.md; every verb has --help.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddGroup(&cobra.Group{ID: "cluster", Title: "Clusters:"}, &cobra.Group{ID: "jobs", Title: "Jobs:"},
		&cobra.Group{ID: "watch", Title: "Monitoring:"}, &cobra.Group{ID: "other", Title: "Other:"})
	for _, c := range []*cobra.Command{
		newCreateCmd(f), newPlanCmd(f), newListCmd(f), newStatusCmd(f), newAddCmd(f), newRemoveCmd(f), newDestroyCmd(f),
	} {
		c.GroupID = "cluster"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newSubmitCmd(f), newJobsCmd(f), newLogsCmd(f), newKillJobCmd(f), newRunCmd(f), newEventsCmd(f)} {
		c.GroupID = "jobs"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newMonitorCmd(f), newHistoryCmd(f)} {
		c.GroupID = "watch"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newExportCmd(f), newSimulateCmd(f), newAgentCmd(f), newVersionCmd(f), newCompletionCmd()} {
		c.GroupID = "other"
		root.AddCommand(c)
	}
	root.SetHelpCommandGroupID("other")
	root.SetCompletionCommandGroupID("other")
	return root
}
