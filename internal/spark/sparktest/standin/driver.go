//lint:file-ignore ST1005 the stand-in reproduces Spark's own messages verbatim

package standin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// program is what a stand-in application does. Directives come from "standin:" lines in the
// application file (any language: "# standin: work=4 exit=1") and from "standin:key=value"
// application arguments:
//
//	tasks=N     tasks of one stage, each taking task=D (default 1s) on one core
//	work=N      core-seconds of work, as tasks of 0.1 s (default 0.5)
//	duration=D  one task of this length
//	cores=N     spark.cores.max for the application
//	exit=N      exit code; non-zero fails the driver
//	print=TEXT  a line on stdout (repeatable); default "Pi is roughly 3.141592"
//	write=PATH=TEXT  write TEXT to PATH before finishing (a job's output)
type program struct {
	tasks    int
	taskTime time.Duration
	cores    int
	exit     int
	prints   []string
	writes   [][2]string
	args     []string // the application's own arguments
}

func loadProgram(resource string, args []string) program {
	p := program{tasks: 5, taskTime: 100 * time.Millisecond}
	var directives []string
	if path := localPath(resource); path != "" {
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if _, d, ok := strings.Cut(sc.Text(), "standin:"); ok {
					directives = append(directives, splitDirectives(d)...)
				}
			}
			f.Close()
		}
	}
	for _, a := range args {
		if d, ok := strings.CutPrefix(a, "standin:"); ok {
			directives = append(directives, d)
		} else {
			p.args = append(p.args, a)
		}
	}
	for _, d := range directives {
		k, v, _ := strings.Cut(d, "=")
		switch k {
		case "work":
			w, _ := strconv.ParseFloat(v, 64)
			p.tasks, p.taskTime = max(1, int(w/0.1+0.5)), 100*time.Millisecond
		case "duration":
			d, _ := time.ParseDuration(v)
			p.tasks, p.taskTime = 1, d
		case "tasks":
			p.tasks, _ = strconv.Atoi(v)
			if p.taskTime == 100*time.Millisecond {
				p.taskTime = time.Second
			}
		case "task":
			p.taskTime, _ = time.ParseDuration(v)
		case "cores":
			p.cores, _ = strconv.Atoi(v)
		case "exit":
			p.exit, _ = strconv.Atoi(v)
		case "print":
			p.prints = append(p.prints, v)
		case "write":
			path, text, _ := strings.Cut(v, "=")
			p.writes = append(p.writes, [2]string{path, text})
		}
	}
	if len(p.prints) == 0 {
		p.prints = []string{"Pi is roughly 3.141592"}
	}
	return p
}

// splitDirectives splits `work=4 print="a b"` into fields, unquoting quoted values.
func splitDirectives(s string) []string {
	var out []string
	s = strings.TrimSpace(s)
	for s != "" {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				break
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
		}
		out = append(out, strings.TrimSpace(k)+"="+v)
		s = strings.TrimSpace(rest)
	}
	return out
}

func localPath(resource string) string {
	if u, err := url.Parse(resource); err == nil && u.Scheme != "" {
		if u.Scheme == "file" || u.Scheme == "local" {
			return u.Path
		}
		return ""
	}
	return resource
}

// driverProcess is a running driver: it registers its application with the master, waits for
// executors, works, prints, and unregisters.
type driverProcess struct {
	conf           map[string]string
	env            map[string]string
	rpc            *rpcClient
	stdout, stderr io.Writer
	prog           program
	name           string

	mu        sync.Mutex
	running   []time.Time // end times of running tasks
	completed int
	runMS     int64
}

