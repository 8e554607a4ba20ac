// Package agent is the daemon that runs on every node of a cluster (`sparkplane agent`). It
// supervises the node's Spark daemon and serves an HTTP API authenticated by the cluster's token.
// The agent on the master node is the cluster's controller: it owns the Spark master, submits and
// tracks jobs, registers worker agents, adds and removes workers through the provider, and
// enforces the cluster's lifetime by destroying it.
package agent

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/fsutil"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/version"
)

// Deps are what an agent gets from outside its configuration.
type Deps struct {
	// Providers makes the cluster's provider, for the master's add, remove and self-destroy.
	Providers *provider.Registry
	// Now is the clock (time.Now in production).
	Now func() time.Time
	Log *slog.Logger
	// PollInterval is how often the master's state is read (default 1s).
	PollInterval time.Duration
	// HeartbeatInterval is how often worker agents re-register (default 2s).
	HeartbeatInterval time.Duration
	// Grace is how long a Spark daemon may take to stop after SIGTERM (default 30s).
	Grace time.Duration
	// Started, when set, is told the API's URL once it serves (the EC2 bootstrap publishes it).
	Started func(apiURL string)
	// Interruptions, on a worker, are notices that its node is going away (spot interruptions,
	// terminations by an autoscaling group): the worker decommissions and reports it.
	Interruptions <-chan agentapi.Interruption
}

func (d *Deps) defaults() {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if d.PollInterval == 0 {
		d.PollInterval = time.Second
	}
	if d.HeartbeatInterval == 0 {
		d.HeartbeatInterval = 2 * time.Second
	}
	if d.Grace == 0 {
		d.Grace = 30 * time.Second
	}
}

// LoadConfig reads an agent configuration file.
func LoadConfig(path string) (*agentapi.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	var c agentapi.Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	if c.Role != agentapi.RoleMaster && c.Role != agentapi.RoleWorker {
		return nil, fmt.Errorf("agent config %s: role must be master or worker, not %q", path, c.Role)
	}
	return &c, nil
}

// role is the part of an agent that differs between master and worker.
type role interface {
	routes(mux *http.ServeMux)
	// supervisor is the Spark daemon's supervisor, nil before it exists.
	supervisor() *Supervisor
	// collectors are the role's metrics.
	collectors() []prometheus.Collector
	// run works until ctx ends or the role decides the agent should stop (self-destroy).
	run(ctx context.Context, stop context.CancelFunc)
}

// Run runs an agent until ctx ends (or the cluster destroys itself), then stops the Spark daemon
// and returns.
func Run(ctx context.Context, cfg *agentapi.Config, deps Deps) error {
	deps.defaults()
	tokenBytes, err := os.ReadFile(cfg.TokenFile)
	if err != nil {
		return fmt.Errorf("read the cluster token: %w", err)
	}
	token := strings.TrimSpace(string(tokenBytes))
	if token == "" {
		return fmt.Errorf("the cluster token in %s is empty", cfg.TokenFile)
	}
	dist, err := spark.OpenHome(cfg.SparkHome)
	if err != nil {
		return err
	}
	var s3a *spark.Connector
	if cfg.S3AConnector != "" {
		if s3a, err = spark.OpenConnector(cfg.S3AConnector); err != nil {
			return fmt.Errorf("the S3A connector: %w", err)
		}
	}
	for _, d := range []string{"conf", "logs", "work", "tmp"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return err
		}
	}
	raw, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("agent API: %w", err)
	}
	var l net.Listener = guard(raw)
	scheme := "http"
	httpClient := &http.Client{Timeout: 30 * time.Second}
	if cfg.TLS != nil {
		pair, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			l.Close()
			return fmt.Errorf("the agent's TLS certificate: %w", err)
		}
		certPEM, err := os.ReadFile(cfg.TLS.Cert)
		if err != nil {
			l.Close()
			return err
		}
		if httpClient, err = agentapi.PinnedClient(certPEM); err != nil {
			l.Close()
			return err
		}
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	base := scheme + "://" + advertised(l.Addr().String(), cfg.Host)
	n := &node{cfg: cfg, deps: deps, token: token, dist: dist, s3a: s3a, apiURL: base, http: httpClient, log: deps.Log.With("node", cfg.NodeID)}

	var r role
	if cfg.Role == agentapi.RoleMaster {
		r, err = newMaster(n)
	} else {
		r, err = newWorker(n)
	}
	if err != nil {
		l.Close()
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, _ *http.Request) {
		closeAfter(w) // anyone may ask; no one keeps the connection for it
		writeJSON(w, http.StatusOK, agentapi.Health{OK: true, Role: cfg.Role, Version: version.String()})
	})
	// Shutdown stops this agent and its Spark daemon gracefully; it does not destroy the cluster.
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, _ *http.Request) {
		n.log.Info("shutdown requested through the API")
		writeJSON(w, http.StatusAccepted, struct{}{})
		stop()
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.registry(r.supervisor, r.collectors()...),
		promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelWarn)}))
	r.routes(mux)
	srv := newServer(n.authenticate(mux))

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("agent API stopped", "err", err)
			stop()
		}
	})
	if err := writeEndpoint(cfg.Dir, agentapi.Endpoint{URL: base, PID: os.Getpid(), StartedAt: deps.Now()}); err != nil {
		srv.Close()
		wg.Wait()
		return err
	}
	n.log.Info("agent started", "role", cfg.Role, "api", base, "version", version.String())
	if deps.Started != nil {
		deps.Started(base)
	}
	r.run(ctx, stop)

	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	wg.Wait()
	os.Remove(filepath.Join(cfg.Dir, agentapi.EndpointFile))
	n.log.Info("agent stopped")
	return nil
}

