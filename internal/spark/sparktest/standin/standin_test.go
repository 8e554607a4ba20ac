package standin

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// objectKeys returns, for each object in doc, its keys in order, keyed by the object's own
// first key (enough to tell workers, apps, drivers and the root apart).
func objectKeys(t *testing.T, doc []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var walk func(raw json.RawMessage, name string)
	walk = func(raw json.RawMessage, name string) {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			return
		}
		switch raw[0] {
		case '{':
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.Token()
			var keys []string
			for dec.More() {
				k, _ := dec.Token()
				var v json.RawMessage
				dec.Decode(&v)
				keys = append(keys, k.(string))
				walk(v, name+"."+k.(string))
			}
			if _, seen := out[name]; !seen {
				out[name] = keys
			}
		case '[':
			var items []json.RawMessage
			json.Unmarshal(raw, &items)
			for _, it := range items {
				walk(it, name+"[]")
			}
		}
	}
	walk(doc, "$")
	return out
}

func TestMasterJSONMatchesSparkKeyOrder(t *testing.T) {
	want, err := os.ReadFile("testdata/master-state.json")
	if err != nil {
		t.Fatal(err)
	}
	m := &Master{host: "10.0.0.10", port: 7077, uiPort: 8080}
	w := &worker{id: "worker-1", host: "10.0.0.11", port: 35001, uiPort: 8081, cores: 8, memory: 15360, state: "ALIVE", lastHeartbeat: time.Now()}
	m.workers = []*worker{w}
	a := &app{id: "app-1", name: "Spark Pi", user: "spark", start: time.Now(), state: "RUNNING", memPerExecutor: 1024,
		executors: map[string]*executor{"worker-1": {worker: "worker-1", cores: 4, mem: 1024}}}
	m.apps = []*app{a}
	done := &app{id: "app-0", name: "Spark shell", user: "spark", start: time.Now(), end: time.Now(), state: "FINISHED", memPerExecutor: 1024, executors: map[string]*executor{}}
	m.completedApps = []*app{done}
	m.drivers = []*driver{{id: "driver-1", start: time.Now(), state: "RUNNING", cores: 1, mem: 1024, worker: "worker-1", mainClass: "org.apache.spark.examples.SparkPi"}}
	got := pretty(m.stateJSONLocked())

	gk, wk := objectKeys(t, []byte(got)), objectKeys(t, want)
	for name, keys := range wk {
		if strings.Join(gk[name], ",") != strings.Join(keys, ",") {
			t.Errorf("%s keys:\n got %v\nwant %v", name, gk[name], keys)
		}
	}
	// json4s style, as in the fixture.
	for _, frag := range []string{"{\n  \"url\" : \"spark://10.0.0.10:7077\",\n  \"workers\" : [ {\n    \"id\" : ", "\"resources\" : { }", "\"completeddrivers\" : [ ]", "\"starttime\" : \""} {
		if !strings.Contains(got, frag) {
			t.Errorf("rendering lacks %q:\n%s", frag, got)
		}
	}
	if strings.HasSuffix(got, "\n") {
		t.Error("Spark's JSON has no trailing newline")
	}
}

func TestReadProperties(t *testing.T) {
	f := t.TempDir() + "/p.conf"
	os.WriteFile(f, []byte("# comment\n! also\nspark.a 1\nspark.b=two words  \nspark.c:3\nspark.d\\ e x\\\\y\n  spark.f   \\ lead\n"), 0o644)
	p := readProperties(f)
	want := map[string]string{"spark.a": "1", "spark.b": "two words", "spark.c": "3", "spark.d e": "x\\y", "spark.f": "lead"}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%q = %q, want %q", k, p[k], v)
		}
	}
	conf := sparkConf(envFunc(map[string]string{"JDK_JAVA_OPTIONS": "-Xss4m -Dspark.x=y -Dother=z"}), map[string]string{"spark.z": "1"})
	if conf["spark.x"] != "y" || conf["spark.z"] != "1" || conf["other"] != "" {
		t.Errorf("sparkConf: %v", conf)
	}
}

