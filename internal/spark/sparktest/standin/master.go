//lint:file-ignore ST1005 the stand-in reproduces Spark's own messages verbatim

package standin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The stand-in's daemons talk to each other over HTTP on the "RPC" ports, with the shared secret
// in a header when spark.authenticate is on. Only the web UIs and the REST server speak Spark's
// documented formats; this internal protocol is the stand-in's own.
const secretHeader = "X-Standin-Secret"

type worker struct {
	id, host      string
	port, uiPort  int
	cores, memory int
	state         string
	lastHeartbeat time.Time
	pending       []command
	decommission  bool
}

type driver struct {
	id         string
	start      time.Time
	state      string
	cores, mem int
	worker     string // id or "None"
	mainClass  string
	desc       driverDesc
	exception  string
}

// driverDesc is what a cluster-mode submission carries to the worker that runs the driver.
type driverDesc struct {
	MainClass string            `json:"mainClass"`
	Resource  string            `json:"resource"`
	Args      []string          `json:"args"`
	Conf      map[string]string `json:"conf"`
	Env       map[string]string `json:"env"`
	Cores     int               `json:"cores"`
	MemoryMiB int               `json:"memory"`
}

type app struct {
	id, name, user   string
	start, end       time.Time
	state            string
	maxCores         int // 0: unlimited
	dynamic          bool
	wanted           int       // with dynamic allocation: cores its tasks could use now
	surplusSince     time.Time // when it first held more cores than it wanted
	coresPerExecutor int       // 0: one executor per worker with all its free cores
	memPerExecutor   int
	executors        map[string]*executor // by worker id
	nextExec         int
	submitDate       string
}

type executor struct {
	id     int
	worker string
	cores  int
	mem    int
}

func (a *app) coresGranted() int {
	n := 0
	for _, e := range a.executors {
		n += e.cores
	}
	return n
}

// command is what the master tells a worker on its next heartbeat.
type command struct {
	Kind     string     `json:"kind"` // launchDriver, killDriver, launchExecutor, killExecutor
	DriverID string     `json:"driverId,omitempty"`
	AppID    string     `json:"appId,omitempty"`
	ExecID   int        `json:"execId,omitempty"`
	Cores    int        `json:"cores,omitempty"`
	Memory   int        `json:"memory,omitempty"`
	Desc     driverDesc `json:"desc,omitempty"`
}

// Master is the stand-in master daemon.
type Master struct {
	rest              bool // the REST submission server is on
	host              string
	port, uiPort      int
	secret            string
	conf              map[string]string
	workerTimeout     time.Duration
	decommissionAllow bool

	mu            sync.Mutex
	workers       []*worker
	apps          []*app
	completedApps []*app
	drivers       []*driver
	completedDrv  []*driver
	nextApp       int
	nextDriver    int
	started       time.Time
}

func newMaster(args daemonArgs, env func(string) string) (*Master, error) {
	conf := sparkConf(env, nil)
	m := &Master{host: args.host, port: args.port, uiPort: args.webUIPort, conf: conf, started: time.Now()}
	if conf["spark.authenticate"] == "true" {
		m.secret = env("_SPARK_AUTH_SECRET")
		if m.secret == "" {
			m.secret = conf["spark.authenticate.secret"]
		}
		if m.secret == "" {
			return nil, fmt.Errorf("java.lang.IllegalArgumentException: A secret key must be specified via the spark.authenticate.secret config")
		}
	}
	// Spark 4.x serves REST unless told not to, and allows it beside authentication (checked on
	// 4.3.0); 3.x serves it only when asked, and refuses it beside a secret.
	spark4 := strings.HasPrefix(env("STANDIN_VERSION"), "4.")
	m.rest = conf["spark.master.rest.enabled"] == "true" || spark4 && conf["spark.master.rest.enabled"] != "false"
	if !spark4 && m.rest && conf["spark.authenticate.secret"] != "" {
		return nil, fmt.Errorf("java.lang.IllegalArgumentException: requirement failed: The RestSubmissionServer does not support authentication via spark.authenticate.secret. Either turn off the RestSubmissionServer with spark.master.rest.enabled=false, or do not use authentication")
	}
	m.workerTimeout = 60 * time.Second
	if s := conf["spark.worker.timeout"]; s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			m.workerTimeout = time.Duration(n) * time.Second
		}
	}
	m.decommissionAllow = conf["spark.decommission.enabled"] == "true"
	return m, nil
}

