package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
)

// JobSpec is a job as the user gives it: local files are uploaded, URLs are passed on.
type JobSpec struct {
	Application string // a local file or a URL; empty with Git
	Git         *agentapi.Git
	Class       string
	Name        string
	Conf        map[string]string
	Args        []string
	PyFiles     []string
	Jars        []string
	Files       []string
}

// isURL reports whether s names a remote resource rather than a file here.
func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && len(u.Scheme) > 1 && (u.Host != "" || u.Scheme == "local" || u.Scheme == "file" || u.Opaque != "" || strings.HasPrefix(s, u.Scheme+":/"))
}

// request turns a JobSpec into the agent's request and the files to upload.
func (js JobSpec) request() (agentapi.JobRequest, map[string]string, error) {
	req := agentapi.JobRequest{Name: js.Name, Git: js.Git, Class: js.Class, Conf: js.Conf, Args: js.Args}
	uploads := map[string]string{}
	add := func(what, p string) (string, error) {
		if isURL(p) {
			return p, nil
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		st, err := os.Stat(abs)
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", what, p, errors.Unwrap(err))
		}
		if st.IsDir() {
			return "", fmt.Errorf("%s %s is a directory; zip it (for --py-files) or give a file", what, p)
		}
		name := filepath.Base(abs)
		if prev, ok := uploads[name]; ok && prev != abs {
			return "", fmt.Errorf("two files are named %s (%s and %s); rename one", name, prev, abs)
		}
		uploads[name] = abs
		return name, nil
	}
	var err error
	if js.Application != "" {
		if req.Resource, err = add("application", js.Application); err != nil {
			return req, nil, err
		}
	}
	for _, l := range []struct {
		what string
		in   []string
		out  *[]string
	}{{"--py-files", js.PyFiles, &req.PyFiles}, {"--jars", js.Jars, &req.Jars}, {"--files", js.Files, &req.Files}} {
		for _, p := range l.in {
			name, err := add(l.what, p)
			if err != nil {
				return req, nil, err
			}
			*l.out = append(*l.out, name)
		}
	}
	return req, uploads, nil
}

// Submit hands a job to the cluster and records it.
func (m *Manager) Submit(ctx context.Context, ref Ref, js JobSpec) (*state.Job, error) {
	req, uploads, err := js.request()
	if err != nil {
		return nil, err
	}
	client, _, err := m.connect(ctx, ref)
	if err != nil {
		return nil, err
	}
	job, err := client.Submit(ctx, req, uploads)
	if err != nil {
		return nil, fmt.Errorf("submit to %s: %w", ref.Name, err)
	}
	m.Store.PutJob(ctx, *job)
	return job, nil
}

// Jobs lists a cluster's jobs, newest first, from the history (brought up to date when the
// cluster answers). With an empty name it lists every cluster's.
func (m *Manager) Jobs(ctx context.Context, ref Ref, limit int) ([]state.Job, error) {
	if ref.Name != "" {
		if client, _, err := m.connect(ctx, ref); err == nil {
			if jobs, err := client.Jobs(ctx); err == nil {
				m.syncJobs(ctx, jobs)
			}
		}
	}
	return m.Store.ListJobs(ctx, ref.Name, limit)
}

// Job returns one job: from the cluster when it answers, else from the history.
func (m *Manager) Job(ctx context.Context, ref Ref, id string) (*state.Job, error) {
	if client, _, err := m.connect(ctx, ref); err == nil {
		if j, err := client.Job(ctx, id); err == nil {
			m.Store.PutJob(ctx, *j)
			return j, nil
		}
	}
	j, err := m.Store.GetJob(ctx, id)
	if err != nil || (ref.Name != "" && j.Cluster != ref.Name) {
		return nil, fmt.Errorf("no job %s in cluster %s: %w", id, ref.Name, state.ErrNotFound)
	}
	return j, nil
}

// Kill stops a job.
func (m *Manager) Kill(ctx context.Context, ref Ref, id string) (*state.Job, error) {
	client, _, err := m.connect(ctx, ref)
	if err != nil {
		return nil, err
	}
	j, err := client.Kill(ctx, id)
	if err != nil {
		return nil, err
	}
	m.Store.PutJob(ctx, *j)
	return j, nil
}

// Events lists what happened to a cluster, oldest first.
func (m *Manager) Events(ctx context.Context, ref Ref, limit int) ([]state.Event, error) {
	return m.Store.ListEvents(ctx, ref.Name, limit)
}

// logReader follows one log stream of a job from where it last stopped.
type logReader struct {
	client *agentapi.Client
	job    string
	stream string
	offset int64
	w      io.Writer
	gone   bool
}

// drain copies what is there now; done reports that nothing more will come.
func (l *logReader) drain(ctx context.Context) (done bool, err error) {
	if l.w == nil || l.gone {
		return true, nil
	}
	for {
		c, err := l.client.Logs(ctx, l.job, l.stream, l.offset)
		if err != nil {
			var ae *agentapi.APIError
			if errors.As(err, &ae) && ae.Status == http.StatusGone {
				l.gone = true
				return true, err
			}
			return false, err
		}
		if len(c.Data) > 0 {
			if _, err := l.w.Write(c.Data); err != nil {
				return false, err
			}
		}
		l.offset = c.Next
		if c.Done {
			return true, nil
		}
		if len(c.Data) == 0 {
			return false, nil
		}
	}
}

