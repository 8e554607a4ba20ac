//lint:file-ignore ST1005 the stand-in reproduces Spark's own messages verbatim

package standin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// rpcClient talks to the stand-in master's RPC port.
type rpcClient struct {
	master string // host:port
	secret string
	http   *http.Client
}

func (c *rpcClient) call(ctx context.Context, path string, in, out any) error {
	b, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.master+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	if c.secret != "" {
		req.Header.Set(secretHeader, c.secret)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("java.lang.RuntimeException: javax.security.sasl.SaslException: authentication failed talking to %s", c.master)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func parseMasterURL(u string) (string, error) {
	hp, ok := strings.CutPrefix(u, "spark://")
	if !ok || hp == "" {
		return "", fmt.Errorf("Invalid master URL: %s", u)
	}
	return hp, nil
}

// Worker is the stand-in worker daemon.
type Worker struct {
	args    daemonArgs
	env     map[string]string
	conf    map[string]string
	rpc     *rpcClient
	workDir string

	mu             sync.Mutex
	id             string
	masterUIURL    string
	drivers        map[string]context.CancelFunc
	executors      map[string]ExecutorRecord // appId/execId
	finished       []ExecutorRecord
	decommissioned bool
}

// ExecutorRecord is an executor the worker is running (no process: the stand-in only accounts).
type ExecutorRecord struct {
	AppID  string
	ID     int
	Cores  int
	Memory int
}

func newWorker(args daemonArgs, env map[string]string) (*Worker, error) {
	conf := sparkConf(envFunc(env), nil)
	w := &Worker{args: args, env: env, conf: conf, drivers: map[string]context.CancelFunc{}, executors: map[string]ExecutorRecord{}}
	hp, err := parseMasterURL(args.masterURL)
	if err != nil {
		return nil, err
	}
	secret := ""
	if conf["spark.authenticate"] == "true" {
		secret = env["_SPARK_AUTH_SECRET"]
		if secret == "" {
			secret = conf["spark.authenticate.secret"]
		}
		if secret == "" {
			return nil, fmt.Errorf("java.lang.IllegalArgumentException: A secret key must be specified via the spark.authenticate.secret config")
		}
	}
	w.rpc = &rpcClient{master: hp, secret: secret, http: &http.Client{Timeout: 5 * time.Second}}
	w.workDir = args.workDir
	if w.workDir == "" {
		w.workDir = env["SPARK_WORKER_DIR"]
	}
	if w.workDir == "" {
		w.workDir = filepath.Join(env["SPARK_HOME"], "work")
	}
	if args.cores == 0 {
		w.args.cores = 2
	}
	if args.memoryMiB == 0 {
		w.args.memoryMiB = 2048
	}
	return w, os.MkdirAll(w.workDir, 0o755)
}

func (w *Worker) run(ctx context.Context) error {
	rpcL, err := listenService(w.args.host, "sparkWorker", w.args.port)
	if err != nil {
		return err
	}
	defer rpcL.Close()
	w.args.port = rpcL.Addr().(*net.TCPAddr).Port
	uiL, err := listenService(w.args.host, "WorkerUI", w.args.webUIPort)
	if err != nil {
		return err
	}
	w.args.webUIPort = uiL.Addr().(*net.TCPAddr).Port
	ui := &http.Server{Handler: w.uiHandler()}
	go ui.Serve(uiL)
	defer ui.Close()
	logf("INFO Worker: Starting Spark worker %s:%d with %d cores, %d.0 MiB RAM", w.args.host, w.args.port, w.args.cores, w.args.memoryMiB)

	pwr := make(chan os.Signal, 1)
	if w.conf["spark.decommission.enabled"] == "true" {
		signal.Notify(pwr, syscall.SIGPWR)
		defer signal.Stop(pwr)
	} else {
		logf("INFO Worker: Worker decommissioning not enabled.")
	}

	// Like Spark's Worker.onStart, register at once; then heartbeat.
	if err := w.register(ctx); err != nil {
		logf("WARN Worker: Failed to connect to master %s: %v", w.rpc.master, err)
	}
	hb := time.NewTicker(300 * time.Millisecond)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			w.shutdown()
			return nil
		case <-pwr:
			logf("INFO Worker: Decommission Worker %s", w.currentID())
			w.mu.Lock()
			w.decommissioned = true
			w.mu.Unlock()
			if err := w.rpc.call(ctx, "/worker-decommissioning", map[string]string{"ID": w.currentID()}, nil); err != nil {
				logf("WARN Worker: could not tell the master: %v", err)
			}
		case <-hb.C:
			if err := w.heartbeat(ctx); err != nil {
				if strings.Contains(err.Error(), "authentication failed") {
					return err
				}
				logf("WARN Worker: Failed to connect to master %s: %v", w.rpc.master, err)
			}
		}
	}
}