// serveUI serves the driver's web UI on spark.ui.port, or the next free port up to 16 above it,
// as Spark does. Only the monitoring REST API is there.
func (d *driverProcess) serveUI(appID string) *http.Server {
	port := 4040
	if p, err := strconv.Atoi(d.conf["spark.ui.port"]); err == nil {
		port = p
	}
	host := firstNonEmpty(d.env["SPARK_LOCAL_IP"], "127.0.0.1")
	var l net.Listener
	var err error
	for p := port; p <= port+16; p++ {
		if l, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p))); err == nil {
			break
		}
	}
	if err != nil {
		d.logf("WARN Utils: Service 'SparkUI' could not bind on ports %d-%d", port, port+16)
		return nil
	}
	d.logf("INFO Utils: Successfully started service 'SparkUI' on port %d.", l.Addr().(*net.TCPAddr).Port)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/applications", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(pretty([]obj{{{"id", appID}, {"name", d.name}, {"attempts", []obj{{{"completed", false}, {"sparkUser", "spark"}}}}}})))
	})
	mux.HandleFunc("/api/v1/applications/"+appID+"/stages", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		st := obj{{"status", "ACTIVE"}, {"stageId", 0}, {"attemptId", 0}, {"numTasks", d.prog.tasks}, {"numActiveTasks", len(d.running)},
			{"numCompleteTasks", d.completed}, {"numFailedTasks", 0}, {"numKilledTasks", 0}, {"numCompletedIndices", d.completed},
			{"executorRunTime", d.runMS}, {"name", d.name}}
		d.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(pretty([]obj{st})))
	})
	mux.HandleFunc("/api/v1/applications/"+appID+"/jobs", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		job := obj{{"jobId", 0}, {"name", d.name}, {"stageIds", []int{0}}, {"jobTags", []string{}}, {"status", "RUNNING"},
			{"numTasks", d.prog.tasks}, {"numActiveTasks", len(d.running)}, {"numCompletedTasks", d.completed}, {"numSkippedTasks", 0},
			{"numFailedTasks", 0}, {"numKilledTasks", 0}, {"numCompletedIndices", d.completed}, {"numActiveStages", 1},
			{"numCompletedStages", 0}, {"numSkippedStages", 0}, {"numFailedStages", 0}, {"killedTasksSummary", obj{}}}
		d.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(pretty([]obj{job})))
	})
	// PrometheusServlet on the driver: its sources are named <app id>.driver.<source>.
	mux.HandleFunc("/metrics/prometheus", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		running := 0
		if len(d.running) > 0 {
			running = 1
		}
		g := map[string]int{"job_activeJobs": 1, "job_allJobs": 1, "stage_failedStages": 0, "stage_runningStages": running,
			"stage_waitingStages": 1 - running}
		d.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain;charset=utf-8")
		writeGauges(w, metricKeyRe.ReplaceAllString(appID, "_")+"_driver_DAGScheduler", g)
	})
	// PrometheusResource, when spark.ui.prometheus.enabled: executors' metrics with labels. Its
	// exact series are UNVERIFIED (docs/spark-protocol.md); these few follow the 3.x samples seen.
	if d.conf["spark.ui.prometheus.enabled"] == "true" {
		mux.HandleFunc("/metrics/executors/prometheus", func(w http.ResponseWriter, r *http.Request) {
			d.mu.Lock()
			active, completed := len(d.running), d.completed
			d.mu.Unlock()
			labels := fmt.Sprintf(`{application_id="%s", application_name="%s", executor_id="driver"}`, appID, d.name)
			w.Header().Set("Content-Type", "text/plain;charset=utf-8")
			fmt.Fprintf(w, "spark_info{version=\"%s\", revision=\"standin\"} 1.0\n", firstNonEmpty(d.env["STANDIN_VERSION"], "3.5.3"))
			fmt.Fprintf(w, "metrics_executor_activeTasks%s %d\n", labels, active)
			fmt.Fprintf(w, "metrics_executor_completedTasks_total%s %d\n", labels, completed)
		})
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	return srv
}

// eventLog writes the application's event log as Spark's EventLoggingListener does, when
// spark.eventLog.enabled: JSON lines in <spark.eventLog.dir>/<app id>.inprogress, renamed to
// <app id> when the application ends. Only the events the history server's listing needs.
type eventLog struct {
	f    *os.File
	path string
}

func (d *driverProcess) startEventLog(appID, user string, start time.Time) (*eventLog, error) {
	if d.conf["spark.eventLog.enabled"] != "true" {
		return nil, nil
	}
	dir := strings.TrimPrefix(firstNonEmpty(d.conf["spark.eventLog.dir"], "/tmp/spark-events"), "file://")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("java.io.FileNotFoundException: File %s does not exist", dir)
	}
	path := filepath.Join(dir, appID)
	f, err := os.Create(path + ".inprogress")
	if err != nil {
		return nil, err
	}
	l := &eventLog{f: f, path: path}
	l.write(obj{{"Event", "SparkListenerLogStart"}, {"Spark Version", firstNonEmpty(d.env["STANDIN_VERSION"], "3.5.3")}})
	l.write(obj{{"Event", "SparkListenerApplicationStart"}, {"App Name", d.name}, {"App ID", appID},
		{"Timestamp", start.UnixMilli()}, {"User", user}})
	return l, nil
}

func (l *eventLog) write(event obj) {
	var b strings.Builder
	writeCompact(&b, event)
	b.WriteByte('\n')
	l.f.WriteString(b.String())
}

// end writes the application's end and gives the log its final name.
func (l *eventLog) end(at time.Time) {
	if l == nil {
		return
	}
	l.write(obj{{"Event", "SparkListenerApplicationEnd"}, {"Timestamp", at.UnixMilli()}})
	l.f.Close()
	os.Rename(l.path+".inprogress", l.path)
}

func (d *driverProcess) logf(format string, args ...any) {
	fmt.Fprintf(d.stderr, "%s %s\n", time.Now().Format("06/01/02 15:04:05"), fmt.Sprintf(format, args...))
}

