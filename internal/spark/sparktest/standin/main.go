// Package standin is a stand-in for Apache Spark's standalone mode, for tests only: Spark cannot
// be installed where sparkplane is developed. It speaks the formats in docs/spark-protocol.md
// (the master's and workers' /json/, the REST submission server, decommissioning, the Prometheus
// servlet, spark-submit's output) and reproduces the behaviour sparkplane depends on: workers
// register and heartbeat, drivers go SUBMITTED → RUNNING → FINISHED or FAILED, applications wait
// for cores, kill works, SIGPWR decommissions, and authentication follows Spark's SecurityManager,
// quirks included. It is never linked into the sparkplane binary.
package standin

//lint:file-ignore ST1005 the stand-in reproduces Spark's own messages verbatim

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

type daemonArgs struct {
	host             string
	port, webUIPort  int
	cores, memoryMiB int
	workDir          string
	masterURL        string
}

func parseDaemon(args []string, isWorker bool) (daemonArgs, error) {
	a := daemonArgs{host: "127.0.0.1", port: 7077, webUIPort: 8080}
	if isWorker {
		a.port, a.webUIPort = 0, 8081
	}
	for i := 0; i < len(args); i++ {
		k := args[i]
		if !strings.HasPrefix(k, "-") {
			a.masterURL = k
			continue
		}
		if i+1 >= len(args) {
			return a, fmt.Errorf("missing value for %s", k)
		}
		v := args[i+1]
		i++
		var err error
		switch k {
		case "--host", "-h", "--ip", "-i":
			a.host = v
		case "--port", "-p":
			a.port, err = strconv.Atoi(v)
		case "--webui-port":
			a.webUIPort, err = strconv.Atoi(v)
		case "--cores", "-c":
			a.cores, err = strconv.Atoi(v)
		case "--memory", "-m":
			a.memoryMiB = memoryMiB(v, 0)
		case "--work-dir", "-d":
			a.workDir = v
		case "--properties-file":
		default:
			return a, fmt.Errorf("unknown option %s", k)
		}
		if err != nil {
			return a, fmt.Errorf("%s: %v", k, err)
		}
	}
	return a, nil
}

// Main runs the stand-in as bin/spark-class or bin/spark-submit would, and returns the exit code.
func Main(args []string) int {
	if len(args) < 1 {
		fmt.Fprintln(os.Stderr, "usage: spark-standin spark-class CLASS ARGS… | spark-submit ARGS…")
		return 2
	}
	switch args[0] {
	case "spark-submit":
		return submit(args[1:], os.Environ())
	case "spark-class":
	default:
		fmt.Fprintf(os.Stderr, "spark-standin: unknown program %q\n", args[0])
		return 2
	}
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "Usage: spark-class <class> [<args>]")
		return 1
	}
	class, rest := args[1], args[2:]
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	env := environMap(os.Environ())
	var err error
	switch class {
	case "org.apache.spark.deploy.master.Master":
		var a daemonArgs
		if a, err = parseDaemon(rest, false); err == nil {
			var m *Master
			if m, err = newMaster(a, envFunc(env)); err == nil {
				err = m.run(ctx)
			}
		}
	case "org.apache.spark.deploy.worker.Worker":
		var a daemonArgs
		if a, err = parseDaemon(rest, true); err == nil {
			if a.masterURL == "" {
				err = fmt.Errorf("Usage: Worker [options] <master>")
			} else {
				var w *Worker
				if w, err = newWorker(a, env); err == nil {
					err = w.run(ctx)
				}
			}
		}
	case "org.apache.spark.deploy.Client":
		err = legacyClient(ctx, rest, env)
	case "org.apache.spark.deploy.history.HistoryServer":
		var h *HistoryServer
		if h, err = newHistoryServer(rest, envFunc(env)); err == nil {
			err = h.run(ctx)
		}
	default:
		err = fmt.Errorf("Error: Could not find or load main class %s", class)
	}
	if err != nil {
		logf("ERROR %v", err)
		return 1
	}
	if ctx.Err() != nil {
		return 143
	}
	return 0
}
