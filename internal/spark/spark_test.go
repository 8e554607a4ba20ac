package spark

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sparkplane/sparkplane/internal/testutil"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata/golden", name), got)
}

func TestMasterStateFixture(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/json/" {
			// Jetty redirects /json to /json/; anything else is not the JSON servlet.
			http.Redirect(w, r, "/json/", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/json;charset=utf-8")
		w.Write(fixture(t, "master-state.json"))
	}))
	defer srv.Close()
	s, err := (&UI{BaseURL: srv.URL}).MasterState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.URL != "spark://10.0.0.10:7077" || s.AliveWorkers != 2 || s.Cores != 16 || s.CoresUsed != 9 || s.Status != "ALIVE" {
		t.Errorf("totals: %+v", s)
	}
	if len(s.Workers) != 2 || s.Workers[0].ID != "worker-20240115103012-10.0.0.11-35001" || s.Workers[0].CoresFree != 3 || s.Workers[0].LastHeartbeat != 1705314983512 {
		t.Errorf("workers: %+v", s.Workers)
	}
	if len(s.ActiveApps) != 1 || s.ActiveApps[0].StartTime != 1705314930118 || s.ActiveApps[0].MemoryPerExecutor != 1024 {
		t.Errorf("apps: %+v", s.ActiveApps)
	}
	d := s.ActiveDrivers[0]
	if d.StartTime != 1705314922345 || !d.Assigned() || d.MainClass != "org.apache.spark.examples.SparkPi" || d.State != DriverRunning {
		t.Errorf("driver: %+v", d)
	}
	if got := d.Started().UnixMilli(); got != 1705314922345 {
		t.Errorf("driver start = %d", got)
	}
}

func TestDriverStartTimeEitherForm(t *testing.T) {
	for _, in := range []string{`{"starttime":"1705314922345","worker":"None"}`, `{"starttime":1705314922345,"worker":"None"}`} {
		var d DriverInfo
		if err := json.Unmarshal([]byte(in), &d); err != nil || d.StartTime != 1705314922345 || d.Assigned() {
			t.Errorf("%s: %+v %v", in, d, err)
		}
	}
	var a AppInfo
	if err := json.Unmarshal([]byte(`{"memoryperslave":2048}`), &a); err != nil || a.MemoryPerExecutor != 2048 {
		t.Errorf("memoryperslave fallback: %+v %v", a, err)
	}
}

func TestDecommissionHosts(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/workers/kill/" {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		got = r.URL.Query()["host"]
		if got[0] == "nobody" {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	ui := &UI{BaseURL: srv.URL}
	if err := ui.DecommissionHosts(context.Background(), "10.0.0.11", "10.0.0.12"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"10.0.0.11", "10.0.0.12"}) {
		t.Errorf("hosts sent: %v", got)
	}
	if err := ui.DecommissionHosts(context.Background(), "nobody"); !errors.Is(err, ErrNoWorkerOnHost) {
		t.Errorf("404: %v", err)
	}
}

func TestDaemonCommands(t *testing.T) {
	d := &Distribution{Home: "/opt/spark"}
	got := d.MasterCommand(MasterArgs{Host: "127.0.0.1", Port: 7077, WebUIPort: 8080})
	want := []string{"/opt/spark/bin/spark-class", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", "7077", "--webui-port", "8080"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("master:\n got %q\nwant %q", got, want)
	}
	got = d.WorkerCommand(WorkerArgs{MasterURL: "spark://127.0.0.1:7077", Host: "127.0.0.1", WebUIPort: 8081, Cores: 2, MemoryMiB: 1536, WorkDir: "/w"})
	want = []string{"/opt/spark/bin/spark-class", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--webui-port", "8081",
		"--cores", "2", "--memory", "1536m", "--work-dir", "/w", "spark://127.0.0.1:7077"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("worker:\n got %q\nwant %q", got, want)
	}
}

