package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/consulspec"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// specFlags are the flags that say which cluster to make.
type specFlags struct {
	hosts     []string // create's arguments: the hosts of provider hosts
	file      string
	name      string
	provider  string
	workers   int
	sets      []string
	sparkHome string
	flags     *pflag.FlagSet
}

func (s *specFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&s.file, "file", "f", "", "cluster spec (YAML); - reads standard input, consul://HOST:PORT/KEY a spec in Consul's KV store. Without it: a local cluster of two workers")
	fl.StringVarP(&s.name, "name", "n", "", "cluster name (overrides the spec's name)")
	s.flags = fl
	fl.StringVarP(&s.provider, "provider", "p", "", "provider: "+orList(builtInProviders)+" (overrides the spec)")
	fl.IntVar(&s.workers, "workers", 0, "number of workers (overrides workers.count)")
	fl.StringArrayVar(&s.sets, "set", nil, "set any spec field, e.g. --set workers.max=20 --set spark.conf.spark.executor.memory=2g (repeatable)")
	cmd.MarkFlagFilename("file", "yaml", "yml")
}

// addSparkHome adds --spark-home, for the verbs that start Spark (create, run): on the others it
// would do nothing.
func (s *specFlags) addSparkHome(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.sparkHome, "spark-home", "", "an unpacked Spark or a pip-installed pyspark package directory, to use instead of SPARK_HOME or a download (local provider)")
}

// orList is "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func yamlString(s string) string { b, _ := json.Marshal(s); return string(b) }

// load reads the spec file, a spec in Consul (consul://HOST:PORT/KEY) or the default spec, with
// the flags applied over it.
func (s *specFlags) load(ctx context.Context, defaultName string) (*spec.Cluster, error) {
	var ov []spec.Override
	if s.name != "" {
		ov = append(ov, spec.Override{Path: []string{"name"}, Value: yamlString(s.name), Flag: "-n " + s.name})
	}
	if s.provider != "" {
		ov = append(ov, spec.Override{Path: []string{"provider"}, Value: yamlString(s.provider), Flag: "-p " + s.provider})
	}
	if s.flags != nil && s.flags.Changed("workers") {
		if s.workers < 0 {
			return nil, usagef("--workers %d: give 0 or more workers", s.workers)
		}
		ov = append(ov, spec.Override{Path: []string{"workers", "count"}, Value: strconv.Itoa(s.workers), Flag: fmt.Sprintf("--workers %d", s.workers)})
	}
	if len(s.hosts) > 0 {
		// Seed 004's form: create -p hosts MASTER WORKER…
		quoted := make([]string, len(s.hosts))
		for i, h := range s.hosts {
			quoted[i] = yamlString(h)
		}
		ov = append(ov, spec.Override{Path: []string{"hosts", "master"}, Value: quoted[0], Flag: s.hosts[0]},
			spec.Override{Path: []string{"hosts", "workers"}, Value: "[" + strings.Join(quoted[1:], ", ") + "]", Flag: strings.Join(s.hosts[1:], " ")})
		if s.flags == nil || !s.flags.Changed("workers") {
			ov = append(ov, spec.Override{Path: []string{"workers", "count"}, Value: strconv.Itoa(len(s.hosts) - 1), Flag: strings.Join(s.hosts, " ")})
		}
	}
	for _, set := range s.sets {
		o, err := spec.SetFlag(set)
		if err != nil {
			return nil, &usageError{err}
		}
		ov = append(ov, o)
	}
	if s.file == "" {
		return spec.Default(spec.Options{DefaultName: defaultName, Overrides: ov})
	}
	if consulspec.Is(s.file) {
		data, err := consulspec.Read(ctx, s.file)
		if err != nil {
			return nil, err
		}
		return spec.Parse(s.file, data, spec.Options{Overrides: ov})
	}
	c, err := spec.LoadFile(s.file, spec.Options{Overrides: ov})
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, &usageError{err} // a -f that names no readable file is a mistake on the command line
	}
	return c, err
}

// clusterArg takes the cluster's name from the first argument or -n, as seed 004's commands do.
func clusterArg(name string, args []string) (string, []string, error) {
	switch {
	case name != "":
		return name, args, nil
	case len(args) > 0:
		return args[0], args[1:], nil
	}
	return "", nil, usagef("which cluster? give its name (sparkplane list shows them)")
}

