package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/state"
)

// jobFlags describe the application, as spark-submit's flags do.
type jobFlags struct {
	class, appName string
	conf           []string
	pyFiles, jars  []string
	files          []string
	gitURL, gitRef string
	stderr         bool
}

func (j *jobFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&j.class, "class", "", "main class of a JVM application")
	fl.StringVar(&j.appName, "app-name", "", "the application's name in Spark (default: from the file or class)")
	fl.StringArrayVar(&j.conf, "conf", nil, "a Spark property for this job, key=value (repeatable)")
	fl.StringSliceVar(&j.pyFiles, "py-files", nil, "Python files or zips for the job (comma-separated; local files are uploaded)")
	fl.StringSliceVar(&j.jars, "jars", nil, "extra jars (comma-separated; local files are uploaded)")
	fl.StringSliceVar(&j.files, "files", nil, "files to place in each executor's directory (comma-separated)")
	fl.StringVar(&j.gitURL, "git", "", "clone this repository on the master and run APP from it (APP is then a path in the repository)")
	fl.StringVar(&j.gitRef, "ref", "", "branch or tag to clone with --git (default: the repository's default branch)")
	fl.BoolVar(&j.stderr, "driver-stderr", false, "also show the driver's stderr (Spark's own log) while following")
	// Everything after the application belongs to it.
	fl.SetInterspersed(false)
}

// appArgs checks the arguments after APP. They are the application's; but one that is a flag
// of this command was most likely meant for sparkplane (submit -n c app.py -o json), and going
// silently to the application it would be lost. Such a flag is refused with the fix, unless
// "APP -- ARGS" says plainly that everything after APP is the application's.
func appArgs(cmd *cobra.Command, app string, args []string) ([]string, error) {
	if len(args) > 0 && args[0] == "--" {
		return args[1:], nil
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var fl *pflag.Flag
		if strings.HasPrefix(a, "--") {
			fl = cmd.Flags().Lookup(name)
		} else if len(name) == 1 {
			fl = cmd.Flags().ShorthandLookup(name)
		}
		if fl == nil || fl.Name == "help" {
			continue
		}
		return nil, usagef("%s comes after the application %s, so it would go to the application, not to sparkplane.\n"+
			"Put sparkplane's flags before %s: sparkplane %s --%s ... %s\n"+
			"or, if %s takes %s itself, say so with --: %s -- %s", a, app, app, cmd.Name(), fl.Name, app, app, a, app, strings.Join(args, " "))
	}
	return args, nil
}

func (j *jobFlags) spec(app string, args []string) (cluster.JobSpec, error) {
	js := cluster.JobSpec{Class: j.class, Name: j.appName, Args: args, PyFiles: j.pyFiles, Jars: j.jars, Files: j.files}
	if len(j.conf) > 0 {
		js.Conf = map[string]string{}
		for _, kv := range j.conf {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || !strings.HasPrefix(k, "spark.") {
				return js, usagef("--conf %s: expected spark.property=value", kv)
			}
			js.Conf[k] = v
		}
	}
	if j.gitURL != "" {
		js.Git = &agentapi.Git{URL: j.gitURL, Ref: j.gitRef, Path: app}
	} else {
		js.Application = app
	}
	if j.gitRef != "" && j.gitURL == "" {
		return js, usagef("--ref goes with --git")
	}
	return js, nil
}

