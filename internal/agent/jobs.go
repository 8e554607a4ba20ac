package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
)

// jobs submits applications on the master node and follows them to their end: JVM applications
// with spark-submit in cluster deploy mode (the driver runs on a worker and is followed through
// the master's JSON), Python applications in client mode (the driver is a spark-submit process of
// this agent, followed by its exit status).
type jobs struct {
	m     *master
	files *files // serves uploads to the workers when they share no filesystem

	mu   sync.Mutex
	live map[string]*liveJob
	wg   sync.WaitGroup
	// saving is taken before mu is let go in update, so that records are written in the order
	// of the changes: a RUNNING computed before a KILLED is never saved after it.
	saving sync.Mutex
}

type liveJob struct {
	job          state.Job
	uiPort       int         // spark.ui.port given to its driver
	proc         *os.Process // client mode: the driver
	killed       bool
	killMsg      string
	missingSince time.Time
}

func newJobs(m *master) *jobs {
	return &jobs{m: m, live: map[string]*liveJob{}, files: newFiles(m.cfg.Listen, m.cfg.Host)}
}

// uploadLimit bounds one submission's files.
const uploadLimit = 4 << 30

// maxParts bounds the parts of one submission: a job description and its files.
const maxParts = 256

// submitTimeout bounds how long spark-submit may take to hand a driver to the master.
const submitTimeout = 5 * time.Minute

// reservedJobConf are properties a job may not set: sparkplane decides them.
var reservedJobConf = []string{"spark.master", "spark.submit.deployMode", "spark.authenticate", "spark.authenticate.secret"}

func (j *jobs) run(ctx context.Context) {
	<-ctx.Done()
	j.endAll(state.JobLost, "the master's agent stopped before the job ended")
	j.wg.Wait()
	j.files.close()
}

// active counts jobs that have not ended.
func (j *jobs) active() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.live)
}

func (j *jobs) dir(id string) string { return filepath.Join(j.m.cfg.Dir, "jobs", id) }

// byApp finds the running job of a Spark application, with the UI port its driver was given.
func (j *jobs) byApp(appID string) (state.Job, int, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, lj := range j.live {
		if lj.job.AppID == appID {
			return lj.job, lj.uiPort, true
		}
	}
	return state.Job{}, 0, false
}

func newJobID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "j-" + hex.EncodeToString(b)
}

// save records a job here and in the user's history.
func (j *jobs) save(job state.Job) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := j.m.store.PutJob(ctx, job); err != nil {
		j.m.log.Error("record job", "job", job.ID, "err", err)
	}
	if j.m.history != nil {
		if err := j.m.history.PutJob(ctx, job); err != nil {
			j.m.log.Error("record job in history", "job", job.ID, "err", err)
		}
	}
}

// update changes a live job under the lock and records it; it ends the job's life here when its
// state is final.
func (j *jobs) update(id string, fn func(*state.Job)) {
	j.mu.Lock()
	lj, ok := j.live[id]
	if !ok {
		j.mu.Unlock()
		return
	}
	before := lj.job
	fn(&lj.job)
	job := lj.job
	if state.JobDone(job.State) {
		delete(j.live, id)
		if job.FinishedAt.IsZero() {
			job.FinishedAt = j.m.deps.Now()
			lj.job.FinishedAt = job.FinishedAt
		}
	}
	j.saving.Lock()
	j.mu.Unlock()
	j.m.jobMetrics.changed(before, job)
	j.save(job)
	j.saving.Unlock()
	if state.JobDone(job.State) {
		j.files.withdraw(id)
		j.removeInputs(id)
		j.m.event("job", fmt.Sprintf("job %s (%s) %s%s", job.ID, job.Name, strings.ToLower(job.State), suffix(job.Message)))
	}
}

// jobLogs are the files of a job's directory that outlive it (its output, for sparkplane logs);
// the rest (uploaded files, a git checkout) goes when it ends.
var jobLogs = []string{agentapi.Stdout, agentapi.Stderr, "submit.log"}