func (m *Master) url() string { return fmt.Sprintf("spark://%s:%d", m.host, m.port) }

// run serves the RPC port, the web UI and, when enabled, the REST server until ctx ends.
func (m *Master) run(ctx context.Context) error {
	rpc, err := listenService(m.host, "sparkMaster", m.port)
	if err != nil {
		return err
	}
	m.port = rpc.Addr().(*net.TCPAddr).Port
	ui, err := listenService(m.host, "MasterUI", m.uiPort)
	if err != nil {
		rpc.Close()
		return err
	}
	m.uiPort = ui.Addr().(*net.TCPAddr).Port
	servers := []*http.Server{{Handler: m.rpcHandler()}, {Handler: m.uiHandler()}}
	listeners := []net.Listener{rpc, ui}
	if m.rest {
		port := 6066
		if p, err := strconv.Atoi(m.conf["spark.master.rest.port"]); err == nil {
			port = p
		}
		rl, err := net.Listen("tcp", net.JoinHostPort(m.host, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("REST server bind: %v", err)
		}
		servers = append(servers, &http.Server{Handler: m.restHandler()})
		listeners = append(listeners, rl)
		logf("INFO StandaloneRestServer: Started REST server for submitting applications on port %d", port)
	}
	for i := range servers {
		go servers[i].Serve(listeners[i])
	}
	logf("INFO Master: Starting Spark master at %s", m.url())
	logf("INFO Master: I have been elected leader! New state: ALIVE")

	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			for _, s := range servers {
				s.Close()
			}
			return nil
		case <-tick.C:
			m.checkWorkers()
		}
	}
}

func (m *Master) checkWorkers() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.workers {
		if w.state == "ALIVE" && time.Since(w.lastHeartbeat) > m.workerTimeout {
			logf("WARN Master: Removing %s because we got no heartbeat in %d seconds", w.id, int(m.workerTimeout.Seconds()))
			m.removeWorkerLocked(w, "DEAD")
		}
	}
}

// removeWorkerLocked takes a worker out of service: its executors are lost and the drivers on it
// end in ERROR (sparkplane never asks Spark to supervise drivers).
func (m *Master) removeWorkerLocked(w *worker, state string) {
	w.state = state
	for _, a := range m.apps {
		delete(a.executors, w.id)
	}
	for _, d := range m.drivers {
		if d.worker == w.id && !terminal(d.state) {
			m.finishDriverLocked(d, "ERROR", "worker lost")
		}
	}
	m.scheduleLocked()
}

func terminal(s string) bool {
	return s == "FINISHED" || s == "KILLED" || s == "FAILED" || s == "ERROR"
}

func (m *Master) finishDriverLocked(d *driver, state, exception string) {
	d.state = state
	d.exception = exception
	for i, x := range m.drivers {
		if x == d {
			m.drivers = append(m.drivers[:i], m.drivers[i+1:]...)
			break
		}
	}
	m.completedDrv = append(m.completedDrv, d)
	logf("INFO Master: Removing driver: %s", d.id)
}

