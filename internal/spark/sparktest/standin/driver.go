//lint:file-ignore ST1005 the stand-in reproduces Spark's own messages verbatim

package standin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// program is what a stand-in application does. Directives come from "standin:" lines in the
// application file (any language: "# standin: work=4 exit=1") and from "standin:key=value"
// application arguments:
//
//	work=N      core-seconds of work; progress is proportional to granted cores (default 0.5)
//	duration=D  wall time to run once it has any core (instead of work)
//	cores=N     spark.cores.max for the application
//	exit=N      exit code; non-zero fails the driver
//	print=TEXT  a line on stdout (repeatable); default "Pi is roughly 3.141592"
//	write=PATH=TEXT  write TEXT to PATH before finishing (a job's output)
type program struct {
	work     float64
	duration time.Duration
	cores    int
	exit     int
	prints   []string
	writes   [][2]string
	args     []string // the application's own arguments
}

func loadProgram(resource string, args []string) program {
	p := program{work: 0.5}
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
			p.work, _ = strconv.ParseFloat(v, 64)
		case "duration":
			p.duration, _ = time.ParseDuration(v)
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

	done := 0.0
	var ranFor time.Duration
	last := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		finished := (d.prog.duration > 0 && ranFor >= d.prog.duration) || (d.prog.duration == 0 && done >= d.prog.work)
		if finished {
			break
		}
		select {
		case <-ctx.Done():
			d.unregister(reg.ID, "KILLED")
			return ctx.Err()
		case now := <-tick.C:
			var st struct {
				Cores int
				State string
			}
			if err := d.rpc.call(ctx, "/app-cores", map[string]string{"ID": reg.ID}, &st); err != nil {
				continue
			}
			if st.State == "KILLED" {
				return errors.New("org.apache.spark.SparkException: Application was killed by the master")
			}
			dt := now.Sub(last)
			last = now
			if st.Cores > 0 {
				ranFor += dt
				done += float64(st.Cores) * dt.Seconds()
			}
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