func (j *jobs) removeInputs(id string) {
	entries, err := os.ReadDir(j.dir(id))
	if err != nil {
		return
	}
	for _, e := range entries {
		if !slices.Contains(jobLogs, e.Name()) {
			if err := os.RemoveAll(filepath.Join(j.dir(id), e.Name())); err != nil {
				j.m.log.Warn("remove a finished job's inputs", "job", id, "err", err)
			}
		}
	}
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

// endAll ends every live job, stopping client-mode drivers.
func (j *jobs) endAll(st, msg string) {
	j.mu.Lock()
	var ids []string
	for id, lj := range j.live {
		ids = append(ids, id)
		if lj.proc != nil {
			lj.killed, lj.killMsg = true, msg
			syscall.Kill(-lj.proc.Pid, syscall.SIGTERM)
		}
	}
	j.mu.Unlock()
	for _, id := range ids {
		j.update(id, func(job *state.Job) { job.State, job.Message = st, msg })
	}
}

func (j *jobs) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/jobs", j.handleSubmit)
	mux.HandleFunc("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		list, err := j.m.store.ListJobs(r.Context(), j.m.cfg.Cluster, 0)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error(), "")
			return
		}
		if list == nil {
			list = []state.Job{}
		}
		writeJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("GET /v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		job, err := j.get(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, http.StatusNotFound, err.Error(), "sparkplane jobs "+j.m.cfg.Cluster+" lists the jobs")
			return
		}
		writeJSON(w, http.StatusOK, job)
	})
	mux.HandleFunc("POST /v1/jobs/{id}/kill", func(w http.ResponseWriter, r *http.Request) {
		job, status, err := j.kill(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, status, err.Error(), "")
			return
		}
		writeJSON(w, http.StatusOK, job)
	})
	mux.HandleFunc("GET /v1/jobs/{id}/logs", j.handleLogs)
}

func (j *jobs) get(ctx context.Context, id string) (*state.Job, error) {
	j.mu.Lock()
	if lj, ok := j.live[id]; ok {
		job := lj.job
		j.mu.Unlock()
		return &job, nil
	}
	j.mu.Unlock()
	job, err := j.m.store.GetJob(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("no job %q in cluster %s", id, j.m.cfg.Cluster)
	}
	return job, nil
}

type badRequest struct{ msg, hint string }

func (e *badRequest) Error() string { return e.msg }

func (j *jobs) handleSubmit(w http.ResponseWriter, r *http.Request) {
	// A job accepted now would only be lost with the cluster.
	if cause := j.m.ending(); cause != "" {
		writeError(w, http.StatusConflict, "the cluster is destroying itself: "+cause, "create it again, or give it a longer lifetime")
		return
	}
	id := newJobID()
	dir := j.dir(id)
	req, uploads, err := j.readSubmission(r, dir)
	if err == nil {
		var job *state.Job
		if job, err = j.submit(req, uploads, id); err == nil {
			writeJSON(w, http.StatusAccepted, job)
			return
		}
	}
	os.RemoveAll(dir)
	var br *badRequest
	if errors.As(err, &br) {
		writeError(w, http.StatusBadRequest, br.msg, br.hint)
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error(), "")
}