// scheduleLocked places waiting drivers, then grants executors to applications in FIFO order,
// spreading them over workers as Spark's default spreadOut does.
func (m *Master) scheduleLocked() {
	alive := m.aliveWorkersLocked()
	for _, d := range m.drivers {
		if d.state != "SUBMITTED" {
			continue
		}
		for _, w := range alive {
			fc, fm := m.freeLocked(w)
			if fc >= d.cores && fm >= d.mem {
				d.worker, d.state = w.id, "RUNNING"
				w.pending = append(w.pending, command{Kind: "launchDriver", DriverID: d.id, Cores: d.cores, Memory: d.mem, Desc: d.desc})
				logf("INFO Master: Launching driver %s on worker %s", d.id, w.id)
				break
			}
		}
	}
	for _, a := range m.apps {
		want := a.maxCores
		if a.dynamic {
			if want == 0 || a.wanted < want {
				want = a.wanted
			}
			if want == 0 {
				if len(a.executors) == 0 {
					a.state = "WAITING"
				}
				continue
			}
		}
		for {
			granted := a.coresGranted()
			if want > 0 && granted >= want {
				break
			}
			progressed := false
			for _, w := range alive {
				if _, has := a.executors[w.id]; has {
					continue // one executor per worker per app, enough for the stand-in
				}
				fc, fm := m.freeLocked(w)
				if fm < a.memPerExecutor || fc < 1 {
					continue
				}
				cores := fc
				if a.coresPerExecutor > 0 {
					if fc < a.coresPerExecutor {
						continue
					}
					cores = a.coresPerExecutor
				}
				if want > 0 && cores > want-a.coresGranted() {
					cores = want - a.coresGranted()
				}
				a.nextExec++
				a.executors[w.id] = &executor{id: a.nextExec - 1, worker: w.id, cores: cores, mem: a.memPerExecutor}
				w.pending = append(w.pending, command{Kind: "launchExecutor", AppID: a.id, ExecID: a.nextExec - 1, Cores: cores, Memory: a.memPerExecutor})
				progressed = true
			}
			if !progressed {
				break
			}
		}
		if len(a.executors) > 0 {
			a.state = "RUNNING"
		} else {
			a.state = "WAITING"
		}
	}
}

func (m *Master) aliveWorkersLocked() []*worker {
	var out []*worker
	for _, w := range m.workers {
		if w.state == "ALIVE" {
			out = append(out, w)
		}
	}
	return out
}

// usedLocked sums what drivers and executors hold on a worker.
func (m *Master) usedLocked(w *worker) (cores, mem int) {
	for _, d := range m.drivers {
		if d.worker == w.id && d.state == "RUNNING" {
			cores += d.cores
			mem += d.mem
		}
	}
	for _, a := range m.apps {
		if e, ok := a.executors[w.id]; ok {
			cores += e.cores
			mem += e.mem
		}
	}
	return
}

func (m *Master) freeLocked(w *worker) (cores, mem int) {
	c, mm := m.usedLocked(w)
	return w.cores - c, w.memory - mm
}

func authorized(r *http.Request, secret string) bool {
	return secret == "" || r.Header.Get(secretHeader) == secret
}

