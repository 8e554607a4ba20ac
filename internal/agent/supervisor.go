package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
)

// Supervisor keeps one daemon running: it starts it, restarts it with exponential backoff when it
// exits, and stops it on cancellation with SIGTERM to its process group, then SIGKILL after Grace.
type Supervisor struct {
	Name       string
	Argv       []string
	Env        []string
	Dir        string
	Output     io.Writer // the daemon's stdout and stderr
	Grace      time.Duration
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Healthy is how long a run must last for the backoff to start over.
	Healthy time.Duration
	// OnExit, when set, is told of every unexpected exit.
	OnExit func(err error, restarts int)

	mu        sync.Mutex
	cmd       *exec.Cmd
	restarts  int
	startedAt time.Time
	lastErr   string
}

func (s *Supervisor) defaults() {
	if s.Grace == 0 {
		s.Grace = 30 * time.Second
	}
	if s.MinBackoff == 0 {
		s.MinBackoff = time.Second
	}
	if s.MaxBackoff == 0 {
		s.MaxBackoff = 30 * time.Second
	}
	if s.Healthy == 0 {
		s.Healthy = time.Minute
	}
	if s.Output == nil {
		s.Output = io.Discard
	}
}

// Run supervises until ctx ends, then stops the daemon and returns.
func (s *Supervisor) Run(ctx context.Context) {
	s.defaults()
	backoff := s.MinBackoff
	for {
		cmd := exec.Command(s.Argv[0], s.Argv[1:]...)
		cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = s.Env, s.Dir, s.Output, s.Output
		cmd.SysProcAttr = childAttr()
		err := cmd.Start()
		var done chan error
		if err == nil {
			s.mu.Lock()
			s.cmd, s.startedAt = cmd, time.Now()
			s.mu.Unlock()
			done = make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-ctx.Done():
				s.stop(cmd, done)
				return
			case err = <-done:
			}
			if err == nil {
				err = errors.New("exited with status 0")
			}
		}
		s.mu.Lock()
		ran := time.Since(s.startedAt)
		s.cmd = nil
		s.restarts++
		s.lastErr = fmt.Sprintf("%s: %v", s.Name, err)
		restarts := s.restarts
		s.mu.Unlock()
		if s.OnExit != nil {
			s.OnExit(err, restarts)
		}
		if done != nil && ran >= s.Healthy {
			backoff = s.MinBackoff
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, s.MaxBackoff)
	}
}

// stop sends SIGTERM to the daemon's process group and SIGKILL if it outlives Grace.
func (s *Supervisor) stop(cmd *exec.Cmd, done <-chan error) {
	pgid := cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(s.Grace):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	// Children that left the group's leader behind are ended too.
	syscall.Kill(-pgid, syscall.SIGKILL)
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
}

// Signal sends sig to the daemon process itself (not its group).
func (s *Supervisor) Signal(sig os.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return errors.New(s.Name + " is not running")
	}
	return s.cmd.Process.Signal(sig)
}

// State reports the daemon's state.
func (s *Supervisor) State() agentapi.Daemon {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := agentapi.Daemon{Restarts: s.restarts, LastError: s.lastErr}
	if s.cmd != nil && s.cmd.Process != nil {
		d.Running, d.PID, d.StartedAt = true, s.cmd.Process.Pid, s.startedAt
	}
	return d
}

// rotatingFile is an append-only log that keeps one previous file when it grows past max bytes.
type rotatingFile struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
}

func openRotating(path string, max int64) (*rotatingFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	st, _ := f.Stat()
	return &rotatingFile{path: path, max: max, f: f, size: st.Size()}, nil
}

func (r *rotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.size+int64(len(p)) > r.max && r.size > 0 {
		r.f.Close()
		os.Rename(r.path, r.path+".1")
		f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return 0, err
		}
		r.f, r.size = f, 0
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *rotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
