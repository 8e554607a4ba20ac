package spark

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// AppAPI is a client for a running application's monitoring REST API, served by its driver's
// web UI (port 4040 by default) under /api/v1.
type AppAPI struct {
	BaseURL string // http://driver-host:4040
	HTTP    *http.Client
}

// ApplicationInfo is one entry of /api/v1/applications.
type ApplicationInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// JobData is one entry of /api/v1/applications/{id}/jobs (api.scala, JobData).
type JobData struct {
	JobID             int    `json:"jobId"`
	Name              string `json:"name"`
	Status            string `json:"status"` // RUNNING, SUCCEEDED, FAILED, UNKNOWN
	NumTasks          int    `json:"numTasks"`
	NumActiveTasks    int    `json:"numActiveTasks"`
	NumCompletedTasks int    `json:"numCompletedTasks"`
	NumSkippedTasks   int    `json:"numSkippedTasks"`
	NumFailedTasks    int    `json:"numFailedTasks"`
}

// StageData is one entry of /api/v1/applications/{id}/stages (api.scala, StageData).
type StageData struct {
	Status           string `json:"status"` // ACTIVE, COMPLETE, PENDING, FAILED, SKIPPED
	StageID          int    `json:"stageId"`
	AttemptID        int    `json:"attemptId"`
	NumTasks         int    `json:"numTasks"`
	NumActiveTasks   int    `json:"numActiveTasks"`
	NumCompleteTasks int    `json:"numCompleteTasks"`
	NumFailedTasks   int    `json:"numFailedTasks"`
	NumKilledTasks   int    `json:"numKilledTasks"`
	ExecutorRunTime  int64  `json:"executorRunTime"` // ms, over its finished tasks
}

func (a *AppAPI) ui() *UI {
	h := a.HTTP
	if h == nil {
		h = &http.Client{Timeout: 3 * time.Second}
	}
	return &UI{BaseURL: a.BaseURL, HTTP: h}
}

// Applications lists what this UI serves: for a driver, its one application.
func (a *AppAPI) Applications(ctx context.Context) ([]ApplicationInfo, error) {
	var out []ApplicationInfo
	return out, a.ui().getJSON(ctx, "/api/v1/applications", &out)
}

// RunningJobs lists an application's running jobs.
func (a *AppAPI) RunningJobs(ctx context.Context, appID string) ([]JobData, error) {
	var out []JobData
	return out, a.ui().getJSON(ctx, "/api/v1/applications/"+url.PathEscape(appID)+"/jobs?status=running", &out)
}

// ActiveStages lists an application's running stages.
func (a *AppAPI) ActiveStages(ctx context.Context, appID string) ([]StageData, error) {
	var out []StageData
	return out, a.ui().getJSON(ctx, "/api/v1/applications/"+url.PathEscape(appID)+"/stages?status=active", &out)
}

// Demand is how much an application could use now and has left.
type Demand struct {
	TasksNow    int     // running and pending tasks of its active stages
	TasksLeft   int     // unfinished tasks of its running jobs, later stages included
	TaskSeconds float64 // mean run time of the finished tasks of its active stages; 0 when none finished
}

// Demand reads an application's demand from its REST API.
func (a *AppAPI) Demand(ctx context.Context, appID string) (Demand, error) {
	var d Demand
	stages, err := a.ActiveStages(ctx, appID)
	if err != nil {
		return d, err
	}
	var runMS int64
	done := 0
	for _, s := range stages {
		d.TasksNow += max(0, s.NumTasks-s.NumCompleteTasks-s.NumKilledTasks)
		runMS += s.ExecutorRunTime
		done += s.NumCompleteTasks
	}
	if done > 0 {
		d.TaskSeconds = float64(runMS) / 1000 / float64(done)
	}
	jobs, err := a.RunningJobs(ctx, appID)
	if err != nil {
		return d, err
	}
	for _, j := range jobs {
		d.TasksLeft += max(0, j.NumTasks-j.NumCompletedTasks-j.NumSkippedTasks)
	}
	d.TasksLeft = max(d.TasksLeft, d.TasksNow)
	return d, nil
}

// FindApplication looks for the UI serving appID on host, trying the ports Spark would have
// used: from port up to spark.port.maxRetries (16) above it.
func FindApplication(ctx context.Context, client *http.Client, host string, port int, appID string) (string, error) {
	for p := port; p <= port+16; p++ {
		base := fmt.Sprintf("http://%s:%d", host, p)
		apps, err := (&AppAPI{BaseURL: base, HTTP: client}).Applications(ctx)
		if err != nil {
			continue
		}
		for _, a := range apps {
			if a.ID == appID {
				return base, nil
			}
		}
	}
	return "", fmt.Errorf("no UI for %s on %s ports %d-%d", appID, host, port, port+16)
}