func TestEnvironKeepsSecretOffFilesAndArgs(t *testing.T) {
	base := []string{"PATH=/bin", "SPARK_HOME=/elsewhere", "SPARK_WORKER_CORES=64", "_SPARK_AUTH_SECRET=old", "JDK_JAVA_OPTIONS=-Xss4m"}
	vars := NodeEnv{JavaHome: "/jdk", ConfDir: "/c", LogDir: "/l", LocalIP: "127.0.0.1"}.Vars()
	env := Environ(base, vars, "s3cret")
	joined := strings.Join(env, "\n")
	for _, want := range []string{"PATH=/bin", "SPARK_CONF_DIR=/c", "JAVA_HOME=/jdk", "_SPARK_AUTH_SECRET=s3cret",
		"JDK_JAVA_OPTIONS=-Xss4m -Dspark.authenticate.secret=" + authSecretPlaceholder} {
		if !strings.Contains(joined, want) {
			t.Errorf("environment lacks %q:\n%s", want, joined)
		}
	}
	for _, bad := range []string{"SPARK_HOME=", "SPARK_WORKER_CORES", "=old"} {
		if strings.Contains(joined, bad) {
			t.Errorf("environment keeps %q:\n%s", bad, joined)
		}
	}
	if strings.Contains(string(RenderEnv(vars)), "s3cret") {
		t.Error("spark-env.sh holds the secret")
	}
	if env := Environ(nil, vars, ""); strings.Contains(strings.Join(env, " "), "authenticate") {
		t.Error("without a secret there must be no placeholder")
	}
}

func TestRenderedConfGolden(t *testing.T) {
	props := Properties(Settings{Authenticate: true, EventLogDir: "file:///var/sparkplane/events",
		S3A:  &S3AConf{CredentialsProvider: "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider", Endpoint: "http://127.0.0.1:9000", PathStyle: true, Region: "eu-west-1"},
		User: map[string]string{"spark.executor.memory": "2g", "spark.driver.extraJavaOptions": " -Dx=a\\b", "spark.storage.decommission.enabled": "false"}})
	if props["spark.storage.decommission.enabled"] != "false" {
		t.Error("the user's conf must win over sparkplane's defaults it does not own")
	}
	golden(t, "spark-defaults.conf", RenderProperties(props))
	golden(t, "spark-env.sh", RenderEnv(NodeEnv{JavaHome: "/usr/lib/jvm/java-17", ConfDir: "/n/conf", LogDir: "/n/logs", LocalIP: "127.0.0.1", WorkDir: "/n/work dir", DistClassPath: "/n/s3a/*"}.Vars()))
	golden(t, "metrics.properties", MetricsProperties())

	rest := Properties(Settings{RESTPort: 6066})
	if rest["spark.master.rest.enabled"] != "true" || rest["spark.master.rest.port"] != "6066" || rest["spark.authenticate"] != "" {
		t.Errorf("REST properties: %v", rest)
	}
}

func TestWriteConf(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf")
	if err := WriteConf(dir, map[string]string{"spark.a": "1"}, NodeEnv{ConfDir: dir}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"spark-defaults.conf", "spark-env.sh", "metrics.properties", "log4j2.properties"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"/a/b": "/a/b", "a b": "'a b'", "it's": `'it'\''s'`, "": "''", "$HOME": "'$HOME'"} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestSubmitCommand(t *testing.T) {
	d := &Distribution{Home: "/opt/spark"}
	jvm := Submission{MasterURL: "spark://m:7077", Resource: "file:///jobs/app.jar", MainClass: "com.example.Main", Name: "etl",
		Conf: map[string]string{"spark.executor.memory": "2g", "spark.a": "b"}, Jars: []string{"x.jar"}, Args: []string{"--date", "2026-11-21"}}
	got, err := d.SubmitCommand(jvm)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/opt/spark/bin/spark-submit", "--master", "spark://m:7077", "--deploy-mode", "cluster", "--name", "etl",
		"--class", "com.example.Main", "--jars", "x.jar", "--conf", "spark.a=b", "--conf", "spark.executor.memory=2g",
		"file:///jobs/app.jar", "--date", "2026-11-21"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("jvm:\n got %q\nwant %q", got, want)
	}

	py := Submission{MasterURL: "spark://m:7077", Resource: "/jobs/pi.py", MainClass: "ignored", PyFiles: []string{"lib.zip"}, Args: []string{"10"}}
	got, _ = d.SubmitCommand(py)
	want = []string{"/opt/spark/bin/spark-submit", "--master", "spark://m:7077", "--deploy-mode", "client", "--py-files", "lib.zip", "/jobs/pi.py", "10"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("python runs in client mode:\n got %q\nwant %q", got, want)
	}
	if _, err := d.SubmitCommand(Submission{}); !errors.Is(err, ErrNoResource) {
		t.Errorf("empty submission: %v", err)
	}
	if k := d.KillCommand("spark://m:7077", "driver-1"); strings.Join(k, " ") != "/opt/spark/bin/spark-class org.apache.spark.deploy.Client kill spark://m:7077 driver-1" {
		t.Errorf("kill: %q", k)
	}
}

