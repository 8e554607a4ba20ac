package spark

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Worker, application and driver states (WorkerState, ApplicationState, DriverState).
const (
	WorkerAlive          = "ALIVE"
	WorkerDead           = "DEAD"
	WorkerDecommissioned = "DECOMMISSIONED"

	AppWaiting  = "WAITING"
	AppRunning  = "RUNNING"
	AppFinished = "FINISHED"
	AppFailed   = "FAILED"
	AppKilled   = "KILLED"

	DriverSubmitted   = "SUBMITTED"
	DriverRunning     = "RUNNING"
	DriverFinished    = "FINISHED"
	DriverRelaunching = "RELAUNCHING"
	DriverUnknown     = "UNKNOWN"
	DriverKilled      = "KILLED"
	DriverFailed      = "FAILED"
	DriverError       = "ERROR"
)

// DriverTerminal reports whether a driver state is final: the master forgets the driver's process
// on exactly these (Master.scala, DriverStateChanged).
func DriverTerminal(state string) bool {
	switch state {
	case DriverFinished, DriverKilled, DriverFailed, DriverError:
		return true
	}
	return false
}

// MasterState is the master's /json/ (JsonProtocol.writeMasterState).
type MasterState struct {
	URL              string       `json:"url"`
	Workers          []WorkerInfo `json:"workers"` // all known workers, dead ones included
	AliveWorkers     int          `json:"aliveworkers"`
	Cores            int          `json:"cores"` // over alive workers only
	CoresUsed        int          `json:"coresused"`
	Memory           int          `json:"memory"` // MiB
	MemoryUsed       int          `json:"memoryused"`
	ActiveApps       []AppInfo    `json:"activeapps"`
	CompletedApps    []AppInfo    `json:"completedapps"`
	ActiveDrivers    []DriverInfo `json:"activedrivers"`
	CompletedDrivers []DriverInfo `json:"completeddrivers"`
	Status           string       `json:"status"` // ALIVE, STANDBY, RECOVERING, COMPLETING_RECOVERY
}

// WorkerInfo is one worker as the master sees it (writeWorkerInfo).
type WorkerInfo struct {
	ID            string `json:"id"`
	Host          string `json:"host"`
	Port          int    `json:"port"`
	WebUIAddress  string `json:"webuiaddress"`
	Cores         int    `json:"cores"`
	CoresUsed     int    `json:"coresused"`
	CoresFree     int    `json:"coresfree"`
	Memory        int    `json:"memory"`
	MemoryUsed    int    `json:"memoryused"`
	MemoryFree    int    `json:"memoryfree"`
	State         string `json:"state"`
	LastHeartbeat int64  `json:"lastheartbeat"` // epoch ms
}

// AppInfo is one application (writeApplicationInfo). Cores is what is granted now.
type AppInfo struct {
	ID                string `json:"id"`
	StartTime         int64  `json:"starttime"` // epoch ms, a number
	Name              string `json:"name"`
	Cores             int    `json:"cores"`
	User              string `json:"user"`
	MemoryPerExecutor int    `json:"memoryperexecutor"`
	SubmitDate        string `json:"submitdate"`
	State             string `json:"state"`
	Duration          int64  `json:"duration"` // ms
}

// UnmarshalJSON accepts the older memoryperslave name when memoryperexecutor is absent.
func (a *AppInfo) UnmarshalJSON(b []byte) error {
	type plain AppInfo
	var v struct {
		plain
		MemoryPerSlave *int `json:"memoryperslave"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*a = AppInfo(v.plain)
	if a.MemoryPerExecutor == 0 && v.MemoryPerSlave != nil {
		a.MemoryPerExecutor = *v.MemoryPerSlave
	}
	return nil
}

// DriverInfo is one driver (writeDriverInfo). Its start time is epoch ms written as a JSON string;
// Worker is the worker id, or "None" while unassigned.
type DriverInfo struct {
	ID         string    `json:"id"`
	StartTime  flexInt64 `json:"starttime"`
	State      string    `json:"state"`
	Cores      int       `json:"cores"`
	Memory     int       `json:"memory"`
	SubmitDate string    `json:"submitdate"`
	Worker     string    `json:"worker"`
	MainClass  string    `json:"mainclass"`
}

// Assigned reports whether the driver has been placed on a worker.
func (d DriverInfo) Assigned() bool { return d.Worker != "" && d.Worker != "None" }

// Started returns the driver's start time.
func (d DriverInfo) Started() time.Time { return time.UnixMilli(int64(d.StartTime)) }

// flexInt64 reads a JSON number or a JSON string holding one.
type flexInt64 int64

func (f *flexInt64) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if len(b) == 0 || string(b) == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("starttime %q: %w", b, err)
	}
	*f = flexInt64(n)
	return nil
}

func (f flexInt64) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(strconv.FormatInt(int64(f), 10))), nil
}

// WorkerState is a worker's own /json/ (writeWorkerState).
type WorkerState struct {
	ID                string         `json:"id"`
	MasterURL         string         `json:"masterurl"`
	MasterWebUIURL    string         `json:"masterwebuiurl"`
	Cores             int            `json:"cores"`
	CoresUsed         int            `json:"coresused"`
	Memory            int            `json:"memory"`
	MemoryUsed        int            `json:"memoryused"`
	Executors         []ExecutorInfo `json:"executors"`
	FinishedExecutors []ExecutorInfo `json:"finishedexecutors"`
}

// ExecutorInfo is an executor on a worker (writeExecutorRunner).
type ExecutorInfo struct {
	ID     int    `json:"id"`
	Memory int    `json:"memory"`
	AppID  string `json:"appid"`
}

// UI is a client for a Spark web UI (master or worker). Requests go to /json/ with the trailing
// slash; the response's text/json content type is not checked.
type UI struct {
	BaseURL string // e.g. http://127.0.0.1:8080
	HTTP    *http.Client
}

func (u *UI) client() *http.Client {
	if u.HTTP != nil {
		return u.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// HTTPError is a non-success answer from a Spark UI.
type HTTPError struct {
	Method, URL string
	Status      int
	Body        string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

func (u *UI) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.BaseURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := u.client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &HTTPError{Method: "GET", URL: req.URL.String(), Status: resp.StatusCode, Body: snippet(body)}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", req.URL, err)
	}
	return nil
}

// MasterState reads the master's full state.
func (u *UI) MasterState(ctx context.Context) (*MasterState, error) {
	var s MasterState
	if err := u.getJSON(ctx, "/json/", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// WorkerState reads a worker's own state.
func (u *UI) WorkerState(ctx context.Context) (*WorkerState, error) {
	var s WorkerState
	if err := u.getJSON(ctx, "/json/", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ErrNoWorkerOnHost is the master's 404 to a decommission request that matched no worker.
var ErrNoWorkerOnHost = errors.New("no worker on that host")

// DecommissionHosts asks the master to decommission every worker on the given hosts
// (POST /workers/kill/?host=…). Spark allows it only from the master's own machine by default,
// and only with spark.decommission.enabled.
func (u *UI) DecommissionHosts(ctx context.Context, hosts ...string) error {
	q := url.Values{"host": hosts}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.BaseURL+"/workers/kill/?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := u.client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
		return ErrNoWorkerOnHost
	default:
		return &HTTPError{Method: "POST", URL: req.URL.String(), Status: resp.StatusCode, Body: snippet(body)}
	}
}

func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		b = append(b[:300:300], "…"...)
	}
	return string(b)
}
