package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// multipartBody builds a submission of the given parts (form name, file name or "", content).
func multipartBody(t *testing.T, parts [][3]string) (string, []byte) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p[1] != "" {
			w, err = mw.CreateFormFile(p[0], p[1])
		} else {
			w, err = mw.CreateFormField(p[0])
		}
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p[2])
	}
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

// Every route of the master's and a worker's agent answers hostile forms of its input with a 4xx
// that says what is wrong, never a 5xx, and never reads outside what the route serves.
func TestRoutesRefuseHostileInput(t *testing.T) {
	c := startCluster(t, 1, spec.Lifetime{})
	ctx := context.Background()
	st := c.waitAlive(t, 1)
	workerAgent := st.Workers[0].Agent
	job, err := c.master.Submit(ctx, agentapi.JobRequest{Resource: "app.py"}, map[string]string{"app.py": appFile(t, "app.py", `work=0.1 print="x"`)})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, c.master, job.ID)

	manyParts := [][3]string{{"job", "", `{"resource":"a.py"}`}}
	for i := range 300 {
		manyParts = append(manyParts, [3]string{"file", fmt.Sprintf("f%d.py", i), "x"})
	}
	type req struct {
		name, method, url, ctype string
		body                     []byte
		status                   int
		says                     string
	}
	m, w := c.master.BaseURL, workerAgent
	ct := func(parts [][3]string) (string, []byte) { return multipartBody(t, parts) }
	mp := func(parts ...[3]string) (string, []byte) { return ct(parts) }
	var cases []req
	add := func(name, method, url, ctype string, body []byte, status int, says string) {
		cases = append(cases, req{name, method, url, ctype, body, status, says})
	}
	add("submit: malformed JSON", "POST", m+"/v1/jobs", "application/json", []byte(`{"resource":`), 400, "not valid JSON")
	add("submit: JSON of the wrong shape", "POST", m+"/v1/jobs", "application/json", []byte(`[1,2]`), 400, "not valid JSON")
	add("submit: neither JSON nor multipart", "POST", m+"/v1/jobs", "text/plain", []byte("x"), 400, "multipart")
	typ, body := ct(manyParts)
	add("submit: too many parts", "POST", m+"/v1/jobs", typ, body, 400, "more than 256 parts")
	typ, body = mp([3]string{"job", "", `{}`}, [3]string{"job", "", `{}`})
	add("submit: two job descriptions", "POST", m+"/v1/jobs", typ, body, 400, "more than one job description")
	typ, body = mp([3]string{"job", "", `{"resource":"a.py"}`}, [3]string{"extra", "", "x"})
	add("submit: an unknown part", "POST", m+"/v1/jobs", typ, body, 400, "unknown part")
	typ, body = mp([3]string{"job", "", `{"resource":"a.py"}`}, [3]string{"file", "../../etc/x.py", "x"}, [3]string{"file", "x.py", "y"})
	add("submit: a file name with a path, given twice once cleaned", "POST", m+"/v1/jobs", typ, body, 400, "given twice")
	typ, body = mp([3]string{"job", "", `{"resource":"a.py"}`}, [3]string{"file", "..", "x"})
	add("submit: a file named ..", "POST", m+"/v1/jobs", typ, body, 400, "bad file name")
	typ, body = mp([3]string{"job", "", `{"resource":`})
	add("submit: malformed job part", "POST", m+"/v1/jobs", typ, body, 400, "not valid JSON")
	add("job: a path that cleans to nothing", "GET", m+"/v1/jobs/..", "", nil, 404, "")
	add("job: traversal id", "GET", m+"/v1/jobs/..%2F..%2Fetc", "", nil, 404, "no job")
	add("kill: unknown id", "POST", m+"/v1/jobs/nope/kill", "", nil, 404, "")
	add("logs: bad stream", "GET", m+"/v1/jobs/"+job.ID+"/logs?stream=../x", "", nil, 400, "stdout or stderr")
	add("logs: offset not a number", "GET", m+"/v1/jobs/"+job.ID+"/logs?offset=abc", "", nil, 400, "not a whole number")
	add("logs: offset beyond int64", "GET", m+"/v1/jobs/"+job.ID+"/logs?offset=99999999999999999999", "", nil, 400, "not a whole number")
	add("logs: the largest offset", "GET", m+"/v1/jobs/"+job.ID+"/logs?offset=9223372036854775807", "", nil, 200, "")
	add("logs: the smallest offset", "GET", m+"/v1/jobs/"+job.ID+"/logs?offset=-9223372036854775808", "", nil, 200, "")
	add("logs: unknown job", "GET", m+"/v1/jobs/nope/logs", "", nil, 404, "no job")
	add("register: malformed", "POST", m+"/v1/nodes/register", "application/json", []byte(`{`), 400, "bad registration")
	add("register: no node id", "POST", m+"/v1/nodes/register", "application/json", []byte(`{}`), 400, "bad registration")
	add("register: a path for a node id", "POST", m+"/v1/nodes/register", "application/json", []byte(`{"nodeId":"../../x"}`), 400, "bad registration")
	add("register: over 1 MiB", "POST", m+"/v1/nodes/register", "application/json", []byte(`{"nodeId":"w","x":"`+strings.Repeat("a", 2<<20)+`"}`), 400, "bad registration")
	add("add: malformed", "POST", m+"/v1/workers/add", "application/json", []byte(`{"count":"many"}`), 400, "count")
	add("add: zero", "POST", m+"/v1/workers/add", "application/json", []byte(`{"count":0}`), 400, "count")
	add("add: negative", "POST", m+"/v1/workers/add", "application/json", []byte(`{"count":-5}`), 400, "count")
	add("add: huge", "POST", m+"/v1/workers/add", "application/json", []byte(`{"count":9007199254740991}`), 409, "above workers.max")
	add("remove: malformed", "POST", m+"/v1/workers/remove", "application/json", []byte(`nope`), 400, "count")
	add("remove: nothing", "POST", m+"/v1/workers/remove", "application/json", []byte(`{"count":0}`), 400, "count")
	add("driver logs: ..", "GET", w+"/v1/drivers/../logs?stream=stdout", "", nil, 404, "")
	add("driver logs: encoded ..", "GET", w+"/v1/drivers/%2E%2E/logs?stream=stdout", "", nil, 400, "bad driver id")
	add("driver logs: not a driver id", "GET", w+"/v1/drivers/app-1/logs?stream=stdout", "", nil, 400, "bad driver id")
	add("driver logs: bad stream", "GET", w+"/v1/drivers/driver-20260101000000-0000/logs?stream=../../x", "", nil, 400, "bad driver id or stream")
	add("driver logs: offset not a number", "GET", w+"/v1/drivers/driver-20260101000000-0000/logs?stream=stdout&offset=1e3", "", nil, 400, "not a whole number")
	add("driver logs: a driver this worker never ran", "GET", w+"/v1/drivers/driver-20260101000000-0000/logs?stream=stdout&offset=9223372036854775807", "", nil, 200, "")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(tc.method, tc.url, bytes.NewReader(tc.body))
			r.Header.Set("Authorization", "Bearer in-process-token")
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.says) {
				t.Errorf("%s %s: %d %s, want %d saying %q", tc.method, tc.url[:min(len(tc.url), 120)], resp.StatusCode, b[:min(len(b), 300)], tc.status, tc.says)
			}
		})
	}
	// And nothing of it reaches an unauthenticated caller.
	for _, tc := range cases {
		r, _ := http.NewRequest(tc.method, tc.url, bytes.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized && !(resp.StatusCode == 404 && strings.Contains(tc.url, "/drivers/../")) {
			t.Errorf("%s without a token: %d", tc.name, resp.StatusCode)
		}
	}
}

