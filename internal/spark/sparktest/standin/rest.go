package standin

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
)

// restHandler is the master's REST submission server (/v1/submissions/…): create, status and kill,
// validated as branch-3.5 validates them, answered as Jackson writes them (alphabetical keys).
func (m *Master) restHandler() http.Handler {
	version := "3.5.3"
	send := func(w http.ResponseWriter, status int, fields map[string]any) {
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := obj{}
		for _, k := range keys {
			o = append(o, field{k, fields[k]})
		}
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(status)
		w.Write([]byte(pretty(o)))
	}
	fail := func(w http.ResponseWriter, status int, msg string) {
		send(w, status, map[string]any{"action": "ErrorResponse", "message": msg, "serverSparkVersion": version})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/submissions/create", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			fail(w, 400, "Malformed request: com.fasterxml.jackson.core.JsonParseException")
			return
		}
		var req struct {
			Action               *string
			AppArgs              []string
			AppResource          *string
			ClientSparkVersion   *string
			EnvironmentVariables map[string]string
			MainClass            *string
			SparkProperties      map[string]string
		}
		json.Unmarshal(body, &req)
		invalid := req.Action == nil || *req.Action != "CreateSubmissionRequest" || req.ClientSparkVersion == nil ||
			req.SparkProperties == nil || req.AppResource == nil || req.AppArgs == nil || req.EnvironmentVariables == nil ||
			req.SparkProperties["spark.app.name"] == ""
		if invalid {
			fail(w, 400, "Malformed request: org.apache.spark.deploy.rest.SubmitRestProtocolException: Validation of message CreateSubmissionRequest failed!\n\tat org.apache.spark.deploy.rest.SubmitRestProtocolMessage.validate")
			return
		}
		if req.MainClass == nil {
			fail(w, 400, "Malformed request: org.apache.spark.deploy.rest.SubmitRestMissingFieldException: Main class is missing.")
			return
		}
		jar := *req.AppResource
		desc := driverDesc{MainClass: *req.MainClass, Resource: jar, Args: req.AppArgs, Conf: req.SparkProperties, Env: req.EnvironmentVariables,
			Cores: atoiOr(req.SparkProperties["spark.driver.cores"], 1), MemoryMiB: memoryMiB(req.SparkProperties["spark.driver.memory"], 1024)}
		m.mu.Lock()
		d := m.submitLocked(desc)
		m.mu.Unlock()
		var unknown []string
		for k := range raw {
			switch k {
			case "action", "appArgs", "appResource", "clientSparkVersion", "environmentVariables", "mainClass", "sparkProperties":
			default:
				unknown = append(unknown, k)
			}
		}
		out := map[string]any{"action": "CreateSubmissionResponse", "message": "Driver successfully submitted as " + d.id,
			"serverSparkVersion": version, "submissionId": d.id, "success": true}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			out["unknownFields"] = unknown
		}
		send(w, 200, out)
	})
	idOf := func(path, prefix string) string {
		id, _, _ := strings.Cut(strings.TrimPrefix(path, prefix), "/")
		return id
	}
	mux.HandleFunc("/v1/submissions/status/", func(w http.ResponseWriter, r *http.Request) {
		id := idOf(r.URL.Path, "/v1/submissions/status/")
		if id == "" {
			fail(w, 400, "Submission ID is missing in status request.")
			return
		}
		m.mu.Lock()
		d := m.findDriverLocked(id)
		var out map[string]any
		if d == nil {
			out = map[string]any{"action": "SubmissionStatusResponse", "serverSparkVersion": version, "submissionId": id, "success": false}
		} else {
			out = map[string]any{"action": "SubmissionStatusResponse", "serverSparkVersion": version, "submissionId": id, "success": true, "driverState": d.state}
			if w := m.workerLocked(d.worker); w != nil {
				out["workerId"] = w.id
				out["workerHostPort"] = w.host + ":" + itoa(w.port)
			}
		}
		m.mu.Unlock()
		send(w, 200, out)
	})
	mux.HandleFunc("/v1/submissions/kill/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		id := idOf(r.URL.Path, "/v1/submissions/kill/")
		m.mu.Lock()
		res := m.killDriverLocked(id)
		m.mu.Unlock()
		send(w, 200, map[string]any{"action": "KillSubmissionResponse", "message": res["message"], "serverSparkVersion": version,
			"submissionId": id, "success": res["success"]})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, 400, "Missing an action: please specify one of /create, /kill, or /status.")
	})
	return mux
}
