package monitoring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

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
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// ServerOptions say how to run Prometheus.
type ServerOptions struct {
	Bin       string // the binary, from FindPrometheus
	Dir       string // the monitoring directory, with its configuration written
	Listen    string // host:port of its web UI and API
	Retention time.Duration
	// ReadyTimeout bounds the wait for Prometheus to be ready (default 1 minute).
	ReadyTimeout time.Duration
}

// StartPrometheus runs Prometheus on a monitoring directory and returns once it is ready.
// Its output goes to prometheus.log in the directory.
func StartPrometheus(ctx context.Context, o ServerOptions) (*Server, error) {
	if o.Retention <= 0 {
		o.Retention = 15 * 24 * time.Hour
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = time.Minute
	}
	// Prometheus would say so only in its log; say it plainly.
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s for Prometheus (%v); choose another port with --port", o.Listen, err)
	}
	l.Close()
	logPath := filepath.Join(o.Dir, LogFile)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(o.Bin,
		"--config.file="+filepath.Join(o.Dir, ConfigFile),
		"--storage.tsdb.path="+filepath.Join(o.Dir, DataDir),
		"--storage.tsdb.retention.time="+promDuration(o.Retention),
		"--web.listen-address="+o.Listen,
	)
	cmd.Dir = o.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C reaches sparkplane, which stops Prometheus in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start Prometheus: %w", err)
	}
	s := &Server{URL: "http://" + o.Listen, cmd: cmd, done: make(chan struct{})}
	go func() { s.err = cmd.Wait(); close(s.done) }()

	ctx, cancel := context.WithTimeout(ctx, o.ReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("prometheus exited at start (%v); its log %s ends:\n%s", s.err, logPath, logTail(logPath))
		case <-ctx.Done():
			s.Stop()
			return nil, fmt.Errorf("prometheus was not ready after %s; its log %s ends:\n%s", o.ReadyTimeout, logPath, logTail(logPath))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Done is closed when Prometheus exits.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is why Prometheus exited, once Done is closed.
func (s *Server) Err() error { return s.err }

// Stop stops Prometheus: SIGTERM, so that it closes its storage cleanly, then SIGKILL after 30s.
func (s *Server) Stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

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

func logTail(path string) string {
	s, err := fsutil.Tail(path, 10)
	if err != nil {
		return err.Error()
	}
	return s
}