// refFlags are -n and -p for verbs on an existing cluster.
type refFlags struct{ name, provider string }

func (r *refFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&r.name, "name", "n", "", "cluster name (or give it as the first argument)")
	cmd.Flags().StringVarP(&r.provider, "provider", "p", "", "provider of the cluster (default: the one it was created on)")
}

func (r *refFlags) ref(args []string) (cluster.Ref, []string, error) {
	name, rest, err := clusterArg(r.name, args)
	return cluster.Ref{Name: name, Provider: r.provider}, rest, err
}

// forCluster is what verbs on an existing cluster start with: which cluster, the arguments
// after its name, and a manager.
func (f *Factory) forCluster(r *refFlags, args []string) (*cluster.Manager, cluster.Ref, []string, error) {
	ref, rest, err := r.ref(args)
	if err != nil {
		return nil, ref, nil, err
	}
	m, _, err := f.manager("")
	return m, ref, rest, err
}

func newCreateCmd(f *Factory) *cobra.Command {
	var sf specFlags
	var dryRun, retain bool
	var output string
	cmd := &cobra.Command{
		Use:   "create [-f SPEC] [flags] [MASTER-HOST WORKER-HOST...]",
		Short: "Create a cluster",
		Long: `Create a Spark cluster from a spec and wait until its master and every worker run.

Without -f, the cluster is a local one named "spark" with one master and two workers. Flags
override the spec. Create is all-or-nothing: if a step fails, or you press Ctrl-C, everything
made so far is destroyed again (unless --retain).

With provider hosts, the arguments are the machines: the first runs the master, the others the
workers (over SSH; their keys must be in known_hosts, or give --trust-new-hosts).`,
		Example: `  sparkplane create
  sparkplane create -f examples/local.yaml
  sparkplane create -n big --workers 6 --set workers.cores=2
  sparkplane create -f cluster.yaml --dry-run
  sparkplane create -n lab -p hosts node1 node2 node3`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && sf.provider != "hosts" {
				return usagef("create takes hosts as arguments only with -p hosts (got %s)", strings.Join(args, " "))
			}
			sf.hosts = args
			c, err := sf.load(cmd.Context(), "spark")
			if err != nil {
				return err
			}
			if dryRun {
				return f.plan(cmd, c, output)
			}
			m, _, err := f.manager(sf.sparkHome)
			if err != nil {
				return err
			}
			st, err := m.Create(cmd.Context(), c, cluster.CreateOptions{Retain: retain})
			if err != nil {
				return err
			}
			if output != FormatTable {
				return f.IO.Print(output, st)
			}
			f.IO.Success("cluster %s is ready", c.Name)
			fmt.Fprintf(f.IO.ErrOut, "\n  Submit a job:   sparkplane submit -n %s app.py\n  See it:         sparkplane status %s\n  Spark's UI:     %s\n  Remove it:      sparkplane destroy %s\n",
				c.Name, c.Name, st.Agent.Master.UI, c.Name)
			return nil
		},
	}
	sf.add(cmd)
	sf.addSparkHome(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be created, and create nothing")
	cmd.Flags().BoolVar(&retain, "retain", false, "keep what a failed create made, for inspection")
	cmd.Flags().BoolVar(&f.trustNewHosts, "trust-new-hosts", false, "provider hosts: trust hosts that known_hosts does not list, adding their keys (the fingerprints are printed)")
	addOutputFlag(cmd, &output)
	return cmd
}