func (w *Worker) currentID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.id
}

func (w *Worker) register(ctx context.Context) error {
	var resp struct{ ID, MasterWebUiUrl string }
	err := w.rpc.call(ctx, "/register-worker", map[string]any{
		"Host": w.args.host, "Port": w.args.port, "UIPort": w.args.webUIPort, "Cores": w.args.cores, "Memory": w.args.memoryMiB,
	}, &resp)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.id, w.masterUIURL = resp.ID, resp.MasterWebUiUrl
	w.mu.Unlock()
	logf("INFO Worker: Successfully registered with master %s", w.args.masterURL)
	go w.hold(ctx, resp.ID)
	return nil
}

// hold keeps a connection to the master open while this worker lives; its closing is how the
// master learns that the worker died.
func (w *Worker) hold(ctx context.Context, id string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+w.rpc.master+"/connect?id="+id, nil)
	if err != nil {
		return
	}
	if w.rpc.secret != "" {
		req.Header.Set(secretHeader, w.rpc.secret)
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
}

func (w *Worker) heartbeat(ctx context.Context) error {
	if w.currentID() == "" {
		return w.register(ctx)
	}
	var resp struct {
		Reconnect bool
		Commands  []command
	}
	if err := w.rpc.call(ctx, "/heartbeat", map[string]string{"ID": w.currentID()}, &resp); err != nil {
		return err
	}
	if resp.Reconnect {
		w.mu.Lock()
		w.id = ""
		w.mu.Unlock()
		return w.register(ctx)
	}
	for _, c := range resp.Commands {
		w.handle(ctx, c)
	}
	return nil
}

func (w *Worker) handle(ctx context.Context, c command) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch c.Kind {
	case "launchDriver":
		dctx, cancel := context.WithCancel(ctx)
		w.drivers[c.DriverID] = cancel
		logf("INFO Worker: Asked to launch driver %s", c.DriverID)
		go w.runDriver(dctx, c.DriverID, c.Desc)
	case "killDriver":
		logf("INFO Worker: Asked to kill driver %s", c.DriverID)
		if cancel, ok := w.drivers[c.DriverID]; ok {
			cancel()
		}
	case "launchExecutor":
		w.executors[fmt.Sprintf("%s/%d", c.AppID, c.ExecID)] = ExecutorRecord{AppID: c.AppID, ID: c.ExecID, Cores: c.Cores, Memory: c.Memory}
		logf("INFO Worker: Asked to launch executor %s/%d for app", c.AppID, c.ExecID)
	case "killExecutor":
		key := fmt.Sprintf("%s/%d", c.AppID, c.ExecID)
		if e, ok := w.executors[key]; ok {
			delete(w.executors, key)
			w.finished = append(w.finished, e)
		}
	case "decommission":
		w.decommissioned = true
	}
}

// runDriver runs a cluster-mode driver the way DriverRunner does: in its own directory under the
// work dir, stdout and stderr in files there, with the submitter's environment plus the secret.
func (w *Worker) runDriver(ctx context.Context, id string, desc driverDesc) {
	dir := filepath.Join(w.workDir, id)
	os.MkdirAll(dir, 0o755)
	stdout, _ := os.Create(filepath.Join(dir, "stdout"))
	stderr, _ := os.Create(filepath.Join(dir, "stderr"))
	defer stdout.Close()
	defer stderr.Close()

	env := map[string]string{}
	for k, v := range desc.Env {
		env[k] = v
	}
	// CommandUtils: the worker hands its own secret to the driver through the environment.
	if w.rpc.secret != "" {
		env["_SPARK_AUTH_SECRET"] = w.rpc.secret
	}
	// The -Dspark.* options SparkSubmit passed along are in desc.Conf, except the secret, which
	// the worker filters out of the driver's Java options.
	conf := map[string]string{}
	for k, v := range desc.Conf {
		if k != "spark.authenticate.secret" {
			conf[k] = v
		}
	}
	conf = sparkConf(envFunc(env), conf)
	// sparkConf read SPARK_CONF_DIR of the submitter's environment; it is the same machine here.
	state, exc := "FINISHED", ""
	// DriverRunner.downloadUserJar: a remote jar is fetched into the driver's directory first;
	// when that fails the driver ends in ERROR.
	resource, err := fetchResource(ctx, desc.Resource, dir)
	if err != nil {
		logf("WARN Worker: Driver %s failed to download %s: %v", id, desc.Resource, err)
		w.mu.Lock()
		delete(w.drivers, id)
		w.mu.Unlock()
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.rpc.call(rctx, "/driver-state", map[string]string{"ID": id, "State": "ERROR", "Exception": err.Error()}, nil)
		return
	}
	prog := loadProgram(resource, desc.Args)
	d := &driverProcess{conf: conf, env: env, rpc: &rpcClient{master: w.rpc.master, secret: env["_SPARK_AUTH_SECRET"], http: w.rpc.http},
		stdout: stdout, stderr: stderr, prog: prog, name: firstNonEmpty(conf["spark.app.name"], desc.MainClass)}
	if err := d.run(ctx); err != nil {
		if ctx.Err() != nil {
			state = "KILLED"
		} else {
			state, exc = "FAILED", err.Error()
		}
	}
	w.mu.Lock()
	delete(w.drivers, id)
	w.mu.Unlock()
	logf("INFO Worker: Driver %s exited with state %s", id, state)
	// A fresh context: the report must reach the master even when the driver was cancelled.
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.rpc.call(rctx, "/driver-state", map[string]string{"ID": id, "State": state, "Exception": exc}, nil)
}