func TestProgramDirectives(t *testing.T) {
	f := t.TempDir() + "/app.py"
	os.WriteFile(f, []byte("# standin: work=3 exit=2 print=\"hello world\" print=bye\nimport x\n"), 0o644)
	p := loadProgram(f, []string{"standin:cores=4", "real-arg"})
	if p.tasks != 30 || p.exit != 2 || p.cores != 4 || strings.Join(p.prints, "|") != "hello world|bye" || strings.Join(p.args, ",") != "real-arg" {
		t.Errorf("program: %+v", p)
	}
	if d := loadProgram("/nonexistent.jar", nil); d.tasks != 5 || d.taskTime != 100*time.Millisecond || d.prints[0] != "Pi is roughly 3.141592" {
		t.Errorf("defaults: %+v", d)
	}
	if d := loadProgram("", []string{"standin:tasks=40", "standin:task=2s"}); d.tasks != 40 || d.taskTime != 2*time.Second {
		t.Errorf("tasks: %+v", d)
	}
}

func TestApplicationMetricsMatchTheServlet(t *testing.T) {
	m := &Master{host: "10.0.0.10", port: 7077, uiPort: 8080}
	m.workers = []*worker{{id: "worker-1", host: "10.0.0.11", cores: 8, memory: 15360, state: "ALIVE", lastHeartbeat: time.Now()}}
	start := time.UnixMilli(1705314930125)
	m.apps = []*app{{id: "app-1", name: "Spark Pi", start: start, state: "RUNNING",
		executors: map[string]*executor{"worker-1": {worker: "worker-1", cores: 8, mem: 1024}}}}
	rec := httptest.NewRecorder()
	m.uiHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics/applications/prometheus", nil))
	want, err := os.ReadFile("testdata/prometheus-servlet-applications.txt") // the shared fixture
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's runtime is that of a moment past; everything else must be the same.
	runtime := regexp.MustCompile(`(runtime_ms_(Number|Value)\{type="gauges"\}) \d+`)
	got := runtime.ReplaceAllString(rec.Body.String(), "$1 N")
	if w := runtime.ReplaceAllString(string(want), "$1 N"); strings.TrimSpace(got) != strings.TrimSpace(w) {
		t.Errorf("got\n%s\nwant\n%s", got, w)
	}
}

func TestHistoryListingMatchesSpark(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/app-20261121101500-0000", []byte(`{"Event":"SparkListenerLogStart","Spark Version":"3.5.3"}
{"Event":"SparkListenerApplicationStart","App Name":"etl","App ID":"app-20261121101500-0000","Timestamp":1763720100000,"User":"ana"}
{"Event":"SparkListenerApplicationEnd","Timestamp":1763720160000}
`), 0o644)
	os.WriteFile(dir+"/app-20261121102000-0001.inprogress", []byte(`{"Event":"SparkListenerLogStart","Spark Version":"3.5.3"}
{"Event":"SparkListenerApplicationStart","App Name":"stream","App ID":"app-20261121102000-0001","Timestamp":1763720400000,"User":"ana"}
`), 0o644)
	h, err := newHistoryServer(nil, envFunc(map[string]string{"JDK_JAVA_OPTIONS": "-Dspark.history.fs.logDirectory=file://" + dir}))
	if err != nil {
		t.Fatal(err)
	}
	got := pretty(h.applications())
	want, err := os.ReadFile("testdata/history-application-list.json")
	if err != nil {
		t.Fatal(err)
	}
	gk, wk := objectKeys(t, []byte(got)), objectKeys(t, want)
	for _, name := range []string{"$[]", "$[].attempts[]"} {
		if strings.Join(gk[name], ",") != strings.Join(wk[name], ",") {
			t.Errorf("%s keys:\n got %v\nwant %v", name, gk[name], wk[name])
		}
	}
	for _, frag := range []string{`"id" : "app-20261121102000-0001"`, `"startTime" : "2025-11-21T10:15:00.000GMT"`, `"duration" : 60000`,
		`"completed" : false`, `"endTimeEpoch" : -1`} {
		if !strings.Contains(got, frag) {
			t.Errorf("listing lacks %s:\n%s", frag, got)
		}
	}
	if strings.Index(got, "app-20261121102000-0001") > strings.Index(got, "app-20261121101500-0000") {
		t.Errorf("latest application not first:\n%s", got)
	}
	if _, err := newHistoryServer(nil, envFunc(map[string]string{"JDK_JAVA_OPTIONS": "-Dspark.history.fs.logDirectory=/nonexistent"})); err == nil {
		t.Error("a missing log directory was accepted")
	}
}