func (m *Master) rpcHandler() http.Handler {
	mux := http.NewServeMux()
	// A worker holds this request open for as long as it lives, as Spark's RPC holds a connection:
	// when it closes, the master drops the worker at once (Master.onDisconnected), long before
	// spark.worker.timeout.
	mux.HandleFunc("/connect", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r, m.secret) {
			http.Error(w, "authentication failed", http.StatusForbidden)
			return
		}
		id := r.URL.Query().Get("id")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		m.mu.Lock()
		defer m.mu.Unlock()
		if wk := m.workerLocked(id); wk != nil && wk.state != "DEAD" {
			logf("INFO Master: %s got disassociated, removing it.", id)
			m.removeWorkerLocked(wk, "DEAD")
		}
	})
	handle := func(path string, fn func(body []byte) (any, int)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if !authorized(r, m.secret) {
				logf("ERROR TransportRequestHandler: authentication failed for a connection from %s", r.RemoteAddr)
				http.Error(w, "authentication failed", http.StatusForbidden)
				return
			}
			body, _ := io.ReadAll(r.Body)
			m.mu.Lock()
			out, status := fn(body)
			m.mu.Unlock()
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(out)
		})
	}
	handle("/register-worker", func(b []byte) (any, int) {
		var req struct {
			Host          string
			Port, UIPort  int
			Cores, Memory int
		}
		json.Unmarshal(b, &req)
		id := fmt.Sprintf("worker-%s-%s-%d", time.Now().Format("20060102150405"), req.Host, req.Port)
		w := &worker{id: id, host: req.Host, port: req.Port, uiPort: req.UIPort, cores: req.Cores, memory: req.Memory, state: "ALIVE", lastHeartbeat: time.Now()}
		m.workers = append(m.workers, w)
		logf("INFO Master: Registering worker %s:%d with %d cores, %d.0 MiB RAM", req.Host, req.Port, req.Cores, req.Memory)
		m.scheduleLocked()
		return map[string]string{"id": id, "masterWebUiUrl": fmt.Sprintf("http://%s:%d", m.host, m.uiPort)}, 200
	})
	handle("/heartbeat", func(b []byte) (any, int) {
		var req struct{ ID string }
		json.Unmarshal(b, &req)
		w := m.workerLocked(req.ID)
		if w == nil || w.state == "DEAD" {
			return map[string]any{"reconnect": true}, 200
		}
		w.lastHeartbeat = time.Now()
		cmds := w.pending
		w.pending = nil
		return map[string]any{"commands": cmds}, 200
	})
	handle("/worker-decommissioning", func(b []byte) (any, int) {
		var req struct{ ID string }
		json.Unmarshal(b, &req)
		if w := m.workerLocked(req.ID); w != nil && w.state == "ALIVE" {
			logf("INFO Master: Decommissioning worker %s", w.id)
			m.decommissionLocked(w)
		}
		return map[string]any{}, 200
	})
	handle("/worker-stopping", func(b []byte) (any, int) {
		var req struct{ ID string }
		json.Unmarshal(b, &req)
		if w := m.workerLocked(req.ID); w != nil && w.state != "DEAD" {
			logf("INFO Master: %s got disassociated, removing it.", w.id)
			m.removeWorkerLocked(w, "DEAD")
		}
		return map[string]any{}, 200
	})
	handle("/driver-state", func(b []byte) (any, int) {
		var req struct{ ID, State, Exception string }
		json.Unmarshal(b, &req)
		for _, d := range m.drivers {
			if d.id == req.ID {
				if terminal(req.State) {
					m.finishDriverLocked(d, req.State, req.Exception)
					m.scheduleLocked()
				} else {
					d.state = req.State
				}
				break
			}
		}
		return map[string]any{}, 200
	})
	handle("/submit-driver", func(b []byte) (any, int) {
		var desc driverDesc
		json.Unmarshal(b, &desc)
		d := m.submitLocked(desc)
		return map[string]any{"success": true, "driverId": d.id, "message": "Driver successfully submitted as " + d.id}, 200
	})
	handle("/kill-driver", func(b []byte) (any, int) {
		var req struct{ ID string }
		json.Unmarshal(b, &req)
		return m.killDriverLocked(req.ID), 200
	})
	handle("/driver-status", func(b []byte) (any, int) {
		var req struct{ ID string }
		json.Unmarshal(b, &req)
		if d := m.findDriverLocked(req.ID); d != nil {
			return map[string]any{"found": true, "state": d.state, "worker": d.worker, "exception": d.exception}, 200
		}
		return map[string]any{"found": false}, 200
	})
	handle("/register-app", func(b []byte) (any, int) {
		var req struct {
			Name, User             string
			MaxCores, CoresPerExec int
			MemPerExecutor         int
		}
		json.Unmarshal(b, &req)
		a := &app{id: fmt.Sprintf("app-%s-%04d", time.Now().Format("20060102150405"), m.nextApp), name: req.Name, user: req.User,
			start: time.Now(), state: "WAITING", maxCores: req.MaxCores, coresPerExecutor: req.CoresPerExec,
			memPerExecutor: max(req.MemPerExecutor, 1), executors: map[string]*executor{}, submitDate: time.Now().Format("Mon Jan 02 15:04:05 MST 2006")}
		m.nextApp++
		m.apps = append(m.apps, a)
		logf("INFO Master: Registered app %s with ID %s", a.name, a.id)
		m.scheduleLocked()
		return map[string]string{"id": a.id}, 200
	})
	handle("/app-cores", func(b []byte) (any, int) {
		var req struct {
			ID     string
			Wanted *int
		}
		json.Unmarshal(b, &req)
		for _, a := range m.apps {
			if a.id != req.ID {
				continue
			}
			if req.Wanted != nil {
				a.dynamic, a.wanted = true, *req.Wanted
				m.releaseLocked(a)
				m.scheduleLocked()
			}
			return map[string]any{"cores": a.coresGranted(), "state": a.state}, 200
		}
		return map[string]any{"cores": 0, "state": "KILLED"}, 200
	})
	handle("/unregister-app", func(b []byte) (any, int) {
		var req struct{ ID, State string }
		json.Unmarshal(b, &req)
		m.finishAppLocked(req.ID, req.State)
		return map[string]any{}, 200
	})
	return mux
}