func (w *Worker) shutdown() {
	w.mu.Lock()
	for _, cancel := range w.drivers {
		cancel()
	}
	id := w.id
	w.mu.Unlock()
	if id != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		w.rpc.call(ctx, "/worker-stopping", map[string]string{"ID": id}, nil)
	}
	logf("INFO ShutdownHookManager: Shutdown hook called")
}

func (w *Worker) uiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/json", func(rw http.ResponseWriter, r *http.Request) { http.Redirect(rw, r, "/json/", http.StatusFound) })
	mux.HandleFunc("/json/", func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		execs := []obj{}
		used, usedMem := 0, 0
		for _, e := range w.executors {
			used += e.Cores
			usedMem += e.Memory
			execs = append(execs, executorJSON(e))
		}
		fin := []obj{}
		for _, e := range w.finished {
			fin = append(fin, executorJSON(e))
		}
		body := pretty(obj{
			{"id", w.id}, {"masterurl", w.args.masterURL}, {"masterwebuiurl", w.masterUIURL},
			{"cores", w.args.cores}, {"coresused", used}, {"memory", w.args.memoryMiB}, {"memoryused", usedMem},
			{"resources", obj{}}, {"resourcesused", obj{}},
			{"executors", execs}, {"finishedexecutors", fin},
		})
		w.mu.Unlock()
		rw.Header().Set("Content-Type", "text/json;charset=utf-8")
		rw.Write([]byte(body))
	})
	mux.HandleFunc("/metrics/prometheus", func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		used, usedMem := 0, 0
		for _, e := range w.executors {
			used += e.Cores
			usedMem += e.Memory
		}
		g := map[string]int{"executors": len(w.executors), "coresUsed": used, "coresFree": w.args.cores - used,
			"memUsed_MB": usedMem, "memFree_MB": w.args.memoryMiB - usedMem}
		w.mu.Unlock()
		rw.Header().Set("Content-Type", "text/plain;charset=utf-8")
		writeGauges(rw, "worker", g)
	})
	return mux
}

func executorJSON(e ExecutorRecord) obj {
	return obj{{"id", e.ID}, {"memory", e.Memory}, {"resources", obj{}}, {"appid", e.AppID},
		{"appdesc", obj{{"name", e.AppID}, {"cores", e.Cores}, {"memoryperexecutor", e.Memory}, {"resourcesperexecutor", []obj{}},
			{"memoryperslave", e.Memory}, {"resourcesperslave", []obj{}}, {"user", "spark"}, {"command", "Command(...)"}}}}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// fetchResource is Utils.fetchFile for the schemes a driver's jar may have here: http and https
// URLs are downloaded into dir; anything else is read where it is.
func fetchResource(ctx context.Context, resource, dir string) (string, error) {
	u, err := url.Parse(resource)
	if err == nil && u.Scheme == "local" {
		// doFetchFile hands schemes it does not know to Hadoop, which has no "local".
		return "", fmt.Errorf(`org.apache.hadoop.fs.UnsupportedFileSystemException: No FileSystem for scheme "local"`)
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return resource, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, resource, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("server returned HTTP response code: %d for URL: %s", resp.StatusCode, resource)
	}
	path := filepath.Join(dir, filepath.Base(u.Path))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}