// readSubmission reads the multipart body: a "job" field and any number of "file" parts, which
// are stored in the job's directory.
func (j *jobs) readSubmission(r *http.Request, dir string) (agentapi.JobRequest, map[string]string, error) {
	var req agentapi.JobRequest
	uploads := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		if err := decodeBody(r, &req); err != nil {
			return req, nil, &badRequest{msg: "the job description is not valid JSON: " + err.Error()}
		}
		return req, uploads, nil
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return req, nil, &badRequest{msg: "expected a multipart submission: " + err.Error()}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return req, nil, err
	}
	var total int64
	parts, jobs := 0, 0
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return req, nil, &badRequest{msg: "reading the submission: " + err.Error()}
		}
		if parts++; parts > maxParts {
			return req, nil, &badRequest{msg: fmt.Sprintf("the submission has more than %d parts", maxParts), hint: "pack many files into a zip (--py-files takes zips) or put them in storage and pass their URLs"}
		}
		switch part.FormName() {
		case "job":
			if jobs++; jobs > 1 {
				return req, nil, &badRequest{msg: "the submission has more than one job description"}
			}
			if err := json.NewDecoder(io.LimitReader(part, 1<<20)).Decode(&req); err != nil {
				return req, nil, &badRequest{msg: "the job description is not valid JSON: " + err.Error()}
			}
		case "file":
			name := filepath.Base(part.FileName())
			if name == "." || name == "/" || strings.HasPrefix(name, ".") {
				return req, nil, &badRequest{msg: fmt.Sprintf("bad file name %q", part.FileName())}
			}
			path := filepath.Join(dir, name)
			f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return req, nil, &badRequest{msg: fmt.Sprintf("file %q given twice", name)}
			}
			n, err := io.Copy(f, io.LimitReader(part, uploadLimit-total+1))
			f.Close()
			total += n
			if err != nil {
				return req, nil, err
			}
			if total > uploadLimit {
				return req, nil, &badRequest{msg: "the submission's files exceed 4 GiB", hint: "put large inputs in storage and pass their URLs"}
			}
			uploads[name] = path
		default:
			return req, nil, &badRequest{msg: fmt.Sprintf("unknown part %q in the submission: it has a job description and files", part.FormName())}
		}
	}
	return req, uploads, nil
}

var urlSchemes = []string{"http", "https", "s3a", "s3", "hdfs", "gs", "abfs", "abfss", "wasb", "wasbs", "local", "file"}

// locate turns a name the request uses into a path of an uploaded file or a URL Spark can read.
func locate(name string, uploads map[string]string) (string, bool, error) {
	if p, ok := uploads[name]; ok {
		return p, true, nil
	}
	if u, err := url.Parse(name); err == nil && slices.Contains(urlSchemes, u.Scheme) {
		return name, false, nil
	}
	return "", false, &badRequest{msg: fmt.Sprintf("%q is neither an uploaded file nor a URL Spark can read", name),
		hint: "give a local file, or a URL such as https://…, s3a://… or local:/path/on/every/node"}
}