func (m *Master) submitLocked(desc driverDesc) *driver {
	d := &driver{id: fmt.Sprintf("driver-%s-%04d", time.Now().Format("20060102150405"), m.nextDriver), start: time.Now(),
		state: "SUBMITTED", cores: max(desc.Cores, 1), mem: max(desc.MemoryMiB, 1), worker: "None", mainClass: desc.MainClass, desc: desc}
	m.nextDriver++
	m.drivers = append(m.drivers, d)
	logf("INFO Master: Driver submitted org.apache.spark.deploy.worker.DriverWrapper")
	m.scheduleLocked()
	return d
}

func itoa(n int) string { return strconv.Itoa(n) }

// releaseLocked models dynamic allocation giving back executors: once an application has held
// more cores than it wants for spark.dynamicAllocation.executorIdleTimeout, its surplus executors
// go, newest first.
func (m *Master) releaseLocked(a *app) {
	if a.coresGranted() <= a.wanted {
		a.surplusSince = time.Time{}
		return
	}
	if a.surplusSince.IsZero() {
		a.surplusSince = time.Now()
		return
	}
	timeout := 60 * time.Second
	if d, err := time.ParseDuration(m.conf["spark.dynamicAllocation.executorIdleTimeout"]); err == nil {
		timeout = d
	}
	if time.Since(a.surplusSince) < timeout {
		return
	}
	for a.coresGranted() > a.wanted && len(a.executors) > 0 {
		var newest *executor
		for _, e := range a.executors {
			if newest == nil || e.id > newest.id {
				newest = e
			}
		}
		if w := m.workerLocked(newest.worker); w != nil {
			w.pending = append(w.pending, command{Kind: "killExecutor", AppID: a.id, ExecID: newest.id})
		}
		delete(a.executors, newest.worker)
		logf("INFO Master: Removing executor %s/%d because it is idle (dynamic allocation)", a.id, newest.id)
	}
	a.surplusSince = time.Time{}
}

func (m *Master) workerLocked(id string) *worker {
	for _, w := range m.workers {
		if w.id == id {
			return w
		}
	}
	return nil
}

func (m *Master) findDriverLocked(id string) *driver {
	for _, d := range append(append([]*driver{}, m.drivers...), m.completedDrv...) {
		if d.id == id {
			return d
		}
	}
	return nil
}

func (m *Master) killDriverLocked(id string) map[string]any {
	for _, d := range m.drivers {
		if d.id != id {
			continue
		}
		logf("INFO Master: Asked to kill driver %s", id)
		if d.state == "SUBMITTED" {
			m.finishDriverLocked(d, "KILLED", "")
		} else if w := m.workerLocked(d.worker); w != nil {
			w.pending = append(w.pending, command{Kind: "killDriver", DriverID: id})
		}
		return map[string]any{"success": true, "message": "Kill request for " + id + " submitted"}
	}
	return map[string]any{"success": false, "message": "Driver " + id + " has already finished or does not exist"}
}

func (m *Master) finishAppLocked(id, state string) {
	for i, a := range m.apps {
		if a.id != id {
			continue
		}
		for _, e := range a.executors {
			if w := m.workerLocked(e.worker); w != nil {
				w.pending = append(w.pending, command{Kind: "killExecutor", AppID: a.id, ExecID: e.id})
			}
		}
		a.executors = map[string]*executor{}
		a.state, a.end = state, time.Now()
		m.apps = append(m.apps[:i], m.apps[i+1:]...)
		m.completedApps = append(m.completedApps, a)
		logf("INFO Master: Removing app %s", a.id)
		m.scheduleLocked()
		return
	}
}

