package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestClusters(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	if _, err := s.GetCluster(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing cluster: %v", err)
	}
	c := Cluster{Name: "a", Provider: "local", Status: ClusterCreating, Spec: json.RawMessage(`{"name":"a"}`)}
	if err := s.PutCluster(ctx, c); err != nil {
		t.Fatal(err)
	}
	c.Status, c.Endpoint = ClusterRunning, json.RawMessage(`{"url":"http://127.0.0.1:1"}`)
	if err := s.PutCluster(ctx, c); err != nil {
		t.Fatal(err)
	}
	s.PutCluster(ctx, Cluster{Name: "b", Provider: "local", Status: ClusterDestroyed, Spec: json.RawMessage(`{}`)})
	got, err := s.GetCluster(ctx, "a")
	if err != nil || got.Status != ClusterRunning || string(got.Endpoint) != `{"url":"http://127.0.0.1:1"}` || got.CreatedAt.IsZero() {
		t.Fatalf("got %+v %v", got, err)
	}
	live, _ := s.ListClusters(ctx, false)
	all, _ := s.ListClusters(ctx, true)
	if len(live) != 1 || len(all) != 2 {
		t.Errorf("list: %d live, %d all", len(live), len(all))
	}
	if err := s.SetClusterStatus(ctx, "a", ClusterDestroyed); err != nil {
		t.Fatal(err)
	}
	if err := s.SetClusterStatus(ctx, "zz", ClusterDestroyed); !errors.Is(err, ErrNotFound) {
		t.Errorf("status of a missing cluster: %v", err)
	}
	s.DeleteCluster(ctx, "a")
	if _, err := s.GetCluster(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Error("delete")
	}
}

func TestJobs(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		cl := "a"
		if i%2 == 1 {
			cl = "b"
		}
		if err := s.PutJob(ctx, Job{ID: fmt.Sprintf("j-%d", i), Cluster: cl, Name: "pi", Resource: "pi.py", DeployMode: "client",
			State: JobSubmitted, SubmittedAt: base.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	code := 3
	j := Job{ID: "j-2", Cluster: "a", Name: "pi", Resource: "pi.py", Args: []string{"10"}, DeployMode: "client", State: JobFailed,
		SubmittedAt: base.Add(2 * time.Minute), StartedAt: base.Add(2*time.Minute + time.Second), FinishedAt: base.Add(3 * time.Minute),
		ExitCode: &code, Message: "boom", LogLocation: "/x"}
	if err := s.PutJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetJob(ctx, "j-2")
	if err != nil || got.State != JobFailed || *got.ExitCode != 3 || got.Args[0] != "10" || !got.FinishedAt.Equal(j.FinishedAt) {
		t.Fatalf("got %+v %v", got, err)
	}
	if d := got.Duration(time.Now()); d != 59*time.Second {
		t.Errorf("duration %v", d)
	}
	a, _ := s.ListJobs(ctx, "a", 0)
	if len(a) != 3 || a[0].ID != "j-4" || a[2].ID != "j-0" {
		t.Errorf("cluster a newest first: %v", ids(a))
	}
	all, _ := s.ListJobs(ctx, "", 2)
	if len(all) != 2 || all[0].ID != "j-4" {
		t.Errorf("limit: %v", ids(all))
	}
	if _, err := s.GetJob(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Error("missing job")
	}
	if !JobDone(JobLost) || JobDone(JobRunning) {
		t.Error("JobDone")
	}
}

func ids(js []Job) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

func TestEvents(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		s.AddEvent(ctx, Event{Cluster: "a", Kind: "scale", Message: fmt.Sprint("e", i)})
	}
	s.AddEvent(ctx, Event{Cluster: "b", Kind: "create", Message: "other"})
	ev, err := s.ListEvents(ctx, "a", 3)
	if err != nil || len(ev) != 3 || ev[0].Message != "e2" || ev[2].Message != "e4" {
		t.Fatalf("last three, oldest first: %+v %v", ev, err)
	}
}

func TestLocks(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	unlock, err := s.Lock(ctx, "cluster/a", "create")
	if err != nil {
		t.Fatal(err)
	}
	var le *LockedError
	if _, err := s.Lock(ctx, "cluster/a", "destroy"); !errors.As(err, &le) || le.Purpose != "create" || le.PID != os.Getpid() {
		t.Fatalf("second lock: %v", err)
	}
	if _, err := s.Lock(ctx, "cluster/b", "create"); err != nil {
		t.Errorf("another name must be free: %v", err)
	}
	unlock()
	again, err := s.Lock(ctx, "cluster/a", "destroy")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	again()

	// A lock left by a process that is gone is taken over.
	host, _ := os.Hostname()
	s.db.Exec(`INSERT INTO locks (name, pid, host, purpose, acquired_at) VALUES ('cluster/c', 999999999, ?, 'create', 0)`, host)
	if u, err := s.Lock(ctx, "cluster/c", "destroy"); err != nil {
		t.Errorf("stale lock not taken over: %v", err)
	} else {
		u()
	}
	// One held by another machine is respected.
	s.db.Exec(`INSERT INTO locks (name, pid, host, purpose, acquired_at) VALUES ('cluster/d', 1, 'elsewhere', 'create', 0)`)
	if _, err := s.Lock(ctx, "cluster/d", "destroy"); !errors.As(err, &le) || le.Host != "elsewhere" {
		t.Errorf("foreign lock: %v", err)
	}
}

// Several stores on one file, as several sparkplane processes and an agent have, write at once.
func TestConcurrentWriters(t *testing.T) {
	_, path := open(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(path)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			for i := 0; i < 50; i++ {
				if err := s.PutJob(context.Background(), Job{ID: fmt.Sprintf("w%d-%d", w, i), Cluster: "a", Name: "n", Resource: "r",
					DeployMode: "client", State: JobRunning, SubmittedAt: time.Now()}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s, _ := Open(path)
	defer s.Close()
	if jobs, _ := s.ListJobs(context.Background(), "a", 0); len(jobs) != 200 {
		t.Errorf("%d jobs, want 200", len(jobs))
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	s, path := open(t)
	s.db.Exec(`PRAGMA user_version = 99`)
	s.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("opened a database from a newer version")
	}
}

// The database and SQLite's -wal and -shm files beside it are the user's alone, also when an
// older sparkplane made the database readable by all.
func TestDatabaseIsPrivate(t *testing.T) {
	s, path := open(t)
	if err := s.PutCluster(context.Background(), Cluster{Name: "a", Provider: "local", Status: ClusterRunning, Spec: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", filepath.Base(f), fi.Mode(), err)
		}
	}
	s.Close()
	os.Chmod(path, 0o644)
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("an older, wider database stays %v", fi.Mode())
	}
}
