//lint:file-ignore ST1005 the stand-in reproduces Spark's own messages verbatim

package standin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// HistoryServer stands in for org.apache.spark.deploy.history.HistoryServer with its
// FsHistoryProvider: it reads the event logs in spark.history.fs.logDirectory and lists their
// applications at /api/v1/applications, in the format of Spark's HistoryServerExpectations.
type HistoryServer struct {
	dir  string
	host string
	port int
}

// newHistoryServer reads HistoryServerArguments (--properties-file FILE) and the configuration.
func newHistoryServer(args []string, env func(string) string) (*HistoryServer, error) {
	extra := map[string]string{}
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--properties-file" && i+1 < len(args):
			for k, v := range readProperties(args[i+1]) {
				extra[k] = v
			}
			i++
		default:
			return nil, fmt.Errorf("Usage: HistoryServer [options]")
		}
	}
	conf := sparkConf(env, extra)
	h := &HistoryServer{dir: firstNonEmpty(conf["spark.history.fs.logDirectory"], "file:/tmp/spark-events"), host: "0.0.0.0", port: 18080}
	h.dir = strings.TrimPrefix(strings.TrimPrefix(h.dir, "file://"), "file:")
	if ip := env("SPARK_LOCAL_IP"); ip != "" {
		h.host = ip
	}
	if p, err := strconv.Atoi(conf["spark.history.ui.port"]); err == nil {
		h.port = p
	}
	if st, err := os.Stat(h.dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("java.io.FileNotFoundException: Log directory specified does not exist: file:%s", h.dir)
	}
	return h, nil
}

func (h *HistoryServer) run(ctx context.Context) error {
	l, err := net.Listen("tcp", net.JoinHostPort(h.host, strconv.Itoa(h.port)))
	if err != nil {
		return fmt.Errorf("java.net.BindException: Service 'HistoryServerUI' could not bind on port %d: %v", h.port, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/applications", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(pretty(h.applications())))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html><title>History Server</title></html>")
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	logf("INFO FsHistoryProvider: History server ui acls disabled; users with admin permissions: ; groups with admin permissions: ")
	logf("INFO Utils: Successfully started service 'HistoryServerUI' on port %d.", h.port)
	logf("INFO HistoryServer: Bound HistoryServer to %s, and started at http://%s:%d", h.host, h.host, h.port)
	<-ctx.Done()
	srv.Close()
	return nil
}

// historyTime is ApiHistoryServerJsonFormat's date: "2021-08-10T23:24:55.333GMT".
func historyTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000") + "GMT"
}

// applications lists the applications of the event logs, latest first.
func (h *HistoryServer) applications() []obj {
	type appLog struct {
		id, name, user, version string
		start, end, updated     int64
		completed               bool
	}
	var apps []appLog
	entries, _ := os.ReadDir(h.dir)
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		f, err := os.Open(filepath.Join(h.dir, e.Name()))
		if err != nil {
			continue
		}
		a := appLog{end: -1, completed: !strings.HasSuffix(e.Name(), ".inprogress")}
		if info, err := e.Info(); err == nil {
			a.updated = info.ModTime().UnixMilli()
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			num := func(k string) int64 { v, _ := ev[k].(float64); return int64(v) }
			str := func(k string) string { v, _ := ev[k].(string); return v }
			switch ev["Event"] {
			case "SparkListenerLogStart":
				a.version = str("Spark Version")
			case "SparkListenerApplicationStart":
				a.id, a.name, a.user, a.start = str("App ID"), str("App Name"), str("User"), num("Timestamp")
			case "SparkListenerApplicationEnd":
				a.end = num("Timestamp")
			}
		}
		f.Close()
		if a.id != "" {
			apps = append(apps, a)
		}
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].start > apps[j].start })
	out := []obj{}
	for _, a := range apps {
		duration := int64(0)
		if a.end > 0 {
			duration = a.end - a.start
		}
		lastUpdated, lastUpdatedEpoch := "", int64(0)
		if !a.completed {
			lastUpdated, lastUpdatedEpoch = historyTime(a.updated), a.updated
		}
		out = append(out, obj{{"id", a.id}, {"name", a.name}, {"attempts", []obj{{
			{"startTime", historyTime(a.start)}, {"endTime", historyTime(a.end)}, {"lastUpdated", lastUpdated},
			{"duration", duration}, {"sparkUser", a.user}, {"completed", a.completed}, {"appSparkVersion", a.version},
			{"startTimeEpoch", a.start}, {"endTimeEpoch", a.end}, {"lastUpdatedEpoch", lastUpdatedEpoch},
		}}}})
	}
	return out
}