func (m *Master) decommissionLocked(w *worker) {
	w.state = "DECOMMISSIONED"
	for _, a := range m.apps {
		delete(a.executors, w.id) // executors are told to decommission and go
	}
	m.scheduleLocked()
}

func (m *Master) uiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/json/", http.StatusFound) // Jetty's answer to the slash-less path
	})
	mux.HandleFunc("/json/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		m.mu.Lock()
		body := pretty(m.stateJSONLocked())
		m.mu.Unlock()
		w.Header().Set("Content-Type", "text/json;charset=utf-8")
		w.Write([]byte(body))
	})
	mux.HandleFunc("/workers/kill/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !m.decommissionAllow || !isLoopback(r.RemoteAddr) {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		r.ParseForm()
		n := 0
		m.mu.Lock()
		for _, h := range r.Form["host"] {
			for _, wk := range m.workers {
				if strings.EqualFold(wk.host, h) && wk.state == "ALIVE" {
					wk.decommission = true
					wk.pending = append(wk.pending, command{Kind: "decommission"})
					m.decommissionLocked(wk)
					n++
				}
			}
		}
		m.mu.Unlock()
		if n == 0 {
			w.WriteHeader(http.StatusNotFound)
		}
	})
	mux.HandleFunc("/driver/kill/", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		m.mu.Lock()
		m.killDriverLocked(r.Form.Get("id"))
		m.mu.Unlock()
		http.Redirect(w, r, "/", http.StatusFound)
	})
	mux.HandleFunc("/metrics/master/prometheus", func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		apps, waiting := len(m.apps), 0
		for _, a := range m.apps {
			if a.state == "WAITING" {
				waiting++
			}
		}
		gauges := map[string]int{"aliveWorkers": len(m.aliveWorkersLocked()), "apps": apps, "waitingApps": waiting, "workers": len(m.workers)}
		m.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain;charset=utf-8")
		writeGauges(w, "master", gauges)
	})
	// ApplicationSource: one source per registered application, named
	// application.<name>.<start millis>; its String gauge "status" is skipped by the servlet.
	mux.HandleFunc("/metrics/applications/prometheus", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		m.mu.Lock()
		var sources []string
		gauges := map[string]map[string]int{}
		for _, a := range m.apps {
			if terminal(a.state) {
				continue
			}
			key := fmt.Sprintf("%s_%d", metricKeyRe.ReplaceAllString(a.name, "_"), a.start.UnixMilli())
			sources = append(sources, key)
			gauges[key] = map[string]int{"cores": a.coresGranted(), "runtime_ms": int(now.Sub(a.start).Milliseconds())}
		}
		m.mu.Unlock()
		sort.Strings(sources)
		w.Header().Set("Content-Type", "text/plain;charset=utf-8")
		for _, src := range sources {
			writeGauges(w, "application_"+src, gauges[src])
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<html><title>Spark Master at %s</title></html>", m.url())
	})
	return mux
}

// listenService binds a service as Utils.startServiceOnPort does: on port, or when it is taken
// on the next ones, up to spark.port.maxRetries (16) above it; 0 means any free port. It logs
// Spark's lines, which tell the agent where the service went.
func listenService(host, name string, port int) (net.Listener, error) {
	for try := 0; try <= 16; try++ {
		p := port
		if port != 0 {
			p = port + try
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			logf("INFO Utils: Successfully started service '%s' on port %d.", name, l.Addr().(*net.TCPAddr).Port)
			return l, nil
		}
		if port == 0 {
			return nil, fmt.Errorf("java.net.BindException: Service '%s' could not bind: %v", name, err)
		}
		logf("WARN Utils: Service '%s' could not bind on port %d. Attempting port %d.", name, p, p+1)
	}
	return nil, fmt.Errorf("java.net.BindException: Address already in use: Service '%s' failed after 16 retries (starting from %d)! Consider explicitly setting the appropriate port for the service '%s' (for example spark.ui.port for SparkUI) to an available port or increasing spark.port.maxRetries.", name, port, name)
}