// submit validates a request, records the job and starts it.
func (j *jobs) submit(req agentapi.JobRequest, uploads map[string]string, id string) (*state.Job, error) {
	if (req.Resource == "") == (req.Git == nil) {
		return nil, &badRequest{msg: "give either an application or a git repository, not both or neither"}
	}
	for k := range req.Conf {
		if slices.Contains(reservedJobConf, k) {
			return nil, &badRequest{msg: k + " is set by sparkplane", hint: "leave it out of --conf"}
		}
		if !strings.HasPrefix(k, "spark.") {
			return nil, &badRequest{msg: fmt.Sprintf("%q is not a Spark property", k), hint: "Spark properties start with spark."}
		}
	}
	conf := map[string]string{}
	for k, v := range req.Conf {
		conf[k] = v
	}
	// The driver's UI port, so that the autoscaler can find its REST API; Spark moves up from it
	// when it is taken.
	uiPort, _ := strconv.Atoi(conf["spark.ui.port"])
	if uiPort == 0 {
		if p, err := freePort(j.m.cfg.Host); err == nil {
			uiPort = p
			conf["spark.ui.port"] = strconv.Itoa(p)
		}
	}
	sub := spark.Submission{MasterURL: j.m.masterURL(), MainClass: req.Class, Conf: conf, Args: req.Args}
	if req.Git != nil {
		if req.Git.URL == "" || req.Git.Path == "" {
			return nil, &badRequest{msg: "a git submission needs the repository URL and the application's path in it"}
		}
		sub.Resource = req.Git.Path // resolved after cloning
	} else {
		res, _, err := locate(req.Resource, uploads)
		if err != nil {
			return nil, err
		}
		sub.Resource = res
	}
	for _, list := range []struct {
		in  []string
		out *[]string
	}{{req.PyFiles, &sub.PyFiles}, {req.Jars, &sub.Jars}, {req.Files, &sub.Files}} {
		for _, name := range list.in {
			p, _, err := locate(name, uploads)
			if err != nil {
				return nil, err
			}
			*list.out = append(*list.out, p)
		}
	}
	name := req.Name
	if name == "" {
		name = defaultJobName(req)
	}
	sub.Name = name
	mode := sub.DeployMode()
	if mode == spark.ClusterMode && sub.MainClass == "" && !strings.HasSuffix(strings.ToLower(sub.Resource), ".jar") {
		return nil, &badRequest{msg: "a JVM application needs its main class", hint: "pass --class com.example.Main"}
	}
	job := state.Job{ID: id, Cluster: j.m.cfg.Cluster, Name: name, Resource: displayResource(req), Class: req.Class, Args: req.Args,
		DeployMode: mode, State: state.JobSubmitted, SubmittedAt: j.m.deps.Now()}
	if mode == spark.ClientMode {
		job.LogLocation = j.dir(id)
	}
	if err := os.MkdirAll(j.dir(id), 0o755); err != nil {
		return nil, err
	}
	j.mu.Lock()
	j.live[id] = &liveJob{job: job, uiPort: uiPort}
	j.mu.Unlock()
	j.m.jobMetrics.submitted.Inc()
	j.save(job)
	j.m.event("job", fmt.Sprintf("job %s (%s) submitted in %s mode", id, name, mode))
	j.wg.Go(func() { j.launch(id, req.Git, sub) })
	return &job, nil
}

func defaultJobName(req agentapi.JobRequest) string {
	if req.Class != "" {
		return req.Class[strings.LastIndexByte(req.Class, '.')+1:]
	}
	src := req.Resource
	if req.Git != nil {
		src = req.Git.Path
	}
	base := filepath.Base(strings.SplitN(src, "?", 2)[0])
	return strings.TrimSuffix(base, filepath.Ext(base))
}

func displayResource(req agentapi.JobRequest) string {
	if req.Git != nil {
		ref := req.Git.Ref
		if ref == "" {
			ref = "HEAD"
		}
		return fmt.Sprintf("%s@%s:%s", req.Git.URL, ref, req.Git.Path)
	}
	return req.Resource
}

func (j *jobs) fail(id, msg string) {
	j.update(id, func(job *state.Job) { job.State, job.Message = state.JobFailed, msg })
}

// launch runs in its own goroutine: it clones code if asked, then hands the job to Spark.
func (j *jobs) launch(id string, git *agentapi.Git, sub spark.Submission) {
	if git != nil {
		path, err := j.clone(id, git)
		if err != nil {
			j.fail(id, err.Error())
			return
		}
		sub.Resource = path
	}
	if sub.DeployMode() == spark.ClientMode {
		j.runClient(id, sub)
		return
	}
	sub = j.m.dist.ClusterDriver(sub)
	if err := j.ship(id, &sub); err != nil {
		j.fail(id, err.Error())
		return
	}
	if j.m.cfg.Spec.Spark.Submit == spec.SubmitREST {
		j.submitREST(id, sub)
		return
	}
	j.submitCluster(id, sub)
}

