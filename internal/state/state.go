// Package state is sparkplane's SQLite store: a cache of the clusters this user made, the
// history of their jobs and events, and locks that keep two commands from changing one cluster at
// once. The provider stays the source of truth for what exists; this store is what survives it
// (job history after destroy) and what makes commands fast.
//
// The same store, in a file of its own, keeps the master agent's job records on the node.
package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

// ErrNotFound is returned when a cluster, job or lock does not exist.
var ErrNotFound = errors.New("not found")

// Store is an open state database. It is safe for concurrent use, from several processes too.
type Store struct {
	db *sql.DB
}

// schema is applied in steps; PRAGMA user_version records how many have run.
var schema = []string{
	`CREATE TABLE clusters (
		name        TEXT PRIMARY KEY,
		provider    TEXT NOT NULL,
		status      TEXT NOT NULL,
		spec        TEXT NOT NULL,         -- the internal spec as JSON
		endpoint    TEXT NOT NULL DEFAULT '{}', -- how to reach the master's agent, as JSON
		created_at  INTEGER NOT NULL,      -- unix ms
		updated_at  INTEGER NOT NULL
	);
	CREATE TABLE jobs (
		id           TEXT PRIMARY KEY,
		cluster      TEXT NOT NULL,
		name         TEXT NOT NULL,
		resource     TEXT NOT NULL,
		class        TEXT NOT NULL DEFAULT '',
		args         TEXT NOT NULL DEFAULT '[]',
		deploy_mode  TEXT NOT NULL,
		state        TEXT NOT NULL,
		driver_id    TEXT NOT NULL DEFAULT '',
		app_id       TEXT NOT NULL DEFAULT '',
		submitted_at INTEGER NOT NULL,
		started_at   INTEGER NOT NULL DEFAULT 0,
		finished_at  INTEGER NOT NULL DEFAULT 0,
		exit_code    INTEGER,
		message      TEXT NOT NULL DEFAULT '',
		log_location TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX jobs_by_cluster ON jobs (cluster, submitted_at);
	CREATE TABLE events (
		id       INTEGER PRIMARY KEY AUTOINCREMENT,
		cluster  TEXT NOT NULL,
		time     INTEGER NOT NULL,
		kind     TEXT NOT NULL,
		message  TEXT NOT NULL
	);
	CREATE INDEX events_by_cluster ON events (cluster, time);
	CREATE TABLE locks (
		name        TEXT PRIMARY KEY,
		pid         INTEGER NOT NULL,
		host        TEXT NOT NULL,
		purpose     TEXT NOT NULL,
		acquired_at INTEGER NOT NULL
	);`,
	// The Spark the cluster was made with, on this machine, for history after destroy.
	`ALTER TABLE clusters ADD COLUMN spark_home TEXT NOT NULL DEFAULT '';`,
}

// Open opens (creating it if needed) the database at path.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	// The database holds the user's clusters and jobs: only they may read it. SQLite gives its
	// -wal and -shm files the database file's mode, so making that one 0600 (and tightening an
	// older, wider one) covers all three.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	err = f.Chmod(0o600)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) migrate() error {
	ctx := context.Background()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// BEGIN IMMEDIATE serialises migrations between processes opening the file at once.
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	var v int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		conn.ExecContext(ctx, "ROLLBACK")
		return err
	}
	if v > len(schema) {
		conn.ExecContext(ctx, "ROLLBACK")
		return fmt.Errorf("the database was written by a newer sparkplane (schema %d, this build knows %d)", v, len(schema))
	}
	for i := v; i < len(schema); i++ {
		if _, err := conn.ExecContext(ctx, schema[i]); err != nil {
			conn.ExecContext(ctx, "ROLLBACK")
			return fmt.Errorf("schema step %d: %w", i+1, err)
		}
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(schema))); err != nil {
		conn.ExecContext(ctx, "ROLLBACK")
		return err
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// Cluster statuses kept in the cache.
const (
	ClusterCreating   = "creating"
	ClusterRunning    = "running"
	ClusterDestroying = "destroying"
	ClusterDestroyed  = "destroyed"
	ClusterFailed     = "failed"
)

// Cluster is a cached cluster record.
type Cluster struct {
	Name      string          `json:"name"`
	Provider  string          `json:"provider"`
	Status    string          `json:"status"`
	Spec      json.RawMessage `json:"spec"`
	Endpoint  json.RawMessage `json:"endpoint,omitempty"`
	SparkHome string          `json:"sparkHome,omitempty"` // the Spark it was made with, on this machine
	CreatedAt time.Time       `json:"createdAt"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

// PutCluster inserts or replaces a cluster record.
func (s *Store) PutCluster(ctx context.Context, c Cluster) error {
	now := time.Now()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if len(c.Endpoint) == 0 {
		c.Endpoint = json.RawMessage("{}")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO clusters (name, provider, status, spec, endpoint, spark_home, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET provider=excluded.provider, status=excluded.status, spec=excluded.spec,
			endpoint=excluded.endpoint, spark_home=excluded.spark_home, created_at=excluded.created_at, updated_at=excluded.updated_at`,
		c.Name, c.Provider, c.Status, string(c.Spec), string(c.Endpoint), c.SparkHome, ms(c.CreatedAt), ms(now))
	return err
}