// metricKeyRe is what PrometheusServlet.normalizeKey replaces with '_'.
var metricKeyRe = regexp.MustCompile(`[^a-zA-Z0-9]`)

// writeGauges writes gauges in PrometheusServlet's format, sorted as Dropwizard sorts them.
func writeGauges(w http.ResponseWriter, prefix string, gauges map[string]int) {
	keys := make([]string, 0, len(gauges))
	for k := range gauges {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "metrics_%s_%s_Number{type=\"gauges\"} %d\n", prefix, k, gauges[k])
		fmt.Fprintf(w, "metrics_%s_%s_Value{type=\"gauges\"} %d\n", prefix, k, gauges[k])
	}
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// stateJSONLocked is JsonProtocol.writeMasterState, keys in Spark's order.
func (m *Master) stateJSONLocked() obj {
	var workers []obj
	cores, coresUsed, mem, memUsed, alive := 0, 0, 0, 0, 0
	var res []obj
	for _, w := range m.workers {
		uc, um := m.usedLocked(w)
		workers = append(workers, obj{
			{"id", w.id}, {"host", w.host}, {"port", w.port},
			{"webuiaddress", fmt.Sprintf("http://%s:%d", w.host, w.uiPort)},
			{"cores", w.cores}, {"coresused", uc}, {"coresfree", w.cores - uc},
			{"memory", w.memory}, {"memoryused", um}, {"memoryfree", w.memory - um},
			{"resources", obj{}}, {"resourcesused", obj{}}, {"resourcesfree", obj{}},
			{"state", w.state}, {"lastheartbeat", w.lastHeartbeat.UnixMilli()},
		})
		if w.state == "ALIVE" {
			alive++
			cores += w.cores
			coresUsed += uc
			mem += w.memory
			memUsed += um
			res = append(res, obj{})
		}
	}
	appJSON := func(list []*app) []obj {
		var out []obj
		for _, a := range list {
			end := time.Now()
			if !a.end.IsZero() {
				end = a.end
			}
			out = append(out, obj{
				{"id", a.id}, {"starttime", a.start.UnixMilli()}, {"name", a.name}, {"cores", a.coresGranted()},
				{"user", a.user}, {"memoryperexecutor", a.memPerExecutor}, {"memoryperslave", a.memPerExecutor},
				{"resourcesperexecutor", []obj{}}, {"resourcesperslave", []obj{}},
				{"submitdate", a.submitDate}, {"state", a.state}, {"duration", end.Sub(a.start).Milliseconds()},
			})
		}
		return out
	}
	driverJSON := func(list []*driver) []obj {
		var out []obj
		for _, d := range list {
			out = append(out, obj{
				{"id", d.id}, {"starttime", strconv.FormatInt(d.start.UnixMilli(), 10)}, {"state", d.state},
				{"cores", d.cores}, {"memory", d.mem}, {"resources", obj{}},
				{"submitdate", d.start.Format("Mon Jan 02 15:04:05 MST 2006")}, {"worker", d.worker}, {"mainclass", d.mainClass},
			})
		}
		return out
	}
	return obj{
		{"url", m.url()}, {"workers", nonNil(workers)}, {"aliveworkers", alive},
		{"cores", cores}, {"coresused", coresUsed}, {"memory", mem}, {"memoryused", memUsed},
		{"resources", nonNil(res)}, {"resourcesused", nonNil(res)},
		{"activeapps", nonNil(appJSON(m.apps))}, {"completedapps", nonNil(appJSON(m.completedApps))},
		{"activedrivers", nonNil(driverJSON(m.drivers))}, {"completeddrivers", nonNil(driverJSON(m.completedDrv))},
		{"status", "ALIVE"},
	}
}

func nonNil(o []obj) []obj {
	if o == nil {
		return []obj{}
	}
	return o
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("06/01/02 15:04:05"), fmt.Sprintf(format, args...))
}
