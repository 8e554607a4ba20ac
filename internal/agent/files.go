package agent

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// files serves what was uploaded with a job to the cluster's other nodes, for providers whose
// nodes share no filesystem: in cluster deploy mode Spark runs the driver on some worker, which
// fetches the application from a URL (DriverRunner.downloadUserJar), and executors fetch the
// job's jars and files the same way. The URLs are plain HTTP on the master's private address,
// as Spark's own file server is, each under a random token of the job that is withdrawn when
// the job ends; the listener starts with the first job that needs it.
type files struct {
	bind, host string // the interface to listen on, the address others reach it at

	mu     sync.Mutex
	base   string
	srv    *http.Server
	grants map[string]string // token → the job's directory
	byJob  map[string]string // job id → token
}

func newFiles(listen, host string) *files {
	bind, _, err := net.SplitHostPort(listen)
	if err != nil {
		bind = host
	}
	return &files{bind: bind, host: host, grants: map[string]string{}, byJob: map[string]string{}}
}

// publish makes a local path under dir (the job's directory) reachable, and returns its URL.
func (f *files) publish(jobID, dir, path string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv == nil {
		if err := f.startLocked(); err != nil {
			return "", err
		}
	}
	token, ok := f.byJob[jobID]
	if !ok {
		b := make([]byte, 16)
		rand.Read(b)
		token = hex.EncodeToString(b)
		f.byJob[jobID], f.grants[token] = token, dir
	}
	rel, err := filepath.Rel(dir, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("%s is not among the job's files", path)
	}
	return f.base + "/files/" + token + "/" + (&url.URL{Path: filepath.ToSlash(rel)}).EscapedPath(), nil
}

// withdraw stops serving a job's files.
func (f *files) withdraw(jobID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if token, ok := f.byJob[jobID]; ok {
		delete(f.grants, token)
		delete(f.byJob, jobID)
	}
}

func (f *files) startLocked() error {
	l, err := net.Listen("tcp", net.JoinHostPort(f.bind, "0"))
	if err != nil {
		return fmt.Errorf("serve the job's files to the workers: %w", err)
	}
	f.base = "http://" + advertised(l.Addr().String(), f.host)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /files/{token}/{path...}", f.serve)
	f.srv = newServer(mux)
	go f.srv.Serve(guard(l))
	return nil
}

func (f *files) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	dir, ok := f.grants[r.PathValue("token")]
	f.mu.Unlock()
	if !ok {
		closeAfter(w)
		http.NotFound(w, r)
		return
	}
	trust(r)                      // a worker fetching its job's files
	root, err := os.OpenRoot(dir) // nothing outside the job's directory, whatever the path says
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer root.Close()
	name := filepath.FromSlash(r.PathValue("path"))
	file, err := root.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, st.Name(), st.ModTime(), file)
}

// close stops the listener, if it started.
func (f *files) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil {
		f.srv.Close()
	}
}