// SetClusterStatus changes a cached cluster's status.
func (s *Store) SetClusterStatus(ctx context.Context, name, status string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE clusters SET status = ?, updated_at = ? WHERE name = ?`, status, ms(time.Now()), name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// GetCluster returns one cached cluster.
func (s *Store) GetCluster(ctx context.Context, name string) (*Cluster, error) {
	rows, err := s.queryClusters(ctx, `WHERE name = ?`, name)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	return &rows[0], nil
}

// ListClusters returns cached clusters by name; destroyed ones only when asked.
func (s *Store) ListClusters(ctx context.Context, withDestroyed bool) ([]Cluster, error) {
	if withDestroyed {
		return s.queryClusters(ctx, `ORDER BY name`)
	}
	return s.queryClusters(ctx, `WHERE status != ? ORDER BY name`, ClusterDestroyed)
}

func (s *Store) queryClusters(ctx context.Context, where string, args ...any) ([]Cluster, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, provider, status, spec, endpoint, spark_home, created_at, updated_at FROM clusters `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Cluster
	for rows.Next() {
		var c Cluster
		var spec, ep string
		var created, updated int64
		if err := rows.Scan(&c.Name, &c.Provider, &c.Status, &spec, &ep, &c.SparkHome, &created, &updated); err != nil {
			return nil, err
		}
		c.Spec, c.Endpoint = json.RawMessage(spec), json.RawMessage(ep)
		c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteCluster forgets a cluster record (its jobs and events stay).
func (s *Store) DeleteCluster(ctx context.Context, name string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM clusters WHERE name = ?`, name)
	return err
}

// Job states. The first ones are Spark's driver states; LOST means the cluster went away before
// the job's end was seen.
const (
	JobSubmitted = "SUBMITTED"
	JobRunning   = "RUNNING"
	JobFinished  = "FINISHED"
	JobFailed    = "FAILED"
	JobKilled    = "KILLED"
	JobError     = "ERROR"
	JobLost      = "LOST"
)

// JobDone reports whether a job state is final.
func JobDone(state string) bool {
	switch state {
	case JobFinished, JobFailed, JobKilled, JobError, JobLost:
		return true
	}
	return false
}

// Job is one submitted application and what became of it.
type Job struct {
	ID          string    `json:"id"`
	Cluster     string    `json:"cluster"`
	Name        string    `json:"name"`
	Resource    string    `json:"resource"`
	Class       string    `json:"class,omitempty"`
	Args        []string  `json:"args"`
	DeployMode  string    `json:"deployMode"`
	State       string    `json:"state"`
	DriverID    string    `json:"driverId,omitempty"`
	AppID       string    `json:"appId,omitempty"`
	SubmittedAt time.Time `json:"submittedAt"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"`
	ExitCode    *int      `json:"exitCode,omitempty"`
	Message     string    `json:"message,omitempty"`
	LogLocation string    `json:"logLocation,omitempty"`
}

// Duration is how long the job ran (or has run, if it still runs).
func (j Job) Duration(now time.Time) time.Duration {
	if j.StartedAt.IsZero() {
		return 0
	}
	if j.FinishedAt.IsZero() {
		return now.Sub(j.StartedAt)
	}
	return j.FinishedAt.Sub(j.StartedAt)
}

// PutJob inserts or replaces a job record.
func (s *Store) PutJob(ctx context.Context, j Job) error {
	args, _ := json.Marshal(nonNilStrings(j.Args))
	var exit sql.NullInt64
	if j.ExitCode != nil {
		exit = sql.NullInt64{Int64: int64(*j.ExitCode), Valid: true}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO jobs (id, cluster, name, resource, class, args, deploy_mode, state, driver_id, app_id,
			submitted_at, started_at, finished_at, exit_code, message, log_location)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET cluster=excluded.cluster, name=excluded.name, resource=excluded.resource, class=excluded.class,
			args=excluded.args, deploy_mode=excluded.deploy_mode, state=excluded.state, driver_id=excluded.driver_id, app_id=excluded.app_id,
			submitted_at=excluded.submitted_at, started_at=excluded.started_at, finished_at=excluded.finished_at,
			exit_code=excluded.exit_code, message=excluded.message, log_location=excluded.log_location`,
		j.ID, j.Cluster, j.Name, j.Resource, j.Class, string(args), j.DeployMode, j.State, j.DriverID, j.AppID,
		ms(j.SubmittedAt), ms(j.StartedAt), ms(j.FinishedAt), exit, j.Message, j.LogLocation)
	return err
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// GetJob returns one job.
func (s *Store) GetJob(ctx context.Context, id string) (*Job, error) {
	jobs, err := s.queryJobs(ctx, `WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, ErrNotFound
	}
	return &jobs[0], nil
}

// ListJobs returns a cluster's jobs (all clusters' when cluster is empty), newest first.
func (s *Store) ListJobs(ctx context.Context, cluster string, limit int) ([]Job, error) {
	if limit <= 0 {
		limit = -1
	}
	if cluster == "" {
		return s.queryJobs(ctx, `ORDER BY submitted_at DESC, id DESC LIMIT ?`, limit)
	}
	return s.queryJobs(ctx, `WHERE cluster = ? ORDER BY submitted_at DESC, id DESC LIMIT ?`, cluster, limit)
}

func (s *Store) queryJobs(ctx context.Context, where string, args ...any) ([]Job, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, cluster, name, resource, class, args, deploy_mode, state, driver_id, app_id,
		submitted_at, started_at, finished_at, exit_code, message, log_location FROM jobs `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		var j Job
		var args string
		var sub, start, fin int64
		var exit sql.NullInt64
		if err := rows.Scan(&j.ID, &j.Cluster, &j.Name, &j.Resource, &j.Class, &args, &j.DeployMode, &j.State, &j.DriverID, &j.AppID,
			&sub, &start, &fin, &exit, &j.Message, &j.LogLocation); err != nil {
			return nil, err
		}
		json.Unmarshal([]byte(args), &j.Args)
		j.SubmittedAt, j.StartedAt, j.FinishedAt = fromMS(sub), fromMS(start), fromMS(fin)
		if exit.Valid {
			code := int(exit.Int64)
			j.ExitCode = &code
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Event is one thing that happened to a cluster, said in a sentence.
type Event struct {
	ID      int64     `json:"id"`
	Cluster string    `json:"cluster"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
}

// AddEvent records an event.
func (s *Store) AddEvent(ctx context.Context, e Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO events (cluster, time, kind, message) VALUES (?, ?, ?, ?)`, e.Cluster, ms(e.Time), e.Kind, e.Message)
	return err
}

// ListEvents returns a cluster's most recent events, oldest first.
func (s *Store) ListEvents(ctx context.Context, cluster string, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, cluster, time, kind, message FROM
		(SELECT * FROM events WHERE cluster = ? ORDER BY id DESC LIMIT ?) ORDER BY id`, cluster, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var t int64
		if err := rows.Scan(&e.ID, &e.Cluster, &t, &e.Kind, &e.Message); err != nil {
			return nil, err
		}
		e.Time = fromMS(t)
		out = append(out, e)
	}
	return out, rows.Err()
}

// LockedError says who holds a lock.
type LockedError struct {
	Name, Host, Purpose string
	PID                 int
	Since               time.Time
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is busy: process %d on %s has been running %q since %s", e.Name, e.PID, e.Host, e.Purpose, e.Since.Format(time.TimeOnly))
}

// Lock takes the named lock for this process, for purpose (e.g. "create"). A lock left by a process
// of this machine that no longer runs is taken over. The returned function releases it.
func (s *Store) Lock(ctx context.Context, name, purpose string) (func(), error) {
	host, _ := os.Hostname()
	pid := os.Getpid()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return nil, err
	}
	rollback := func() { conn.ExecContext(context.Background(), "ROLLBACK") }
	var held LockedError
	var since int64
	err = conn.QueryRowContext(ctx, `SELECT pid, host, purpose, acquired_at FROM locks WHERE name = ?`, name).Scan(&held.PID, &held.Host, &held.Purpose, &since)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		rollback()
		return nil, err
	case held.Host != host || processAlive(held.PID):
		rollback()
		held.Name, held.Since = name, fromMS(since)
		return nil, &held
	}
	if _, err := conn.ExecContext(ctx, `INSERT OR REPLACE INTO locks (name, pid, host, purpose, acquired_at) VALUES (?, ?, ?, ?, ?)`,
		name, pid, host, purpose, ms(time.Now())); err != nil {
		rollback()
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return nil, err
	}
	return func() {
		s.db.ExecContext(context.Background(), `DELETE FROM locks WHERE name = ? AND pid = ? AND host = ?`, name, pid, host)
	}, nil
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