// Logs copies a job's log to w; with follow, until the job ends.
func (m *Manager) Logs(ctx context.Context, ref Ref, id, stream string, follow bool, w io.Writer) error {
	client, _, err := m.connect(ctx, ref)
	if err != nil {
		if errors.Is(err, errNotFoundAny) {
			return fmt.Errorf("%w; a job's logs live on its cluster and went with it (sparkplane run --save-logs keeps them)", err)
		}
		return err
	}
	lr := &logReader{client: client, job: id, stream: stream, w: w}
	for {
		done, err := lr.drain(ctx)
		if err != nil {
			return err
		}
		if done || !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(m.poll()):
		}
	}
}

var errNotFoundAny = &NotFoundError{}

// Is lets errors.Is match any NotFoundError against errNotFoundAny.
func (e *NotFoundError) Is(target error) bool { return target == errNotFoundAny }

// WaitOptions say what to show while waiting for a job.
type WaitOptions struct {
	Stdout, Stderr io.Writer       // the driver's output, streamed when set
	OnChange       func(state.Job) // called when the job's state changes
}

// Wait follows a job until it ends and returns its final record.
func (m *Manager) Wait(ctx context.Context, ref Ref, id string, o WaitOptions) (*state.Job, error) {
	client, _, err := m.connect(ctx, ref)
	if err != nil {
		return nil, err
	}
	streams := []*logReader{{client: client, job: id, stream: agentapi.Stdout, w: o.Stdout}, {client: client, job: id, stream: agentapi.Stderr, w: o.Stderr}}
	last := ""
	failures := 0
	for {
		j, err := client.Job(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if failures++; failures > 20 {
				return nil, fmt.Errorf("lost contact with %s while following job %s: %w", ref.Name, id, err)
			}
		} else {
			failures = 0
			if j.State != last {
				last = j.State
				m.Store.PutJob(ctx, *j)
				if o.OnChange != nil {
					o.OnChange(*j)
				}
			}
			allDone := true
			for _, s := range streams {
				done, err := s.drain(ctx)
				if err != nil && s.gone {
					m.progress().Warn(err.Error())
				}
				allDone = allDone && done
			}
			if state.JobDone(j.State) && allDone {
				return j, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(m.poll()):
		}
	}
}

// RunOptions change run.
type RunOptions struct {
	// Keep leaves the cluster running afterwards instead of destroying it.
	Keep bool
	Wait WaitOptions
	// SaveLogs, when set, is a directory where the driver's stdout and stderr are kept before the
	// cluster goes.
	SaveLogs string
	// OnEnd, when set, is told the job's outcome before the cluster is destroyed.
	OnEnd func(*state.Job)
}

// Run is a throw-away cluster: create, submit one job, follow it, keep its output, destroy. The
// cluster is destroyed however the job ends, on errors and on cancellation too, unless opts.Keep.
func (m *Manager) Run(ctx context.Context, c *spec.Cluster, js JobSpec, opts RunOptions) (job *state.Job, err error) {
	if _, _, err := js.request(); err != nil {
		return nil, err // check the job before making a cluster for it
	}
	if _, err := m.Create(ctx, c, CreateOptions{}); err != nil {
		return nil, err
	}
	ref := Ref{Name: c.Name, Provider: c.Provider}
	defer func() {
		if opts.Keep {
			m.progress().Info(fmt.Sprintf("kept %s running; sparkplane destroy %s removes it", c.Name, c.Name))
			return
		}
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if derr := m.Destroy(dctx, ref); derr != nil {
			err = errors.Join(err, fmt.Errorf("destroy after run: %w", derr))
		}
	}()
	j, err := m.Submit(ctx, ref, js)
	if err != nil {
		return nil, err
	}
	m.progress().Done(fmt.Sprintf("job %s submitted (%s mode)", j.ID, j.DeployMode))
	job, err = m.Wait(ctx, ref, j.ID, opts.Wait)
	if job != nil && opts.OnEnd != nil {
		opts.OnEnd(job)
	}
	if opts.SaveLogs != "" {
		if serr := m.saveLogs(ref, j.ID, opts.SaveLogs); serr != nil {
			m.progress().Warn("could not keep the job's logs: " + serr.Error())
		}
	}
	if err != nil && ctx.Err() != nil {
		// Interrupted: what the history knows is the best answer left.
		if last, gerr := m.Store.GetJob(context.Background(), j.ID); gerr == nil {
			job = last
		}
	}
	return job, err
}

func (m *Manager) saveLogs(ref Ref, id, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, s := range []string{agentapi.Stdout, agentapi.Stderr} {
		f, err := os.Create(filepath.Join(dir, id+"."+s))
		if err != nil {
			return err
		}
		err = m.Logs(ctx, ref, id, s, false, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	m.progress().Done(fmt.Sprintf("kept the driver's output in %s", filepath.Join(dir, id+".{stdout,stderr}")))
	return nil
}