func (d *driverProcess) run(ctx context.Context) error {
	d.logf("INFO SparkContext: Running Spark version %s", firstNonEmpty(d.env["STANDIN_VERSION"], "3.5.3"))
	if d.conf["spark.authenticate"] == "true" {
		// SecurityManager.initializeAuth: a driver of a spark:// master must have the key in its
		// SparkConf, even though the handshake reads the environment first (SPARK-25078).
		if d.conf["spark.authenticate.secret"] == "" {
			err := errors.New("java.lang.IllegalArgumentException: requirement failed: A secret key must be specified via the spark.authenticate.secret config.")
			d.logf("ERROR SparkContext: Error initializing SparkContext.\n%v", err)
			return err
		}
		if d.rpc.secret == "" {
			d.rpc.secret = d.conf["spark.authenticate.secret"]
		}
	}
	username := "spark"
	if u, err := user.Current(); err == nil {
		username = u.Username
	}
	maxCores := d.prog.cores
	if v, err := strconv.Atoi(d.conf["spark.cores.max"]); err == nil {
		maxCores = v
	}
	perExec, _ := strconv.Atoi(d.conf["spark.executor.cores"])
	var reg struct{ ID string }
	if err := d.rpc.call(ctx, "/register-app", map[string]any{"Name": d.name, "User": username, "MaxCores": maxCores,
		"CoresPerExec": perExec, "MemPerExecutor": memoryMiB(d.conf["spark.executor.memory"], 1024)}, &reg); err != nil {
		d.logf("ERROR SparkContext: Error initializing SparkContext.\n%v", err)
		return err
	}
	d.logf("INFO StandaloneSchedulerBackend: Connected to Spark cluster with app ID %s", reg.ID)

	events, err := d.startEventLog(reg.ID, username, time.Now())
	if err != nil {
		d.logf("ERROR SparkContext: Error initializing SparkContext.\n%v", err)
		d.unregister(reg.ID, "FAILED")
		return err
	}
	defer func() { events.end(time.Now()) }()

	// The driver's web UI, with the monitoring REST API the autoscaler reads.
	ui := d.serveUI(reg.ID)
	if ui != nil {
		defer ui.Close()
	}
	dynamic := d.conf["spark.dynamicAllocation.enabled"] == "true"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		d.mu.Lock()
		done := d.completed >= d.prog.tasks
		d.mu.Unlock()
		if done {
			break
		}
		select {
		case <-ctx.Done():
			d.unregister(reg.ID, "KILLED")
			return ctx.Err()
		case now := <-tick.C:
			d.mu.Lock()
			// Finish the tasks whose time is up.
			kept := d.running[:0]
			for _, end := range d.running {
				if now.Before(end) {
					kept = append(kept, end)
				} else {
					d.completed++
					d.runMS += d.prog.taskTime.Milliseconds()
				}
			}
			d.running = kept
			pending := d.prog.tasks - d.completed - len(d.running)
			wanted := len(d.running) + pending
			d.mu.Unlock()
			req := map[string]any{"ID": reg.ID}
			if dynamic {
				req["Wanted"] = wanted
			}
			var st struct {
				Cores int
				State string
			}
			if err := d.rpc.call(ctx, "/app-cores", req, &st); err != nil {
				continue
			}
			if st.State == "KILLED" {
				return errors.New("org.apache.spark.SparkException: Application was killed by the master")
			}
			d.mu.Lock()
			for len(d.running) < st.Cores && d.prog.tasks-d.completed-len(d.running) > 0 {
				d.running = append(d.running, now.Add(d.prog.taskTime))
			}
			d.mu.Unlock()
		}
	}
	for _, w := range d.prog.writes {
		if err := os.WriteFile(w[0], []byte(w[1]+"\n"), 0o644); err != nil {
			d.unregister(reg.ID, "FAILED")
			return err
		}
	}
	for _, line := range d.prog.prints {
		fmt.Fprintln(d.stdout, line)
	}
	if d.prog.exit != 0 {
		d.unregister(reg.ID, "FINISHED")
		err := fmt.Errorf("Exception in thread \"main\" java.lang.RuntimeException: application exited with code %d", d.prog.exit)
		fmt.Fprintln(d.stderr, err)
		return err
	}
	d.unregister(reg.ID, "FINISHED")
	d.logf("INFO SparkContext: Successfully stopped SparkContext")
	return nil
}

func (d *driverProcess) unregister(id, state string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	d.rpc.call(ctx, "/unregister-app", map[string]string{"ID": id, "State": state}, nil)
}

func memoryMiB(s string, def int) int {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return def
	}
	mult := 1
	switch {
	case strings.HasSuffix(s, "g"):
		mult, s = 1024, strings.TrimSuffix(s, "g")
	case strings.HasSuffix(s, "m"):
		s = strings.TrimSuffix(s, "m")
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n * mult
}
