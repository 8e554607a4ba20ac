package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sparkplane/sparkplane/internal/daemon"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
)

// HistoryOptions say how to run Spark's history server for a cluster.
type HistoryOptions struct {
	Dir  string // its configuration and log
	Port int    // its web UI, on 127.0.0.1 (default 18080)
	// ReadyTimeout bounds the wait for it to answer (default 3 minutes: a JVM starting).
	ReadyTimeout time.Duration
	// Ready, when set, is told once the history server answers.
	Ready func(HistoryInfo)
	// SparkHome, when set, is the Spark to run it with (--spark-home); else the spec's
	// spark.home, else the Spark the cluster was made with if it is still there, else the
	// manager's usual search.
	SparkHome string
}

// HistoryInfo says where the history server is and what it found.
type HistoryInfo struct {
	Cluster      string `json:"cluster"`
	URL          string `json:"url"`
	EventLogs    string `json:"eventLogs"`
	Applications int    `json:"applications"`
	Log          string `json:"log"`
}

// History runs Spark's history server on a cluster's event logs until ctx ends. The cluster
// need not exist any more: its logs outlive it.
func (m *Manager) History(ctx context.Context, ref Ref, o HistoryOptions) error {
	if o.Port == 0 {
		o.Port = 18080
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 3 * time.Minute
	}
	p, c, err := m.specOf(ctx, ref)
	if err != nil {
		return err
	}
	logs := p.EventLogDir(ref.Name, c)
	if f, ok := p.(provider.EventLogFetcher); ok {
		pr := m.progress()
		pr.Start("copying the event logs of " + ref.Name)
		dir, n, err := f.FetchEventLogs(ctx, ref.Name)
		if err != nil {
			pr.Fail("could not copy the event logs")
			return err
		}
		pr.Done(fmt.Sprintf("copied %d new event log(s) to %s", n, dir))
		logs = "file://" + dir
	}
	if dir, ok := strings.CutPrefix(logs, "file://"); ok {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no event logs for %s in %s: its applications write them there as they run; submit a job first", ref.Name, dir)
		}
	}
	dist, err := m.historySpark(ctx, ref, c, o.SparkHome)
	if err != nil {
		return err
	}
	javaHome, warning, err := spark.FindJavaFor(os.Getenv, dist.Version)
	if err != nil {
		return err
	}
	if warning != "" {
		m.progress().Warn(warning)
	}
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port))
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s for the history server (%v); choose another port with --port", listen, err)
	}
	l.Close()
	env := spark.NodeEnv{JavaHome: javaHome, ConfDir: filepath.Join(o.Dir, "conf"), LogDir: filepath.Join(o.Dir, "logs"), LocalIP: "127.0.0.1"}
	if err := os.MkdirAll(env.LogDir, 0o755); err != nil {
		return err
	}
	if err := spark.WriteConf(env.ConfDir, spark.HistoryProperties(logs, o.Port), env); err != nil {
		return err
	}
	argv := dist.HistoryServerCommand(filepath.Join(env.ConfDir, "spark-defaults.conf"))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = spark.Environ(os.Environ(), env.Vars(), "")
	cmd.Dir = o.Dir
	pr := m.progress()
	pr.Start("starting Spark's history server on " + logs)
	proc, err := daemon.Start("the history server", cmd, filepath.Join(env.LogDir, "history-server.out"))
	if err != nil {
		pr.Fail("the history server did not start")
		return err
	}
	defer proc.Stop(30 * time.Second)
	url := "http://" + listen
	if err := proc.WaitHTTP(ctx, url+"/api/v1/applications", o.ReadyTimeout); err != nil {
		pr.Fail("the history server did not start")
		return err
	}
	info := HistoryInfo{Cluster: ref.Name, URL: url, EventLogs: logs, Log: proc.Log}
	info.Applications, _ = countApplications(ctx, url)
	pr.Done(fmt.Sprintf("history server at %s (%d application(s) so far)", url, info.Applications))
	if o.Ready != nil {
		o.Ready(info)
	}
	select {
	case <-ctx.Done():
		return nil
	case <-proc.Done():
		return fmt.Errorf("the history server exited (%v); see %s", proc.Err(), proc.Log)
	}
}

// specOf finds a cluster's provider and spec: from the provider while the cluster exists, else
// from the state's record of it.
// historySpark finds the Spark for a cluster's history server (HistoryOptions.SparkHome).
func (m *Manager) historySpark(ctx context.Context, ref Ref, c *spec.Cluster, flagHome string) (*spark.Distribution, error) {
	if flagHome != "" {
		d, err := spark.OpenHome(flagHome)
		if err != nil {
			return nil, fmt.Errorf("--spark-home: %w", err)
		}
		return d, nil
	}
	if c.Spark.Home == "" {
		if rec, err := m.Store.GetCluster(ctx, ref.Name); err == nil && rec.SparkHome != "" {
			d, err := spark.OpenHome(rec.SparkHome)
			if err == nil {
				m.progress().Done(fmt.Sprintf("Spark %s at %s (the one %s was made with)", d.Version, d.Home, ref.Name))
				return d, nil
			}
			m.progress().Warn(fmt.Sprintf("the Spark %s was made with is gone (%v); looking for another", ref.Name, err))
		}
	}
	return m.Spark(ctx, c)
}

func (m *Manager) specOf(ctx context.Context, ref Ref) (provider.Provider, *spec.Cluster, error) {
	p, err := m.resolve(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	if pc, err := p.Get(ctx, ref.Name); err == nil && pc.Spec != nil {
		return p, pc.Spec, nil
	} else if err != nil && !errors.Is(err, provider.ErrNotFound) {
		return nil, nil, err
	}
	rec, err := m.Store.GetCluster(ctx, ref.Name)
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil, &NotFoundError{Name: ref.Name, Provider: p.Name()}
	}
	if err != nil {
		return nil, nil, err
	}
	var c spec.Cluster
	if err := json.Unmarshal(rec.Spec, &c); err != nil {
		return nil, nil, fmt.Errorf("the state's record of %s: %w", ref.Name, err)
	}
	return p, &c, nil
}

// countApplications asks a history server how many applications it lists.
func countApplications(ctx context.Context, url string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/applications", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var apps []json.RawMessage
	err = json.NewDecoder(resp.Body).Decode(&apps)
	return len(apps), err
}