// ship makes a cluster-mode job's local files reachable from the worker its driver runs on:
// where the nodes share a filesystem the application is a file:// URL; otherwise the application,
// --jars and --files become URLs of the master's file server.
func (j *jobs) ship(id string, sub *spark.Submission) error {
	// A driver's worker fetches the application with Utils.fetchFile, which knows file: but not
	// local: (that is for jars already on every node's classpath); for the application itself
	// both mean a path every node has.
	if u, err := url.Parse(sub.Resource); err == nil && u.Scheme == "local" {
		sub.Resource = "file://" + u.Path
	}
	p, err := j.m.provider()
	if err == nil && p.Capabilities().SharedFilesystem {
		if isLocalPath(sub.Resource) {
			sub.Resource = "file://" + sub.Resource
		}
		return nil
	}
	resource := []string{sub.Resource}
	for _, list := range [][]string{resource, sub.Jars, sub.Files} {
		for i, path := range list {
			if !isLocalPath(path) {
				continue
			}
			u, err := j.files.publish(id, j.dir(id), path)
			if err != nil {
				return err
			}
			list[i] = u
		}
	}
	sub.Resource = resource[0]
	return nil
}

func isLocalPath(s string) bool {
	u, err := url.Parse(s)
	return err != nil || u.Scheme == ""
}

// clone fetches a repository on the master node, as seed 003's throw-away clusters do.
func (j *jobs) clone(id string, g *agentapi.Git) (string, error) {
	dest := filepath.Join(j.dir(id), "src")
	args := []string{"clone", "--quiet", "--depth", "1"}
	if g.Ref != "" {
		args = append(args, "--branch", g.Ref)
	}
	args = append(args, "--", g.URL, dest)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git clone %s: %v: %s", g.URL, err, strings.TrimSpace(string(out)))
	}
	path := filepath.Join(dest, filepath.Clean("/"+g.Path))
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s is not in %s at %s", g.Path, g.URL, g.Ref)
	}
	return path, nil
}

func (j *jobs) sparkEnviron() []string {
	return spark.Environ(os.Environ(), j.m.sparkEnv().Vars(), j.m.secret())
}

// submitCluster hands a JVM application's driver to the master with spark-submit and records
// the driver's id; the driver is then followed through the master's JSON.
func (j *jobs) submitCluster(id string, sub spark.Submission) {
	argv, err := j.m.dist.SubmitCommand(sub)
	if err != nil {
		j.fail(id, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), submitTimeout)
	defer cancel()
	var out bytes.Buffer
	logf, _ := os.Create(filepath.Join(j.dir(id), "submit.log"))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env, cmd.Dir, cmd.SysProcAttr = j.m.dist.SubmitEnviron(j.sparkEnviron(), sub, j.m.cfg.OneHost), j.dir(id), childAttr()
	cmd.Stdout = io.MultiWriter(&out, logf)
	cmd.Stderr = cmd.Stdout
	runErr := cmd.Run()
	logf.Close()
	driverID, ok := spark.ParseDriverID(out.String())
	if !ok {
		j.fail(id, "spark-submit did not submit the driver: "+lastError(out.String(), runErr))
		return
	}
	var killNow bool
	j.update(id, func(job *state.Job) { job.DriverID = driverID })
	j.mu.Lock()
	if lj, ok := j.live[id]; ok {
		killNow = lj.killed
	}
	j.mu.Unlock()
	if killNow {
		j.killDriver(driverID)
	}
}