func newPlanCmd(f *Factory) *cobra.Command {
	var sf specFlags
	var output string
	cmd := &cobra.Command{
		Use:   "plan [-f SPEC] [flags]",
		Short: "Show what create would make (create --dry-run)",
		Long:  `Read and check a spec, and show what create would make with it, changing nothing.`,
		Example: `  sparkplane plan -f examples/aws.yaml
  sparkplane plan --workers 6 --set workers.cores=2 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.load(cmd.Context(), "spark")
			if err != nil {
				return err
			}
			return f.plan(cmd, c, output)
		},
	}
	sf.add(cmd)
	addOutputFlag(cmd, &output)
	return cmd
}

// plan prints what create would make. It changes nothing, so it opens no state database: a
// manager without a store is enough to ask the provider.
func (f *Factory) plan(cmd *cobra.Command, c *spec.Cluster, output string) error {
	reg, err := f.Providers()
	if err != nil {
		return err
	}
	m := &cluster.Manager{Providers: reg}
	plan, err := m.Plan(cmd.Context(), c)
	if err != nil {
		return err
	}
	if output != FormatTable {
		return f.IO.Print(output, struct {
			Spec *spec.Cluster  `json:"spec"`
			Plan *provider.Plan `json:"plan"`
		}{c, plan})
	}
	t := f.IO.NewTable("ACTION", "RESOURCE", "DETAIL")
	for _, ch := range plan.Changes {
		t.Row(ch.Action, ch.Resource, ch.Detail)
	}
	if err := t.Render(); err != nil {
		return err
	}
	if plan.Detail != "" {
		fmt.Fprintln(f.IO.Out, plan.Detail)
	}
	f.IO.Info("plan for %s on %s: %d to create; nothing was changed", c.Name, plan.Provider, len(plan.Changes))
	return nil
}

func newListCmd(f *Factory) *cobra.Command {
	var prov, file, output string
	cmd := &cobra.Command{
		Use:     "list [-p PROVIDER] [-f SPEC | -p hosts HOST...]",
		Aliases: []string{"ls"},
		Short:   "List clusters",
		Long: `List the clusters the providers show: the local provider's, and those of every provider a cluster was created on from this machine.

Clusters on machines you have (provider hosts) are found on the machines themselves: give a spec
whose hosts block names them and says how to reach them (-f), or the hosts (-p hosts HOST...).
Each master's manifest is read, whoever created the cluster; the clusters found are remembered
here, and every other verb then works on them as on the machine that created them.`,
		Example: `  sparkplane list
  sparkplane list -o json
  sparkplane list -f lab.yaml
  sparkplane list -p hosts node1.lab`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && prov != "hosts" {
				return usagef("list takes hosts as arguments only with -p hosts (got %s)", strings.Join(args, " "))
			}
			m, _, err := f.manager("")
			if err != nil {
				return err
			}
			var list []cluster.Summary
			if file != "" || len(args) > 0 {
				sf := specFlags{file: file, provider: prov, hosts: args}
				c, lerr := sf.load(cmd.Context(), "find")
				if lerr != nil {
					return lerr
				}
				list, err = m.Find(cmd.Context(), c)
				if err != nil && len(list) > 0 {
					f.IO.Warn("%v", err)
					err = nil
				}
			} else {
				list, err = m.List(cmd.Context(), prov)
			}
			if err != nil {
				return err
			}
			if output != FormatTable {
				return f.IO.Print(output, list)
			}
			if len(list) == 0 {
				f.IO.Info("no clusters; sparkplane create makes one")
				return nil
			}
			t := f.IO.NewTable("NAME", "PROVIDER", "STATE", "WORKERS", "AGE", "AGENT")
			for _, s := range list {
				t.Row(s.Name, s.Provider, s.State, fmt.Sprintf("%d/%d", s.Running, s.Workers), age(s.CreatedAt), s.Agent)
			}
			return t.Render()
		},
	}
	cmd.Flags().StringVarP(&prov, "provider", "p", "", "list only this provider's clusters")
	cmd.Flags().StringVarP(&file, "file", "f", "", "provider hosts: find the clusters on the hosts this spec names")
	cmd.Flags().BoolVar(&f.trustNewHosts, "trust-new-hosts", false, "provider hosts: trust hosts that known_hosts does not list, adding their keys (the fingerprints are printed)")
	addOutputFlag(cmd, &output)
	return cmd
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return shortDuration(time.Since(t))
}

func shortDuration(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func newStatusCmd(f *Factory) *cobra.Command {
	var rf refFlags
	var output string
	var watchIt bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:     "status NAME",
		Aliases: []string{"info"},
		Short:   "Show a cluster: its nodes, Spark's workers, recent jobs and when it ends",
		Long: `Show a cluster: its nodes, Spark's workers, recent jobs and when it ends.

With --watch, a live view: workers with cores and memory bars, jobs with their state and
duration, and the autoscaler's recent decisions, redrawn in place every --interval until
Ctrl-C. Piped, --watch prints a plain snapshot every interval instead.`,
		Example: `  sparkplane status spark
  sparkplane status spark --watch
  sparkplane status spark -o json | jq .agent.cores`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, ref, _, err := f.forCluster(&rf, args)
			if err != nil {
				return err
			}
			if watchIt {
				if output != FormatTable {
					return usagef("--watch draws a live view; for scripts, run status -o %s repeatedly", output)
				}
				if interval < 100*time.Millisecond {
					return usagef("--interval %s is too short; use at least 100ms", interval)
				}
				f.quietInterrupt()
				return watch(cmd.Context(), f, m, ref, interval)
			}
			st, err := m.Status(cmd.Context(), ref)
			if err != nil {
				return err
			}
			if output != FormatTable {
				return f.IO.Print(output, st)
			}
			return printStatus(f, st)
		},
	}
	rf.add(cmd)
	addOutputFlag(cmd, &output)
	cmd.Flags().BoolVarP(&watchIt, "watch", "w", false, "redraw the status live until Ctrl-C")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often --watch redraws")
	return cmd
}

func printStatus(f *Factory, st *cluster.Status) error {
	out := f.IO.Out
	fmt.Fprintf(out, "Cluster:   %s (%s) — %s, created %s ago\n", st.Name, st.Provider, st.State, age(st.CreatedAt))
	a := st.Agent
	if a == nil {
		fmt.Fprintf(out, "Master:    not answering: %s\n", st.AgentError)
	} else {
		fmt.Fprintf(out, "Master:    %s  UI %s  (Spark %s, %s)\n", a.Master.URL, a.Master.UI, a.Master.Version, orDash(a.Master.State))
		fmt.Fprintf(out, "Capacity:  %d alive worker(s), %d/%d cores used, %s/%s memory used\n",
			a.AliveWorkers(), a.CoresUsed, a.Cores, spec.FormatMemory(a.MemoryUsed), spec.FormatMemory(a.MemoryMiB))
		fmt.Fprintf(out, "Lifetime:  %s\n", lifetimeLine(a.Lifetime))
		if as := a.Autoscale; as != nil {
			line := fmt.Sprintf("Autoscale: %s policy, launches take %s", as.Policy, as.LaunchLatency.Round(100*time.Millisecond))
			if as.Requested > 0 || as.Draining > 0 {
				line += fmt.Sprintf(", %d starting, %d draining", as.Requested, as.Draining)
			}
			if !as.LastDecisionAt.IsZero() {
				line += fmt.Sprintf("; last decision %s ago: %s", shortDuration(time.Since(as.LastDecisionAt)), as.LastDecision)
			}
			fmt.Fprintln(out, line)
		}
		if starved := starvedApps(a); len(starved) > 0 {
			f.IO.Warn("%d application(s) wait for executors with no core free: %s. Drivers may hold the cores their jobs need; add workers (sparkplane add %s) or run fewer jobs at once",
				len(starved), strings.Join(starved, ", "), st.Name)
		}
	}
	fmt.Fprintln(out)
	t := f.IO.NewTable("NODE", "ROLE", "STATE", "SPARK", "CORES", "MEMORY", "DRIVERS", "DETAIL")
	spark := map[string]agentapi.WorkerStatus{}
	if a != nil {
		for _, w := range a.Workers {
			spark[w.NodeID] = w
		}
	}
	for _, n := range st.Nodes {
		sparkState, cores, mem, drivers := "-", "-", "-", "-"
		if n.Role == "master" && a != nil {
			sparkState = orDash(a.Master.State)
		}
		if w, ok := spark[n.ID]; ok {
			sparkState = w.State
			cores = fmt.Sprintf("%d/%d", w.CoresUsed, w.Cores)
			mem = spec.FormatMemory(w.MemoryUsed) + "/" + spec.FormatMemory(w.MemoryMiB)
			drivers = strconv.Itoa(w.Drivers)
		}
		t.Row(n.ID, n.Role, n.State, sparkState, cores, mem, drivers, n.Detail)
	}
	if err := t.Render(); err != nil {
		return err
	}
	if a != nil && len(a.Jobs) > 0 {
		fmt.Fprintln(out)
		jt := f.IO.NewTable("JOB", "NAME", "STATE", "MODE", "SUBMITTED", "DURATION")
		for i, j := range a.Jobs {
			if i == 5 {
				break
			}
			jt.Row(j.ID, j.Name, j.State, j.DeployMode, j.SubmittedAt.Local().Format("15:04:05"), shortDuration(j.Duration(time.Now())))
		}
		if err := jt.Render(); err != nil {
			return err
		}
	}
	if a != nil && len(a.Events) > 0 && f.IO.IsTerminal() {
		fmt.Fprintln(out, "\nRecent events:")
		for _, e := range a.Events {
			fmt.Fprintf(out, "  %s  %s\n", e.Time.Local().Format("15:04:05"), e.Message)
		}
	}
	return nil
}

// starvedApps names applications that have no core while no core is free.
func starvedApps(a *agentapi.ClusterStatus) []string {
	if a.Cores == 0 || a.CoresUsed < a.Cores {
		return nil
	}
	var out []string
	for _, app := range a.Apps {
		if app.State == "WAITING" && app.Cores == 0 {
			out = append(out, app.Name)
		}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func lifetimeLine(l agentapi.Lifetime) string {
	if l.MaxAge == 0 && l.IdleTimeout == 0 {
		return "no limit (set lifetime.idleTimeout or lifetime.maxAge to have the cluster remove itself)"
	}
	var parts []string
	if l.IdleTimeout > 0 {
		if l.IdleSince.IsZero() {
			parts = append(parts, fmt.Sprintf("busy (idleTimeout %s)", l.IdleTimeout))
		} else {
			parts = append(parts, fmt.Sprintf("idle for %s of %s", shortDuration(time.Since(l.IdleSince)), l.IdleTimeout))
		}
	}
	if l.MaxAge > 0 {
		parts = append(parts, fmt.Sprintf("maxAge %s", l.MaxAge))
	}
	line := strings.Join(parts, ", ")
	if !l.DestroyAt.IsZero() {
		line += fmt.Sprintf(" — destroys itself at %s (%s)", l.DestroyAt.Local().Format("2006-01-02 15:04:05"), l.DestroyCause)
	}
	return line
}

func newAddCmd(f *Factory) *cobra.Command {
	var rf refFlags
	var output string
	cmd := &cobra.Command{
		Use:   "add NAME [COUNT | HOST...]",
		Short: "Add workers to a cluster",
		Long: `Start COUNT more workers (default 1) and wait until Spark has registered them. The cluster's
workers.max bounds the total.

On provider hosts, name the machines to add (each is checked and installed as create does, over
SSH from this machine), or give a count to take the next unused hosts of hosts.workers.`,
		Example: "  sparkplane add laptop 2\n  sparkplane add -n laptop\n  sparkplane add lab node4.lab node5.lab",
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, rest, err := rf.ref(args)
			if err != nil {
				return err
			}
			n := 1
			var hosts []string
			if len(rest) == 1 {
				if n, err = strconv.Atoi(rest[0]); err != nil {
					hosts = rest // a host's name, not a count
				} else if n < 1 {
					return usagef("COUNT must be a whole number of at least 1, not %q", rest[0])
				}
			} else if len(rest) > 1 {
				hosts = rest
			}
			m, _, err := f.manager("")
			if err != nil {
				return err
			}
			var added []string
			if hosts != nil {
				added, err = m.AddHosts(cmd.Context(), ref, hosts)
			} else {
				added, err = m.Add(cmd.Context(), ref, n)
			}
			if err != nil {
				return err
			}
			if output != FormatTable {
				return f.IO.Print(output, agentapi.WorkersResult{Nodes: added})
			}
			return nil
		},
	}
	rf.add(cmd)
	addOutputFlag(cmd, &output)
	return cmd
}

func newRemoveCmd(f *Factory) *cobra.Command {
	var rf refFlags
	var count int
	var drain time.Duration
	var force bool
	var output string
	cmd := &cobra.Command{
		Use:   "remove NAME [WORKER... | COUNT]",
		Short: "Drain and remove workers",
		Long: `Remove workers gracefully: each is decommissioned in Spark first (it takes no new work, its
executors and cached blocks move to other workers), and stopped once no driver runs on it.
Name the workers, or give a count (as --count N, or as a number after the cluster's name) to
have sparkplane pick idle ones. The cluster's workers.min bounds what is left. A worker that
runs a driver (a job in cluster mode) is refused unless --force.

On provider hosts, a worker is named by its host; this machine removes what the cluster put
there, once Spark has let go of it, leaving the host as it was.`,
		Example: "  sparkplane remove laptop 2\n  sparkplane remove laptop --count 2\n  sparkplane remove laptop worker-3\n  sparkplane remove lab node4.lab",
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, nodes, err := rf.ref(args)
			if err != nil {
				return err
			}
			// A lone number is a count, as in add: no worker is named by a number alone.
			if n, err := strconv.Atoi(nodes0(nodes)); err == nil && len(nodes) == 1 {
				if n < 1 {
					return usagef("remove %d workers? give a count of 1 or more", n)
				}
				if count > 0 && count != n {
					return usagef("a count of %d and --count %d: give one", n, count)
				}
				nodes, count = nil, n
			}
			if len(nodes) > 0 && count > 0 {
				return usagef("name workers or give --count, not both")
			}
			if len(nodes) == 0 && count == 0 {
				count = 1
			}
			m, _, err := f.manager("")
			if err != nil {
				return err
			}
			removed, err := m.Remove(cmd.Context(), ref, agentapi.RemoveWorkersRequest{Nodes: nodes, Count: count, DrainTimeout: drain, Force: force})
			if err != nil {
				return err
			}
			if output != FormatTable {
				return f.IO.Print(output, agentapi.WorkersResult{Nodes: removed})
			}
			return nil
		},
	}
	rf.add(cmd)
	cmd.Flags().IntVar(&count, "count", 0, "remove this many idle workers (default 1 when no worker is named)")
	cmd.Flags().DurationVar(&drain, "drain-timeout", 2*time.Minute, "how long a worker may take to drain")
	cmd.Flags().BoolVar(&force, "force", false, "also remove workers that have not drained, or run drivers")
	addOutputFlag(cmd, &output)
	return cmd
}

func newDestroyCmd(f *Factory) *cobra.Command {
	var rf refFlags
	var yes, dryRun bool
	cmd := &cobra.Command{
		Use:     "destroy NAME",
		Aliases: []string{"kill", "delete", "rm"},
		Short:   "Destroy a cluster and everything it has",
		Long: `Destroy a cluster: every node, process, file and secret it has, so that nothing keeps costing.
The record of its jobs stays (sparkplane jobs NAME). Destroying a cluster that does not exist
succeeds. On a terminal you are asked to confirm; elsewhere --yes is required.`,
		Example: "  sparkplane destroy laptop\n  sparkplane destroy laptop --yes",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, ref, _, err := f.forCluster(&rf, args)
			if err != nil {
				return err
			}
			if dryRun {
				st, err := m.Status(cmd.Context(), ref)
				if err != nil {
					return err
				}
				t := f.IO.NewTable("ACTION", "RESOURCE", "DETAIL")
				for _, n := range st.Nodes {
					t.Row("destroy", n.Role+" "+n.ID, n.Detail)
				}
				t.Row("destroy", "secret and state of "+st.Name, "job history is kept")
				return t.Render()
			}
			if !yes {
				if !f.IO.CanPrompt() {
					return usagef("refusing to destroy %s without --yes when not on a terminal", ref.Name)
				}
				fmt.Fprintf(f.IO.ErrOut, "Destroy cluster %s and everything it runs? Type its name to confirm: ", ref.Name)
				answer, _ := bufio.NewReader(f.IO.In).ReadString('\n')
				if strings.TrimSpace(answer) != ref.Name {
					return &ExitError{Code: ExitFailure, Err: fmt.Errorf("not confirmed; %s is untouched", ref.Name)}
				}
			}
			return m.Destroy(cmd.Context(), ref)
		},
	}
	rf.add(cmd)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be destroyed, and destroy nothing")
	return cmd
}

func nodes0(nodes []string) string {
	if len(nodes) == 0 {
		return ""
	}
	return nodes[0]
}