func TestParseDriverID(t *testing.T) {
	// As Spark 3.5's spark-submit prints it in standalone cluster mode.
	out := `24/03/21 08:09:09 INFO Utils: Successfully started service 'driverClient' on port 35725.
24/03/21 08:09:09 INFO ClientEndpoint: ... waiting before polling master for driver state
24/03/21 08:09:09 INFO ClientEndpoint: Driver successfully submitted as driver-20240321080909-0000
24/03/21 08:09:14 INFO ClientEndpoint: State of driver-20240321080909-0000 is RUNNING`
	if id, ok := ParseDriverID(out); !ok || id != "driver-20240321080909-0000" {
		t.Errorf("got %q %v", id, ok)
	}
	if _, ok := ParseDriverID("ERROR: Current state is not alive: STANDBY"); ok {
		t.Error("found an id in a failure")
	}
}

func TestRESTClient(t *testing.T) {
	var created map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/submissions/create":
			b, _ := io.ReadAll(r.Body)
			json.Unmarshal(b, &created)
			w.Write(fixture(t, "rest-create-response.json"))
		case r.URL.Path == "/v1/submissions/status/driver_123":
			w.Write(fixture(t, "rest-status-response-running.json"))
		case r.URL.Path == "/v1/submissions/status/gone":
			w.Write([]byte(`{"action":"SubmissionStatusResponse","serverSparkVersion":"3.5.3","submissionId":"gone","success":false}`))
		case r.URL.Path == "/v1/submissions/kill/driver_123":
			w.Write(fixture(t, "rest-kill-response.json"))
		case r.URL.Path == "/v1/submissions/kill/bad":
			w.WriteHeader(http.StatusBadRequest)
			w.Write(fixture(t, "rest-error-response.json"))
		default:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte("<html>Server Error</html>"))
		}
	}))
	defer srv.Close()
	r := &REST{BaseURL: srv.URL, ClientVersion: "3.5.3"}
	req, err := r.NewCreateRequest(Submission{MasterURL: "spark://m:7077", Resource: "http://m/app.jar", MainClass: "Main"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.Create(context.Background(), req)
	if err != nil || id != "driver_123" {
		t.Fatalf("create: %q %v", id, err)
	}
	// 3.5 requires every one of these keys, appArgs and environmentVariables included.
	for _, k := range []string{"action", "appArgs", "appResource", "clientSparkVersion", "environmentVariables", "mainClass", "sparkProperties"} {
		if _, ok := created[k]; !ok {
			t.Errorf("create request lacks %q", k)
		}
	}
	props := created["sparkProperties"].(map[string]any)
	if props["spark.app.name"] != "Main" || props["spark.master"] != "spark://m:7077" {
		t.Errorf("sparkProperties: %v", props)
	}
	st, err := r.Status(context.Background(), "driver_123")
	if err != nil || st.DriverState != "RUNNING" || st.WorkerID != "worker_123" {
		t.Errorf("status: %+v %v", st, err)
	}
	if _, err := r.Status(context.Background(), "gone"); err == nil || !strings.Contains(err.Error(), "unknown submission") {
		t.Errorf("unknown submission: %v", err)
	}
	if err := r.Kill(context.Background(), "driver_123"); err != nil {
		t.Errorf("kill: %v", err)
	}
	var re *RESTError
	if err := r.Kill(context.Background(), "bad"); !errors.As(err, &re) || re.Status != 400 || re.Message != "Field not found in submit request: X" {
		t.Errorf("error response: %v", err)
	}
	if _, err := r.Status(context.Background(), "boom"); !errors.As(err, &re) || re.Status != 500 || !strings.Contains(re.Message, "Server Error") {
		t.Errorf("non-JSON 500: %v", err)
	}
	if _, err := r.NewCreateRequest(Submission{MasterURL: "spark://m:7077", Resource: "pi.py"}); err == nil {
		t.Error("REST must refuse Python")
	}
}

func TestAppAPIDemand(t *testing.T) {
	// Jobs in the format of Spark's own test expectation (history-job-list.json); stages with the
	// fields of api.scala's StageData.
	stages := `[ {
  "status" : "ACTIVE", "stageId" : 3, "attemptId" : 0,
  "numTasks" : 200, "numActiveTasks" : 8, "numCompleteTasks" : 50, "numFailedTasks" : 0, "numKilledTasks" : 0,
  "numCompletedIndices" : 50, "executorRunTime" : 100000, "name" : "count at <console>:17"
} ]`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/applications":
			w.Write(fixture(t, "history-application-list.json"))
		case "/api/v1/applications/app-20200706201101-0003/jobs":
			if r.URL.Query().Get("status") != "running" {
				t.Errorf("jobs asked with %q", r.URL.RawQuery)
			}
			w.Write(fixture(t, "history-job-list.json"))
		case "/api/v1/applications/app-20200706201101-0003/stages":
			w.Write([]byte(stages))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	api := &AppAPI{BaseURL: srv.URL}
	d, err := api.Demand(context.Background(), "app-20200706201101-0003")
	if err != nil {
		t.Fatal(err)
	}
	// Active stage: 200 - 50 finished = 150 to run; 100 s over 50 tasks = 2 s each. The jobs
	// fixture's three jobs have 0 + 1 + 0 tasks left, fewer than the stage shows: 150.
	if d.TasksNow != 150 || d.TaskSeconds != 2 || d.TasksLeft != 150 {
		t.Errorf("demand %+v", d)
	}
	host, port := hostPort(t, srv.URL)
	// The UI may have moved up a few ports, as Spark does when its port is taken.
	base, err := FindApplication(context.Background(), nil, host, port-3, "app-20200706201101-0003")
	if err != nil || base != srv.URL {
		t.Errorf("FindApplication: %q %v", base, err)
	}
	if _, err := FindApplication(context.Background(), nil, host, port, "app-none"); err == nil {
		t.Error("found an application that is not there")
	}
}

func hostPort(t *testing.T, u string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func TestClusterDriverOpensModulesOnSpark3(t *testing.T) {
	jar := Submission{Resource: "file:///a.jar", MainClass: "A", Conf: map[string]string{"spark.driver.extraJavaOptions": "-Dmine=1"}}
	got := (&Distribution{Version: "3.5.9"}).ClusterDriver(jar)
	opts := got.Conf["spark.driver.extraJavaOptions"]
	if !strings.HasPrefix(opts, "-XX:+IgnoreUnrecognizedVMOptions ") || !strings.Contains(opts, "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED") || !strings.HasSuffix(opts, " -Dmine=1") {
		t.Errorf("3.5 cluster-mode driver options: %q", opts)
	}
	if jar.Conf["spark.driver.extraJavaOptions"] != "-Dmine=1" {
		t.Error("the caller's conf was changed")
	}
	if got := (&Distribution{Version: "4.3.0"}).ClusterDriver(jar); got.Conf["spark.driver.extraJavaOptions"] != "-Dmine=1" {
		t.Errorf("4.x workers open the modules themselves: %q", got.Conf["spark.driver.extraJavaOptions"])
	}
	py := Submission{Resource: "/a.py"}
	if got := (&Distribution{Version: "3.5.9"}).ClusterDriver(py); got.Conf != nil {
		t.Errorf("a client-mode driver is started by spark-submit's launcher, which opens them: %v", got.Conf)
	}
}

func TestSubmitEnvironKeepsTheHostOutOfAClusterDriverBefore43(t *testing.T) {
	env := []string{"PATH=/bin", "SPARK_LOCAL_IP=10.0.0.5", "SPARK_LOCAL_HOSTNAME=m", "SPARK_LOCAL_DIRS=/x/tmp", "SPARK_CONF_DIR=/x/conf"}
	jar := Submission{Resource: "file:///a.jar", MainClass: "A"}
	for _, tc := range []struct {
		version string
		sub     Submission
		oneHost bool
		want    []string
	}{
		{"3.5.9", jar, false, []string{"PATH=/bin", "SPARK_CONF_DIR=/x/conf", "SPARK_ENV_LOADED=1"}},
		{"4.2.0", jar, false, []string{"PATH=/bin", "SPARK_CONF_DIR=/x/conf", "SPARK_ENV_LOADED=1"}},
		{"4.3.0", jar, false, env},                           // Spark filters itself
		{"3.5.9", jar, true, env},                            // one host: the same address everywhere
		{"3.5.9", Submission{Resource: "/a.py"}, false, env}, // client mode: the driver is spark-submit
	} {
		got := (&Distribution{Version: tc.version}).SubmitEnviron(env, tc.sub, tc.oneHost)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s oneHost=%v %s: %v, want %v", tc.version, tc.oneHost, tc.sub.DeployMode(), got, tc.want)
		}
	}
	if env[1] != "SPARK_LOCAL_IP=10.0.0.5" {
		t.Error("the caller's environment was changed")
	}
}
