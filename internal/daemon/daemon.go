// Package daemon runs a server program in the foreground of a sparkplane command (Prometheus,
// Spark's history server): started in its own process group with its output in a log file,
// waited for until it answers over HTTP, and stopped with SIGTERM, then SIGKILL.
package daemon

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/sparkplane/sparkplane/internal/fsutil"
)

// Process is a running server.
type Process struct {
	Name string
	Log  string // its output
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts cmd with its output appended to logPath. The process gets its own group, so that
// a Ctrl-C reaches sparkplane alone, which then stops it in order.
func Start(name string, cmd *exec.Cmd, logPath string) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// WaitHTTP waits until a GET of url answers 200. It gives up, stopping the process, when the
// process exits or timeout passes, with the end of its log in the error.
func (p *Process) WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	return p.WaitHTTPAs(ctx, &http.Client{}, url, nil, timeout)
}

// WaitHTTPAs is WaitHTTP through client (its TLS trust), each request signed by sign when not
// nil (a login).
func (p *Process) WaitHTTPAs(ctx context.Context, client *http.Client, url string, sign func(*http.Request), timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := *client
	c.Timeout = 2 * time.Second
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if sign != nil {
			sign(req)
		}
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited at start (%v); its log %s ends:\n%s", p.Name, p.err, p.Log, p.tail())
		case <-ctx.Done():
			p.Stop(10 * time.Second)
			return fmt.Errorf("%s did not answer at %s within %s; its log %s ends:\n%s", p.Name, url, timeout, p.Log, p.tail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *Process) tail() string {
	s, err := fsutil.Tail(p.Log, 10)
	if err != nil {
		return err.Error()
	}
	return s
}

// Done is closed when the process exits.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process exited, once Done is closed.
func (p *Process) Err() error { return p.err }

// Stop sends SIGTERM to the process group and SIGKILL after grace.
func (p *Process) Stop(grace time.Duration) {
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}
