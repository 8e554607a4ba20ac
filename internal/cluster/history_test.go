package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/cluster/clustertest"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
)

// TestRealSparkHistory: the same with real Spark's event logs and its own history server.
func TestRealSparkHistory(t *testing.T) {
	t.Parallel() // beside TestRealSparkLifetimes, which mostly waits
	forEachLine(t, func(t *testing.T, r realEnv) {
		historyAfterDestroy(t, r.home, []cluster.JobSpec{
			{Application: r.jar, Class: busy, Args: []string{"2", "1"}}, // cluster mode
			{Application: r.pi, Args: []string{"2"}},                    // client mode
		})
	})
}

func historyAfterDestroy(t *testing.T, home string, jobs []cluster.JobSpec) {
	e := clustertest.NewEnv(t, home)
	e.M.ReadyTimeout = 3 * time.Minute
	ctx := context.Background()
	ref := cluster.Ref{Name: "hist"}
	if err := e.M.History(ctx, ref, cluster.HistoryOptions{Dir: t.TempDir()}); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("history of a cluster never made: %v", err)
	}
	t.Cleanup(func() { e.M.Destroy(context.Background(), ref) })
	if _, err := e.M.Create(ctx, clustertest.Spec(t, "name: hist\nworkers: {count: 1}\n"), cluster.CreateOptions{}); err != nil {
		t.Fatalf("%v\n%s", err, e.Rec)
	}
	var apps []string
	for _, js := range jobs {
		job, err := e.M.Submit(ctx, ref, js)
		if err != nil {
			t.Fatal(err)
		}
		j, err := e.M.Wait(ctx, ref, job.ID, cluster.WaitOptions{})
		if err != nil || j.State != state.JobFinished || j.AppID == "" {
			t.Fatalf("job: %+v %v", j, err)
		}
		apps = append(apps, j.AppID)
	}
	if err := e.M.Destroy(ctx, ref); err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(e.Root, "event-logs", "hist")
	for _, app := range apps {
		// Spark 4 rolls event logs by default: a directory eventlog_v2_<app> of event files.
		_, err1 := os.Stat(filepath.Join(logs, app))
		_, err2 := os.Stat(filepath.Join(logs, "eventlog_v2_"+app))
		if err1 != nil && err2 != nil {
			t.Errorf("event log of %s: %v", app, err1)
		}
	}
	if !strings.Contains(e.Rec.String(), "event logs stay in "+logs) {
		t.Errorf("destroy did not say where the event logs stay:\n%s", e.Rec)
	}

	// History runs on the Spark the cluster was made with; it does not look for (or download)
	// another.
	e.M.Spark = func(context.Context, *spec.Cluster) (*spark.Distribution, error) {
		return nil, errors.New("history looked for a Spark, though the cluster's is still here")
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	hctx, stop := context.WithCancel(ctx)
	ready := make(chan cluster.HistoryInfo, 1)
	done := make(chan error, 1)
	go func() {
		done <- e.M.History(hctx, ref, cluster.HistoryOptions{Dir: t.TempDir(), Port: port, ReadyTimeout: 2 * time.Minute,
			Ready: func(i cluster.HistoryInfo) { ready <- i }})
	}()
	var info cluster.HistoryInfo
	select {
	case info = <-ready:
	case err := <-done:
		t.Fatalf("history: %v", err)
	}
	if d, _ := spark.OpenHome(home); !strings.Contains(e.Rec.String(), fmt.Sprintf("Spark %s at %s (the one hist was made with)", d.Version, d.Home)) {
		t.Errorf("history did not say which Spark it runs on:\n%s", e.Rec)
	}
	if info.Applications != 2 || info.EventLogs != "file://"+logs || info.URL != "http://127.0.0.1:"+strconv.Itoa(port) {
		t.Errorf("history: %+v", info)
	}
	resp, err := http.Get(info.URL + "/api/v1/applications")
	if err != nil {
		t.Fatal(err)
	}
	var listed []struct {
		ID       string
		Attempts []struct{ Completed bool }
	}
	json.NewDecoder(resp.Body).Decode(&listed)
	resp.Body.Close()
	for _, app := range apps {
		found := false
		for _, a := range listed {
			found = found || (a.ID == app && len(a.Attempts) == 1 && a.Attempts[0].Completed)
		}
		if !found {
			t.Errorf("the history server does not list %s as completed: %+v", app, listed)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("history: %v", err)
	}
	if _, err := http.Get(info.URL); err == nil {
		t.Error("the history server still answers after History returned")
	}
}