// submitREST hands a driver to the master's REST submission server.
func (j *jobs) submitREST(id string, sub spark.Submission) {
	rest := &spark.REST{BaseURL: j.m.restURL(), ClientVersion: j.m.dist.Version}
	req, err := rest.NewCreateRequest(sub)
	if err != nil {
		j.fail(id, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	driverID, err := rest.Create(ctx, req)
	if err != nil {
		j.fail(id, err.Error())
		return
	}
	j.update(id, func(job *state.Job) { job.DriverID = driverID })
}

func (j *jobs) killDriver(driverID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if j.m.cfg.Spec.Spark.Submit == spec.SubmitREST {
		return (&spark.REST{BaseURL: j.m.restURL(), ClientVersion: j.m.dist.Version}).Kill(ctx, driverID)
	}
	argv := j.m.dist.KillCommand(j.m.masterURL(), driverID)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env, cmd.SysProcAttr = spark.KillEnviron(j.sparkEnviron(), j.m.secret() != ""), childAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kill %s (org.apache.spark.deploy.Client kill): %s", driverID, lastError(string(out), err))
	}
	return nil
}

// runClient runs a driver in client mode as a child of this agent.
func (j *jobs) runClient(id string, sub spark.Submission) {
	argv, err := j.m.dist.SubmitCommand(sub)
	if err != nil {
		j.fail(id, err.Error())
		return
	}
	dir := j.dir(id)
	stdout, err1 := os.Create(filepath.Join(dir, agentapi.Stdout))
	stderr, err2 := os.Create(filepath.Join(dir, agentapi.Stderr))
	if err := errors.Join(err1, err2); err != nil {
		j.fail(id, err.Error())
		return
	}
	defer stdout.Close()
	defer stderr.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr, cmd.SysProcAttr = j.sparkEnviron(), dir, stdout, stderr, childAttr()
	j.mu.Lock()
	lj, ok := j.live[id]
	if !ok || lj.killed {
		j.mu.Unlock()
		j.update(id, func(job *state.Job) { job.State = state.JobKilled })
		return
	}
	if err := cmd.Start(); err != nil {
		j.mu.Unlock()
		j.fail(id, "start spark-submit: "+err.Error())
		return
	}
	lj.proc = cmd.Process
	j.mu.Unlock()
	j.update(id, func(job *state.Job) { job.State, job.StartedAt = state.JobRunning, j.m.deps.Now() })

	err = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	// A short application can start and end between two reads of the master's state; read it
	// once more while the job is live, so that its application is found among the completed.
	j.mu.Lock()
	found := lj.job.AppID != ""
	j.mu.Unlock()
	if !found {
		j.m.poll(context.Background())
	}
	j.mu.Lock()
	killed, killMsg := lj.killed, lj.killMsg
	j.mu.Unlock()
	tail := readTail(filepath.Join(dir, agentapi.Stderr))
	j.update(id, func(job *state.Job) {
		job.ExitCode = &code
		switch {
		case killed:
			job.State, job.Message = state.JobKilled, killMsg
		case err == nil:
			job.State = state.JobFinished
		default:
			job.State, job.Message = state.JobFailed, lastError(tail, err)
		}
	})
}

// clientAppID reads the application id from the start of a client-mode driver's stderr.
func (j *jobs) clientAppID(id string) (string, bool) {
	f, err := os.Open(filepath.Join(j.dir(id), agentapi.Stderr))
	if err != nil {
		return "", false
	}
	defer f.Close()
	head, _ := io.ReadAll(io.LimitReader(f, 1<<20)) // the line comes early, before any task runs
	return spark.ParseAppID(head)
}

// track follows cluster-mode drivers and finds every job's application in the master's state.
func (j *jobs) track(ms *spark.MasterState) {
	drivers := map[string]spark.DriverInfo{}
	for _, d := range append(slices.Clone(ms.ActiveDrivers), ms.CompletedDrivers...) {
		drivers[d.ID] = d
	}
	apps := append(slices.Clone(ms.ActiveApps), ms.CompletedApps...)
	now := j.m.deps.Now()

	type change struct {
		id string
		fn func(*state.Job)
	}
	var changes []change
	j.mu.Lock()
	claimed := map[string]bool{}
	for _, lj := range j.live {
		if lj.job.AppID != "" {
			claimed[lj.job.AppID] = true
		}
	}
	for id, lj := range j.live {
		job := lj.job
		if job.AppID == "" && job.DeployMode == spark.ClientMode {
			// The driver runs here: its log names its application.
			if appID, ok := j.clientAppID(id); ok && !claimed[appID] {
				claimed[appID] = true
				job.AppID = appID
				changes = append(changes, change{id, func(job *state.Job) { job.AppID = appID }})
			}
		}
		if job.AppID == "" {
			for _, a := range apps {
				if !claimed[a.ID] && a.Name == job.Name && a.StartTime >= job.SubmittedAt.Add(-time.Second).UnixMilli() {
					claimed[a.ID] = true
					appID := a.ID
					changes = append(changes, change{id, func(job *state.Job) { job.AppID = appID }})
					break
				}
			}
		}
		if job.DriverID == "" {
			continue
		}
		d, ok := drivers[job.DriverID]
		if !ok {
			if lj.missingSince.IsZero() {
				lj.missingSince = now
			} else if now.Sub(lj.missingSince) > 30*time.Second {
				changes = append(changes, change{id, func(job *state.Job) {
					job.State, job.Message = state.JobLost, "the Spark master no longer knows driver "+job.DriverID+" (did it restart?)"
				}})
			}
			continue
		}
		lj.missingSince = time.Time{}
		newState := driverJobState(d.State)
		if newState == job.State && (newState != state.JobRunning || !job.StartedAt.IsZero()) {
			continue
		}
		started := d.Started()
		changes = append(changes, change{id, func(job *state.Job) {
			job.State = newState
			if newState == state.JobRunning && job.StartedAt.IsZero() {
				job.StartedAt = started
			}
			if d.Assigned() {
				job.LogLocation = "worker " + d.Worker
			}
			if state.JobDone(newState) && job.StartedAt.IsZero() {
				job.StartedAt = started
			}
		}})
	}
	j.mu.Unlock()
	for _, c := range changes {
		j.update(c.id, c.fn)
		if job, err := j.m.store.GetJob(context.Background(), c.id); err == nil && (job.State == state.JobFailed || job.State == state.JobError) && job.Message == "" {
			j.wg.Go(func() { j.explain(*job) })
		}
	}
}

// explain records why a cluster-mode driver failed: the master's JSON does not say, the end of
// the driver's stderr on its worker does.
func (j *jobs) explain(job state.Job) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	chunk, err := j.driverLogs(ctx, &job, agentapi.Stderr, -64<<10)
	if err != nil || len(chunk.Data) == 0 {
		return
	}
	job.Message = lastError(string(chunk.Data), nil)
	j.save(job)
}

