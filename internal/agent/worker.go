package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/spark"
)

// worker is the agent role of a worker node: it learns the Spark master's address from the
// master's agent, runs the Spark worker, re-registers periodically, and serves its drivers' logs.
type worker struct {
	*node
	uiPort    int
	ui        *spark.UI
	master    *agentapi.Client
	daemon    *Supervisor
	daemonLog *rotatingFile

	mu             sync.Mutex
	sparkID        string
	executors      int
	decommissioned bool

	lastHeartbeat     time.Time
	heartbeatFailures int
	interrupted       string
}

func newWorker(n *node) (*worker, error) {
	if n.cfg.MasterAgent == "" {
		return nil, errors.New("worker agent config has no masterAgent")
	}
	w := &worker{node: n, master: n.client(n.cfg.MasterAgent)}
	var err error
	if w.uiPort, err = freePort(n.cfg.Host); err != nil {
		return nil, err
	}
	env := n.sparkEnv()
	if err := spark.WriteConf(env.ConfDir, spark.Properties(n.settings()), env); err != nil {
		return nil, err
	}
	if w.daemonLog, err = openRotating(filepath.Join(env.LogDir, "spark-worker.out"), 64<<20); err != nil {
		return nil, err
	}
	w.ui = &spark.UI{BaseURL: fmt.Sprintf("http://%s:%d", n.cfg.Host, w.uiPort), HTTP: &http.Client{Timeout: 5 * time.Second}}
	return w, nil
}

func (w *worker) registration() agentapi.Registration {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := agentapi.Registration{NodeID: w.cfg.NodeID, Agent: w.apiURL, SparkUI: w.ui.BaseURL, SparkID: w.sparkID, Executors: w.executors,
		Interrupted: w.interrupted}
	if w.daemon != nil {
		r.Daemon = w.daemon.State()
	}
	return r
}

func (w *worker) run(ctx context.Context, _ context.CancelFunc) {
	defer w.daemonLog.Close()
	// The Spark master's address comes from the master's agent; keep asking until it answers.
	var reply *agentapi.RegistrationReply
	since := w.deps.Now()
	for backoff := 200 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		var err error
		if reply, err = w.master.Register(ctx, w.registration()); err == nil {
			break
		}
		w.log.Warn("cannot reach the master's agent yet", "err", err)
		if limit, why := w.orphanLimit(w.deps.Now()); limit > 0 && w.deps.Now().Sub(since) >= limit {
			w.log.Error("stopping this worker: its master's agent has not answered since it started", "because", why)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
	env := w.sparkEnv()
	ws := w.cfg.Spec.Workers
	w.mu.Lock()
	w.lastHeartbeat = w.deps.Now()
	w.daemon = &Supervisor{
		Name: "spark worker",
		Argv: w.dist.WorkerCommand(spark.WorkerArgs{MasterURL: reply.MasterURL, Host: w.cfg.Host, WebUIPort: w.uiPort,
			Cores: ws.Cores, MemoryMiB: ws.MemoryMiB, WorkDir: env.WorkDir}),
		Env:    spark.Environ(os.Environ(), env.Vars(), w.secret()),
		Dir:    w.cfg.Dir,
		Output: &serviceLog{w: w.daemonLog, onPort: w.servicePort},
		Grace:  w.deps.Grace,
		OnExit: func(err error, restarts int) {
			w.log.Warn("the Spark worker exited", "err", err, "restarts", restarts)
		},
	}
	daemon := w.daemon
	w.mu.Unlock()
	daemonCtx, stopDaemon := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { daemon.Run(daemonCtx) })

	tick := time.NewTicker(w.deps.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			stopDaemon()
			wg.Wait()
			return
		case ev := <-w.deps.Interruptions:
			wg.Go(func() { w.interrupt(ctx, ev) })
		case <-tick.C:
			w.refresh(ctx)
			_, err := w.master.Register(ctx, w.registration())
			now := w.deps.Now()
			w.mu.Lock()
			if err != nil {
				w.heartbeatFailures++
			} else {
				w.lastHeartbeat = now
			}
			lost := now.Sub(w.lastHeartbeat)
			w.mu.Unlock()
			if err != nil {
				w.log.Warn("heartbeat to the master's agent failed", "err", err, "for", lost.Round(time.Second))
				if limit, why := w.orphanLimit(now); limit > 0 && lost >= limit {
					w.log.Error("stopping this worker: its master's agent has not answered for "+lost.Round(time.Second).String(), "because", why)
					stopDaemon()
					wg.Wait()
					return
				}
			}
		}
	}
}

// orphanLimit is how long this worker runs on while its master's agent does not answer, and why;
// 0 is for as long as it takes. No longer than the cluster's lifetime would let it live: past
// lifetime.maxAge, a minute; with lifetime.idleTimeout, that long (no job can have run through
// sparkplane meanwhile). On one host, where a master's agent that is gone stays gone (nothing
// restarts it), ten minutes.
func (w *worker) orphanLimit(now time.Time) (time.Duration, string) {
	lt := w.cfg.Spec.Lifetime
	var limit time.Duration
	var why string
	take := func(d time.Duration, reason string) {
		if limit == 0 || d < limit {
			limit, why = d, reason
		}
	}
	if lt.MaxAge > 0 && !w.cfg.CreatedAt.IsZero() && now.After(w.cfg.CreatedAt.Add(lt.MaxAge)) {
		take(time.Minute, fmt.Sprintf("the cluster is past its lifetime.maxAge (%s)", lt.MaxAge))
	}
	if lt.IdleTimeout > 0 {
		take(lt.IdleTimeout, fmt.Sprintf("the cluster's lifetime.idleTimeout is %s", lt.IdleTimeout))
	}
	if w.cfg.OneHost {
		take(10*time.Minute, "on one host a master's agent that stopped does not come back")
	}
	return limit, why
}