func newSubmitCmd(f *Factory) *cobra.Command {
	var rf refFlags
	var jf jobFlags
	var wait bool
	var output string
	cmd := &cobra.Command{
		Use:   "submit -n NAME [flags] APP [ARGS...]",
		Short: "Submit a job to a cluster",
		Long: `Submit an application to a cluster. APP is a local file (uploaded to the master), a URL Spark
can read (https://, s3a://, local:/path/on/every/node), or, with --git, a path in a repository
that is cloned on the master. Everything after APP is passed to the application; sparkplane's
own flags go before APP (one of them after APP is refused, unless APP -- ARGS says that the
application takes it).

JVM applications run in cluster deploy mode (the driver runs on a worker); Python applications
run in client mode on the master, since Spark's standalone cluster mode does not run Python.

Submit returns once Spark has the job; --wait follows it to its end, showing the driver's output,
and exits 3 if it does not finish successfully.`,
		Example: `  sparkplane submit -n laptop examples/pi.py 20
  sparkplane submit -n laptop --class com.example.Etl etl.jar --date 2026-11-21
  sparkplane submit -n laptop --wait --conf spark.executor.memory=2g job.py
  sparkplane submit -n laptop --git https://github.com/org/jobs --ref v1.2 jobs/daily.py`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, rest, err := rf.ref(args)
			if err != nil {
				return err
			}
			if len(rest) == 0 {
				return usagef("which application? give a file, a URL, or with --git a path in the repository")
			}
			appargs, err := appArgs(cmd, rest[0], rest[1:])
			if err != nil {
				return err
			}
			js, err := jf.spec(rest[0], appargs)
			if err != nil {
				return err
			}
			m, pr, err := f.manager("")
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			pr.Start(fmt.Sprintf("Submitting %s to %s", rest[0], ref.Name))
			job, err := m.Submit(ctx, ref, js)
			if err != nil {
				pr.Fail("Submit failed")
				return err
			}
			pr.Done(fmt.Sprintf("job %s submitted (%s, %s mode)", job.ID, job.Name, job.DeployMode))
			if wait {
				return followJob(ctx, f, m, ref, job.ID, jf.stderr, output)
			}
			job, err = waitAccepted(ctx, m, ref, job.ID)
			if err != nil {
				return err
			}
			if output != FormatTable {
				return f.IO.Print(output, job)
			}
			describeJob(f, job)
			fmt.Fprintf(f.IO.ErrOut, "  Follow it:  sparkplane logs -f %s %s\n", ref.Name, job.ID)
			return jobExit(job)
		},
	}
	rf.add(cmd)
	jf.add(cmd)
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "follow the job to its end, showing the driver's output")
	addOutputFlag(cmd, &output)
	return cmd
}