func driverJobState(s string) string {
	switch s {
	case spark.DriverSubmitted:
		return state.JobSubmitted
	case spark.DriverFinished:
		return state.JobFinished
	case spark.DriverFailed:
		return state.JobFailed
	case spark.DriverKilled:
		return state.JobKilled
	case spark.DriverError:
		return state.JobError
	default: // RUNNING, RELAUNCHING, UNKNOWN
		return state.JobRunning
	}
}

// kill stops a job: a client-mode driver by signal, a cluster-mode one through the master.
func (j *jobs) kill(ctx context.Context, id string) (*state.Job, int, error) {
	j.mu.Lock()
	lj, ok := j.live[id]
	if !ok {
		j.mu.Unlock()
		job, err := j.get(ctx, id)
		if err != nil {
			return nil, http.StatusNotFound, err
		}
		return job, http.StatusOK, nil // already over
	}
	lj.killed, lj.killMsg = true, "killed by request"
	proc, driverID := lj.proc, lj.job.DriverID
	job := lj.job
	j.mu.Unlock()
	switch {
	case proc != nil:
		syscall.Kill(-proc.Pid, syscall.SIGTERM)
		j.wg.Go(func() {
			time.Sleep(j.m.deps.Grace)
			syscall.Kill(-proc.Pid, syscall.SIGKILL)
		})
	case driverID != "":
		if err := j.killDriver(driverID); err != nil {
			return nil, http.StatusBadGateway, err
		}
	}
	// Without a driver or process yet, launch sees the flag and stops there.
	return &job, http.StatusOK, nil
}

const logChunk = 1 << 20

