package monitoring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/daemon"
	"github.com/sparkplane/sparkplane/internal/fsutil"
)

// ErrNoPrometheus means Prometheus is not installed.
var ErrNoPrometheus = errors.New("prometheus is not installed")

// FindPrometheus returns the Prometheus binary: bin when given, else prometheus on PATH.
func FindPrometheus(bin string) (string, error) {
	if bin == "" {
		bin = "prometheus"
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("%w (looked for %s: install it with your package manager, e.g. apt-get install prometheus, or pass --prometheus PATH)", ErrNoPrometheus, bin)
	}
	return p, nil
}

// Server is a Prometheus that sparkplane runs.
type Server struct {
	URL string
	*daemon.Process
}

// ServerOptions say how to run Prometheus.
type ServerOptions struct {
	Bin       string // the binary, from FindPrometheus
	Dir       string // the monitoring directory, with its configuration written
	Listen    string // host:port of its web UI and API
	Retention time.Duration
	// ReadyTimeout bounds the wait for Prometheus to be ready (default 3 minutes: it is waited on
	// as a process, so an exit ends the wait at once, and a loaded machine is slow).
	ReadyTimeout time.Duration
	// Login, when set, puts the web UI and API behind it (and TLS): for a Prometheus that
	// listens beyond loopback.
	Login *Login
}

// Login is Prometheus' web login: HTTP basic authentication over TLS, by Prometheus' own web
// configuration file (web.yml in the monitoring directory, holding a bcrypt hash only).
type Login struct {
	User, Password string
	// CertFile and KeyFile are the TLS certificate Prometheus serves: the cluster's
	// (agentapi.NewCertificate), whose PEM is CA.
	CertFile, KeyFile string
	CA                []byte
}

// WebConfigFile is Prometheus' web configuration, in the monitoring directory.
const WebConfigFile = "web.yml"

// Client is an HTTP client that trusts the login's certificate, and the function that signs a
// request with the login.
func (l *Login) Client() (*http.Client, func(*http.Request), error) {
	c, err := agentapi.PinnedClient(l.CA)
	if err != nil {
		return nil, nil, err
	}
	return c, func(r *http.Request) { r.SetBasicAuth(l.User, l.Password) }, nil
}

// writeWebConfig writes web.yml: the login's bcrypt hash and the TLS certificate.
func writeWebConfig(dir string, l *Login) (string, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(l.Password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash the Prometheus password: %w", err)
	}
	cfg := fmt.Sprintf(`# Written by sparkplane: Prometheus' login (a bcrypt hash) and TLS certificate.
tls_server_config:
  cert_file: %q
  key_file: %q
  min_version: TLS12
basic_auth_users:
  %q: %q
`, l.CertFile, l.KeyFile, l.User, hash)
	path := filepath.Join(dir, WebConfigFile)
	return path, fsutil.WriteFileAtomic(path, []byte(cfg), 0o600)
}

// StartPrometheus runs Prometheus on a monitoring directory and returns once it is ready.
// Its output goes to prometheus.log in the directory.
func StartPrometheus(ctx context.Context, o ServerOptions) (*Server, error) {
	if o.Retention <= 0 {
		o.Retention = 15 * 24 * time.Hour
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 3 * time.Minute
	}
	// Prometheus would say so only in its log; say it plainly.
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s for Prometheus (%v); choose another port with --port", o.Listen, err)
	}
	l.Close()
	args := []string{
		"--config.file=" + filepath.Join(o.Dir, ConfigFile),
		"--storage.tsdb.path=" + filepath.Join(o.Dir, DataDir),
		"--storage.tsdb.retention.time=" + promDuration(o.Retention),
		"--web.listen-address=" + o.Listen,
	}
	client, sign, scheme := &http.Client{}, func(*http.Request) {}, "http"
	if o.Login != nil {
		web, err := writeWebConfig(o.Dir, o.Login)
		if err != nil {
			return nil, err
		}
		if client, sign, err = o.Login.Client(); err != nil {
			return nil, err
		}
		args, scheme = append(args, "--web.config.file="+web), "https"
	}
	cmd := exec.Command(o.Bin, args...)
	cmd.Dir = o.Dir
	proc, err := daemon.Start("Prometheus", cmd, filepath.Join(o.Dir, LogFile))
	if err != nil {
		return nil, err
	}
	s := &Server{URL: scheme + "://" + o.Listen, Process: proc}
	if err := proc.WaitHTTPAs(ctx, client, s.URL+"/-/ready", sign, o.ReadyTimeout); err != nil {
		return nil, err
	}
	return s, nil
}

// Stop stops Prometheus, giving it 30s to close its storage cleanly.
func (s *Server) Stop() { s.Process.Stop(30 * time.Second) }

// promDuration writes a duration the way Prometheus' flags read it (no "h0m0s").
func promDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", max(1, d/time.Second))
}