// refresh reads the Spark worker's own state.
func (w *worker) refresh(ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	w.mu.Lock()
	ui := w.ui
	w.mu.Unlock()
	s, err := ui.WorkerState(c)
	if err != nil {
		return
	}
	w.mu.Lock()
	if s.ID != "" {
		w.sparkID = s.ID
	}
	w.executors = len(s.Executors)
	w.mu.Unlock()
}

// servicePort learns where the Spark worker's web UI bound: Spark moves it up from the port
// asked for when that one is taken.
func (w *worker) servicePort(service string, port int) {
	if service != "WorkerUI" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if port != w.uiPort {
		w.log.Warn("the Spark worker's UI took another port", "asked", w.uiPort, "bound", port)
	}
	w.ui = &spark.UI{BaseURL: fmt.Sprintf("http://%s:%d", w.cfg.Host, port), HTTP: w.ui.HTTP}
}

func (w *worker) supervisor() *Supervisor {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.daemon
}

func (w *worker) collectors() []prometheus.Collector {
	return []prometheus.Collector{workerCollector{w}}
}

func (w *worker) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/status", func(rw http.ResponseWriter, r *http.Request) {
		reg := w.registration()
		w.mu.Lock()
		st := agentapi.WorkerNodeStatus{NodeID: reg.NodeID, SparkID: reg.SparkID, SparkUI: reg.SparkUI, Daemon: reg.Daemon,
			Executors: reg.Executors, Decommissioned: w.decommissioned}
		w.mu.Unlock()
		writeJSON(rw, http.StatusOK, st)
	})
	mux.HandleFunc("POST /v1/decommission", func(rw http.ResponseWriter, r *http.Request) {
		if err := w.decommission(); err != nil {
			writeError(rw, http.StatusConflict, err.Error(), "")
			return
		}
		writeJSON(rw, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("GET /v1/drivers/{id}/logs", func(rw http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		stream := r.URL.Query().Get("stream")
		if !driverIDRe.MatchString(id) || (stream != agentapi.Stdout && stream != agentapi.Stderr) {
			writeError(rw, http.StatusBadRequest, "bad driver id or stream", "a driver id is driver-<yyyyMMddHHmmss>-<n>; the stream stdout or stderr")
			return
		}
		offset, err := parseOffset(r)
		if err != nil {
			writeError(rw, http.StatusBadRequest, err.Error(), "")
			return
		}
		// DriverRunner keeps each driver's output in <work dir>/<driver id>/.
		chunk, err := readChunk(filepath.Join(w.sparkEnv().WorkDir, id, stream), offset)
		if err != nil {
			writeError(rw, http.StatusInternalServerError, err.Error(), "")
			return
		}
		rw.Header().Set(agentapi.HeaderOffset, fmt.Sprint(chunk.Next))
		rw.Write(chunk.Data)
	})
}

// interrupt handles notice that the node is going away: the Spark worker decommissions (its
// executors and shuffle blocks move away), the master's agent hears of it at once, and Done is
// called when nothing of Spark's is left here, or shortly before the deadline.
func (w *worker) interrupt(ctx context.Context, ev agentapi.Interruption) {
	defer ev.Done()
	w.log.Warn("this node is going away", "reason", ev.Reason, "deadline", ev.Deadline)
	w.mu.Lock()
	w.interrupted = ev.Reason
	already := w.decommissioned
	w.mu.Unlock()
	if !already {
		if err := w.decommission(); err != nil {
			w.log.Warn("decommission on interruption", "err", err)
		}
	}
	until := ev.Deadline.Add(-10 * time.Second)
	for {
		w.refresh(ctx)
		w.mu.Lock()
		left := w.executors
		w.mu.Unlock()
		// Done once no executor is left and the Spark master has marked the worker (or no
		// longer lists it, or cannot be asked): then nothing is lost by going.
		reply, err := w.master.Register(ctx, w.registration())
		known := err != nil || reply.SparkState != spark.WorkerAlive
		if (left == 0 && known) || !w.deps.Now().Before(until) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// driverIDRe keeps a driver id from naming a path outside the work dir.
// driverIDRe is the form of Spark's driver ids (Master.newDriverId: "driver-%s-%04d" of a
// yyyyMMddHHmmss time): nothing else may name a directory under the work dir.
var driverIDRe = regexp.MustCompile(`^driver-[0-9]{14}-[0-9]{4,}$`)

// decommission sends the Spark worker the signal it decommissions on. Spark then stops giving it
// work, moves its executors' blocks away and tells the master, which marks it DECOMMISSIONED.
func (w *worker) decommission() error {
	name := w.cfg.Spec.Spark.Conf["spark.worker.decommission.signal"]
	if name == "" {
		name = "PWR"
	}
	sig, ok := decommissionSignal[name]
	if !ok {
		return fmt.Errorf("spark.worker.decommission.signal %s is not a signal this system has", name)
	}
	w.mu.Lock()
	daemon := w.daemon
	w.mu.Unlock()
	if daemon == nil {
		return errors.New("the Spark worker has not started")
	}
	if err := daemon.Signal(sig); err != nil {
		return err
	}
	w.mu.Lock()
	w.decommissioned = true
	w.mu.Unlock()
	w.log.Info("decommissioning the Spark worker", "signal", name)
	return nil
}