func (j *jobs) handleLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	stream := r.URL.Query().Get("stream")
	if stream == "" {
		stream = agentapi.Stdout
	}
	if stream != agentapi.Stdout && stream != agentapi.Stderr {
		writeError(w, http.StatusBadRequest, "stream must be stdout or stderr", "")
		return
	}
	offset, err := parseOffset(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	job, err := j.get(r.Context(), id)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error(), "")
		return
	}
	done := state.JobDone(job.State)
	var chunk *agentapi.LogChunk
	switch {
	case job.DeployMode == spark.ClientMode:
		chunk, err = readChunk(filepath.Join(j.dir(id), stream), offset)
	case job.DriverID == "":
		// The submission itself failed or is under way: its output is all there is.
		chunk, err = readChunk(filepath.Join(j.dir(id), "submit.log"), offset)
		if stream == agentapi.Stdout {
			chunk, err = &agentapi.LogChunk{Next: offset}, nil
		}
	default:
		chunk, err = j.driverLogs(r.Context(), job, stream, offset)
	}
	if err != nil {
		var gone *goneError
		if errors.As(err, &gone) {
			writeError(w, http.StatusGone, err.Error(), "")
			return
		}
		writeError(w, http.StatusBadGateway, err.Error(), "")
		return
	}
	w.Header().Set(agentapi.HeaderOffset, fmt.Sprint(chunk.Next))
	w.Header().Set(agentapi.HeaderDone, fmt.Sprint(done && len(chunk.Data) == 0))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(chunk.Data)
}

type goneError struct{ msg string }

func (e *goneError) Error() string { return e.msg }

// driverLogs reads a cluster-mode driver's log from the agent of the worker it ran on.
func (j *jobs) driverLogs(ctx context.Context, job *state.Job, stream string, offset int64) (*agentapi.LogChunk, error) {
	ms := j.m.lastState()
	sparkWorker := ""
	if ms != nil {
		for _, d := range append(slices.Clone(ms.ActiveDrivers), ms.CompletedDrivers...) {
			if d.ID == job.DriverID && d.Assigned() {
				sparkWorker = d.Worker
			}
		}
	}
	if sparkWorker == "" {
		if !state.JobDone(job.State) {
			return &agentapi.LogChunk{Next: offset}, nil // not placed yet
		}
		return nil, &goneError{"the master no longer knows where driver " + job.DriverID + " ran"}
	}
	agent, node := j.m.agentOf(sparkWorker)
	if agent == "" {
		return nil, &goneError{"driver " + job.DriverID + " ran on Spark worker " + sparkWorker + ", which is gone; its logs went with it"}
	}
	chunk, err := j.m.client(agent).DriverLogs(ctx, job.DriverID, stream, offset)
	if err != nil {
		return nil, fmt.Errorf("driver logs from %s: %w", node, err)
	}
	return chunk, nil
}

// readChunk reads up to logChunk bytes of a file from offset; a negative offset counts from the
// end. A missing file is empty.
// parseOffset reads a log request's offset: bytes from the start, or from the end when negative.
func parseOffset(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("offset")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("offset %q is not a whole number of bytes", v)
	}
	return n, nil
}

func readChunk(path string, offset int64) (*agentapi.LogChunk, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &agentapi.LogChunk{Next: max(offset, 0)}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if offset < 0 { // the last -offset bytes
		offset = max(st.Size()+offset, 0)
	}
	offset = min(offset, st.Size()) // past the end is the end
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, logChunk))
	if err != nil {
		return nil, err
	}
	return &agentapi.LogChunk{Data: data, Next: offset + int64(len(data))}, nil
}

func readTail(path string) string {
	c, err := readChunk(path, 0)
	if err != nil {
		return ""
	}
	if len(c.Data) > 64<<10 {
		return string(c.Data[len(c.Data)-64<<10:])
	}
	return string(c.Data)
}

// lastError picks the line of a program's output that best says what went wrong.
func lastError(out string, err error) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.Contains(l, "Exception") || strings.Contains(l, "Error") || strings.Contains(l, "ERROR") {
			return l
		}
	}
	if len(lines) > 0 && lines[len(lines)-1] != "" {
		return strings.TrimSpace(lines[len(lines)-1])
	}
	if err != nil {
		return err.Error()
	}
	return "no output"
}