// node is what both roles share.
type node struct {
	cfg    *agentapi.Config
	deps   Deps
	token  string
	dist   *spark.Distribution
	s3a    *spark.Connector // nil for a cluster whose jobs do not use S3
	apiURL string
	http   *http.Client // for calls to other agents: pinned TLS when the API is HTTPS
	log    *slog.Logger
}

// client is a client for another agent of the cluster.
func (n *node) client(baseURL string) *agentapi.Client {
	return &agentapi.Client{BaseURL: baseURL, Token: n.token, HTTP: n.http}
}

// advertised is the address others reach the API at: the node's host with the bound port, when
// the API listens on every interface.
func advertised(bound, host string) string {
	h, port, err := net.SplitHostPort(bound)
	if err != nil || host == "" {
		return bound
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort(host, port)
	}
	return bound
}

// sparkEnv is the environment of the node's Spark processes.
func (n *node) sparkEnv() spark.NodeEnv {
	return spark.NodeEnv{
		JavaHome: n.cfg.JavaHome,
		ConfDir:  filepath.Join(n.cfg.Dir, "conf"),
		LogDir:   filepath.Join(n.cfg.Dir, "logs"),
		LocalIP:  n.cfg.Host,
		WorkDir:  filepath.Join(n.cfg.Dir, "work"),
		// Spark's scratch space; made at start with the node's other directories.
		LocalDirs:     filepath.Join(n.cfg.Dir, "tmp"),
		DistClassPath: n.s3aClassPath(),
	}
}

func (n *node) s3aClassPath() string {
	if n.s3a == nil {
		return ""
	}
	return n.s3a.ClassPath()
}

// s3aConf is how the node's Spark reaches S3: storage.endpoint, else the AWS endpoint the spec
// gives (a test's moto), with the region of an AWS cluster.
func (n *node) s3aConf() *spark.S3AConf {
	if n.s3a == nil {
		return nil
	}
	st := n.cfg.Spec.Storage
	conf := &spark.S3AConf{CredentialsProvider: n.s3a.CredentialsProvider(), Endpoint: st.Endpoint, PathStyle: st.PathStyle}
	if a := n.cfg.Spec.AWS; a != nil {
		conf.Region = a.Region
		if conf.Endpoint == "" && a.Endpoint != "" {
			conf.Endpoint, conf.PathStyle = a.Endpoint, true
		}
	}
	return conf
}

func (n *node) secret() string {
	if n.cfg.Spec.Spark.Authenticate {
		return n.token
	}
	return ""
}

func (n *node) settings() spark.Settings {
	pol := n.cfg.Spec.Autoscale.Policy
	return spark.Settings{Authenticate: n.cfg.Spec.Spark.Authenticate, EventLogDir: n.cfg.EventLogDir, User: n.cfg.Spec.Spark.Conf, S3A: n.s3aConf(),
		Autoscale: pol != "" && pol != spec.PolicyOff}
}

// authenticate lets /v1/health through and requires the cluster token everywhere else.
func (n *node) authenticate(next http.Handler) http.Handler {
	want := []byte("Bearer " + n.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/health" {
			next.ServeHTTP(w, r)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			closeAfter(w)
			writeError(w, http.StatusUnauthorized, "missing or wrong cluster token", "")
			return
		}
		trust(r)
		next.ServeHTTP(w, r)
	})
}

// decodeBody reads a JSON request body of at most 1 MiB.
func decodeBody(r *http.Request, v any) error {
	return json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg, hint string) {
	writeJSON(w, status, agentapi.Error{Error: msg, Hint: hint})
}

// writeEndpoint writes the endpoint file atomically, so a reader never sees half of it.
func writeEndpoint(dir string, e agentapi.Endpoint) error {
	b, _ := json.Marshal(e)
	return fsutil.WriteFileAtomic(filepath.Join(dir, agentapi.EndpointFile), b, 0o644)
}

// freePort asks the kernel for a free TCP port on host.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