// A job's uploaded files and git checkout go when it ends; its output stays for sparkplane logs.
func TestFinishedJobKeepsOnlyItsLogs(t *testing.T) {
	c := startCluster(t, 1, spec.Lifetime{})
	ctx := context.Background()
	job, err := c.master.Submit(ctx, agentapi.JobRequest{Resource: "app.py", PyFiles: []string{"lib.py"}},
		map[string]string{"app.py": appFile(t, "app.py", `work=0.1 print="x"`), "lib.py": appFile(t, "lib.py", "")})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, c.master, job.ID)
	dir := filepath.Join(c.prov.base.Dir, "jobs", job.ID)
	testutil.Eventually(t, 10*time.Second, "the job's inputs removed", func() error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if slices.Contains(names, "app.py") || slices.Contains(names, "lib.py") || !slices.Contains(names, "stdout") {
			return fmt.Errorf("%s holds %v", dir, names)
		}
		return nil
	})
	if chunk, err := c.master.Logs(ctx, job.ID, agentapi.Stdout, 0); err != nil || !strings.Contains(string(chunk.Data), "x") {
		t.Errorf("the finished job's logs: %v %v", chunk, err)
	}
}

// A worker whose master's agent is gone stops itself once the cluster's lifetime could no longer
// have kept it: here lifetime.idleTimeout 1h, and an hour and a bit without an answer.
func TestOrphanedWorkerStopsItself(t *testing.T) {
	c := startCluster(t, 1, spec.Lifetime{IdleTimeout: time.Hour})
	c.prov.mu.Lock()
	done := c.prov.done["worker-1"]
	c.prov.mu.Unlock()
	c.cancel() // the master's agent stops; nothing destroys the cluster
	<-c.done
	c.clock.Advance(50 * time.Minute)
	select {
	case <-done:
		t.Fatal("the worker stopped before its lifetime allowed")
	case <-time.After(time.Second):
	}
	c.clock.Advance(15 * time.Minute)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the orphaned worker still runs an hour and five minutes after its master's agent went")
	}
}

func TestOrphanLimit(t *testing.T) {
	created := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		lt      spec.Lifetime
		oneHost bool
		at      time.Duration // after creation
		want    time.Duration
	}{
		{spec.Lifetime{}, false, time.Hour, 0},
		{spec.Lifetime{}, true, time.Hour, 10 * time.Minute},
		{spec.Lifetime{IdleTimeout: 30 * time.Minute}, false, time.Hour, 30 * time.Minute},
		{spec.Lifetime{IdleTimeout: 30 * time.Minute}, true, time.Hour, 10 * time.Minute},
		{spec.Lifetime{MaxAge: 2 * time.Hour}, false, time.Hour, 0},
		{spec.Lifetime{MaxAge: 2 * time.Hour}, false, 3 * time.Hour, time.Minute},
	} {
		w := &worker{node: &node{cfg: &agentapi.Config{CreatedAt: created, OneHost: tc.oneHost, Spec: spec.Cluster{Lifetime: tc.lt}}}}
		if got, why := w.orphanLimit(created.Add(tc.at)); got != tc.want || (got > 0) != (why != "") {
			t.Errorf("%+v oneHost=%v at +%s: %s (%q), want %s", tc.lt, tc.oneHost, tc.at, got, why, tc.want)
		}
	}
}