// waitAccepted waits until Spark has the job: a driver id in cluster mode, a running driver in
// client mode, or an end.
func waitAccepted(ctx context.Context, m *cluster.Manager, ref cluster.Ref, id string) (*state.Job, error) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		j, err := m.Job(ctx, ref, id)
		if err != nil {
			return nil, err
		}
		if j.DriverID != "" || j.State != state.JobSubmitted || time.Now().After(deadline) {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func describeJob(f *Factory, j *state.Job) {
	switch {
	case j.State == state.JobFinished:
		f.IO.Success("job %s finished in %s", j.ID, shortDuration(j.Duration(time.Now())))
	case state.JobDone(j.State):
		f.IO.Failure("job %s %s%s", j.ID, strings.ToLower(j.State), prefixed(": ", j.Message))
	case j.DriverID != "":
		f.IO.Info("driver %s is %s", j.DriverID, strings.ToLower(j.State))
	default:
		f.IO.Info("job %s is %s", j.ID, strings.ToLower(j.State))
	}
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// jobExit is nil for a job that is running or finished well, and an exit-3 error otherwise.
func jobExit(j *state.Job) error {
	if state.JobDone(j.State) && j.State != state.JobFinished {
		return &ExitError{Code: ExitJobFailed, Err: errSilent}
	}
	return nil
}

// followJob streams a job's output until it ends and turns its outcome into the exit code.
func followJob(ctx context.Context, f *Factory, m *cluster.Manager, ref cluster.Ref, id string, stderr bool, output string) error {
	opts := cluster.WaitOptions{Stdout: f.IO.Out, OnChange: func(j state.Job) {
		if !state.JobDone(j.State) {
			describeJob(f, &j)
		}
	}}
	if output != FormatTable {
		opts.Stdout = nil
	}
	if stderr {
		opts.Stderr = f.IO.ErrOut
	}
	job, err := m.Wait(ctx, ref, id, opts)
	if err != nil {
		return err
	}
	if output != FormatTable {
		if err := f.IO.Print(output, job); err != nil {
			return err
		}
	}
	describeJob(f, job)
	return jobExit(job)
}

func newJobsCmd(f *Factory) *cobra.Command {
	var rf refFlags
	var limit int
	var output string
	cmd := &cobra.Command{
		Use:   "jobs [NAME]",
		Short: "List jobs, also of clusters that are gone",
		Long:  `List a cluster's jobs, newest first, or every cluster's without NAME. The history is kept on this machine and outlives the clusters.`,
		Example: `  sparkplane jobs
  sparkplane jobs laptop -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := rf.name
			if name == "" && len(args) == 1 {
				name = args[0]
			}
			m, _, err := f.manager("")
			if err != nil {
				return err
			}
			list, err := m.Jobs(cmd.Context(), cluster.Ref{Name: name, Provider: rf.provider}, limit)
			if err != nil {
				return err
			}
			if output != FormatTable {
				return f.IO.Print(output, list)
			}
			if len(list) == 0 {
				f.IO.Info("no jobs yet")
				return nil
			}
			t := f.IO.NewTable("JOB", "CLUSTER", "NAME", "STATE", "MODE", "SUBMITTED", "DURATION", "DRIVER/EXIT", "MESSAGE")
			for _, j := range list {
				drv := j.DriverID
				if j.ExitCode != nil {
					drv = fmt.Sprintf("exit %d", *j.ExitCode)
				}
				t.Row(j.ID, j.Cluster, j.Name, j.State, j.DeployMode, j.SubmittedAt.Local().Format("2006-01-02 15:04:05"),
					shortDuration(j.Duration(time.Now())), orDash(drv), j.Message)
			}
			return t.Render()
		},
	}
	rf.add(cmd)
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most this many (0: all)")
	addOutputFlag(cmd, &output)
	return cmd
}

func newLogsCmd(f *Factory) *cobra.Command {
	var rf refFlags
	var follow, stderr bool
	cmd := &cobra.Command{
		Use:   "logs NAME JOB",
		Short: "Show a job's driver output",
		Long:  `Print a job's driver stdout (or --stderr, Spark's own log of the driver). -f follows it until the job ends.`,
		Example: `  sparkplane logs laptop j-3f2a9c
  sparkplane logs -f --stderr laptop j-3f2a9c`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, rest, err := rf.ref(args)
			if err != nil {
				return err
			}
			if len(rest) != 1 {
				return usagef("which job? sparkplane jobs %s lists them", ref.Name)
			}
			m, _, err := f.manager("")
			if err != nil {
				return err
			}
			stream := agentapi.Stdout
			if stderr {
				stream = agentapi.Stderr
			}
			return m.Logs(cmd.Context(), ref, rest[0], stream, follow, f.IO.Out)
		},
	}
	rf.add(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the job ends")
	cmd.Flags().BoolVar(&stderr, "stderr", false, "show the driver's stderr instead of its stdout")
	return cmd
}

func newKillJobCmd(f *Factory) *cobra.Command {
	var rf refFlags
	var output string
	cmd := &cobra.Command{
		Use:     "cancel NAME JOB",
		Short:   "Kill a running job",
		Long:    `Kill a job: a cluster-mode driver through the Spark master, a client-mode driver by signal. (To destroy a whole cluster, use destroy.)`,
		Example: `  sparkplane cancel laptop j-3f2a9c`,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, rest, err := rf.ref(args)
			if err != nil {
				return err
			}
			if len(rest) != 1 {
				return usagef("which job? sparkplane jobs %s lists them", ref.Name)
			}
			m, _, err := f.manager("")
			if err != nil {
				return err
			}
			j, err := m.Kill(cmd.Context(), ref, rest[0])
			if err != nil {
				return err
			}
			if output != FormatTable {
				return f.IO.Print(output, j)
			}
			if state.JobDone(j.State) {
				f.IO.Info("job %s had already ended (%s)", j.ID, strings.ToLower(j.State))
			} else {
				f.IO.Success("asked Spark to kill job %s", j.ID)
			}
			return nil
		},
	}
	rf.add(cmd)
	addOutputFlag(cmd, &output)
	return cmd
}

func newEventsCmd(f *Factory) *cobra.Command {
	var rf refFlags
	var limit int
	var output string
	cmd := &cobra.Command{
		Use:   "events NAME",
		Short: "Show what happened to a cluster",
		Long:  `Show a cluster's events, oldest first: creation, workers joining and lost, scaling, jobs, and the end of its lifetime. Kept after the cluster is gone.`,
		Example: `  sparkplane events laptop
  sparkplane events laptop -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, ref, _, err := f.forCluster(&rf, args)
			if err != nil {
				return err
			}
			evs, err := m.Events(cmd.Context(), ref, limit)
			if err != nil {
				return err
			}
			if output != FormatTable {
				return f.IO.Print(output, evs)
			}
			t := f.IO.NewTable("TIME", "KIND", "EVENT")
			for _, e := range evs {
				t.Row(e.Time.Local().Format("2006-01-02 15:04:05"), e.Kind, e.Message)
			}
			return t.Render()
		},
	}
	rf.add(cmd)
	cmd.Flags().IntVar(&limit, "limit", 50, "show the last this many (0: all)")
	addOutputFlag(cmd, &output)
	return cmd
}

func newRunCmd(f *Factory) *cobra.Command {
	var sf specFlags
	var jf jobFlags
	var keep bool
	var saveLogs, output string
	cmd := &cobra.Command{
		Use:   "run [-f SPEC] [flags] APP [ARGS...]",
		Short: "Create a cluster, run one job on it, destroy it",
		Long: `Run one job on a cluster that exists only for it: create the cluster, submit the job, show
its output as it runs, keep its logs if asked, and destroy the cluster. The cluster is destroyed
however the job ends, on errors and on Ctrl-C too, unless --keep. The exit status is the job's:
0 when it finished, 3 when it failed or was killed. As with submit, everything after APP is
the application's, so sparkplane's flags go before APP.

Without -f the cluster is a local one of two workers named run-XXXX.`,
		Example: `  sparkplane run examples/pi.py 20
  sparkplane run -f examples/throwaway.yaml --save-logs out/ examples/pi.py 20
  sparkplane run --workers 4 --class com.example.Etl etl.jar 2026-11-21`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("which application? give a file, a URL, or with --git a path in the repository")
			}
			appargs, err := appArgs(cmd, args[0], args[1:])
			if err != nil {
				return err
			}
			js, err := jf.spec(args[0], appargs)
			if err != nil {
				return err
			}
			b := make([]byte, 2)
			rand.Read(b)
			c, err := sf.load(cmd.Context(), "run-"+hex.EncodeToString(b))
			if err != nil {
				return err
			}
			m, _, err := f.manager(sf.sparkHome)
			if err != nil {
				return err
			}
			opts := cluster.RunOptions{Keep: keep, SaveLogs: saveLogs, Wait: cluster.WaitOptions{Stdout: f.IO.Out, OnChange: func(j state.Job) {
				if !state.JobDone(j.State) {
					describeJob(f, &j)
				}
			}}}
			if output != FormatTable {
				opts.Wait.Stdout = nil
			}
			if jf.stderr {
				opts.Wait.Stderr = f.IO.ErrOut
			}
			opts.OnEnd = func(j *state.Job) { describeJob(f, j) }
			job, err := m.Run(cmd.Context(), c, js, opts)
			if job != nil && output != FormatTable {
				if perr := f.IO.Print(output, job); perr != nil {
					return perr
				}
			}
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return &ExitError{Code: ExitInterrupted, Err: errors.New("interrupted; the cluster was destroyed")}
				}
				return err
			}
			return jobExit(job)
		},
	}
	sf.add(cmd)
	sf.addSparkHome(cmd)
	jf.add(cmd)
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the cluster running after the job")
	cmd.Flags().StringVar(&saveLogs, "save-logs", "", "keep the driver's stdout and stderr in this directory")
	addOutputFlag(cmd, &output)
	return cmd
}
