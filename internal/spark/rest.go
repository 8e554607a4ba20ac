package spark

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// REST is a client for the master's REST submission server (/v1/submissions/…, PROTOCOL.md §3).
// It has no authentication: Spark 3.5 serves it only with spark.master.rest.enabled and refuses it
// beside spark.authenticate.secret; Spark 4.x serves it by default and allows both, so sparkplane
// always sets spark.master.rest.enabled (false unless spark.submit is rest).
type REST struct {
	BaseURL       string // http://host:6066
	ClientVersion string // clientSparkVersion sent with requests
	HTTP          *http.Client
}

// CreateSubmissionRequest is the body of /v1/submissions/create. On 3.5 every field here is
// mandatory, appArgs and environmentVariables included (possibly empty).
type CreateSubmissionRequest struct {
	Action               string            `json:"action"`
	AppArgs              []string          `json:"appArgs"`
	AppResource          string            `json:"appResource"`
	ClientSparkVersion   string            `json:"clientSparkVersion"`
	EnvironmentVariables map[string]string `json:"environmentVariables"`
	MainClass            string            `json:"mainClass"`
	SparkProperties      map[string]string `json:"sparkProperties"`
}

// SubmitRestResponse is any response of the REST server; which fields are set depends on Action.
type SubmitRestResponse struct {
	Action                 string   `json:"action"`
	Message                string   `json:"message,omitempty"`
	ServerSparkVersion     string   `json:"serverSparkVersion"`
	Success                *bool    `json:"success,omitempty"`
	SubmissionID           string   `json:"submissionId,omitempty"`
	DriverState            string   `json:"driverState,omitempty"`
	WorkerID               string   `json:"workerId,omitempty"`
	WorkerHostPort         string   `json:"workerHostPort,omitempty"`
	UnknownFields          []string `json:"unknownFields,omitempty"`
	HighestProtocolVersion string   `json:"highestProtocolVersion,omitempty"`
}

// RESTError is a failed REST call: an ErrorResponse, a success:false reply, or a non-JSON answer.
type RESTError struct {
	Op      string
	Status  int
	Message string
}

func (e *RESTError) Error() string {
	if e.Status != 0 && e.Status != http.StatusOK {
		return fmt.Sprintf("REST %s: HTTP %d: %s", e.Op, e.Status, e.Message)
	}
	return fmt.Sprintf("REST %s: %s", e.Op, e.Message)
}

// NotAlive reports whether the master answered that it is not the active master.
func (e *RESTError) NotAlive() bool { return strings.Contains(e.Message, "Current state is not alive") }

// NewCreateRequest builds a create request for s. The master runs the driver; appResource must be
// reachable from the workers.
func (r *REST) NewCreateRequest(s Submission) (*CreateSubmissionRequest, error) {
	if s.Resource == "" {
		return nil, ErrNoResource
	}
	if s.IsPython() {
		return nil, errors.New("the REST server runs drivers in cluster mode, which Spark does not support for Python; submit Python with spark-submit")
	}
	if s.MainClass == "" {
		return nil, errors.New("the REST server needs the main class (--class)")
	}
	props := map[string]string{}
	for k, v := range s.Conf {
		props[k] = v
	}
	props["spark.master"] = s.MasterURL
	props["spark.submit.deployMode"] = ClusterMode
	props["spark.app.name"] = s.Name
	if props["spark.app.name"] == "" {
		props["spark.app.name"] = s.MainClass
	}
	jars := append([]string{s.Resource}, s.Jars...)
	props["spark.jars"] = strings.Join(jars, ",")
	if len(s.Files) > 0 {
		props["spark.files"] = strings.Join(s.Files, ",")
	}
	args := s.Args
	if args == nil {
		args = []string{}
	}
	return &CreateSubmissionRequest{
		Action:               "CreateSubmissionRequest",
		AppArgs:              args,
		AppResource:          s.Resource,
		ClientSparkVersion:   r.ClientVersion,
		EnvironmentVariables: map[string]string{},
		MainClass:            s.MainClass,
		SparkProperties:      props,
	}, nil
}

// Create submits a driver and returns its submission id (the driver id).
func (r *REST) Create(ctx context.Context, req *CreateSubmissionRequest) (string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	resp, err := r.do(ctx, "create", http.MethodPost, "/v1/submissions/create", body)
	if err != nil {
		return "", err
	}
	if resp.SubmissionID == "" {
		return "", &RESTError{Op: "create", Message: "no submissionId in the reply"}
	}
	return resp.SubmissionID, nil
}

// Status returns a submission's driver state.
func (r *REST) Status(ctx context.Context, id string) (*SubmitRestResponse, error) {
	return r.do(ctx, "status", http.MethodGet, "/v1/submissions/status/"+id, nil)
}

// Kill asks the master to kill a submission. The kill happens later; poll Status.
func (r *REST) Kill(ctx context.Context, id string) error {
	_, err := r.do(ctx, "kill", http.MethodPost, "/v1/submissions/kill/"+id, nil)
	return err
}

func (r *REST) do(ctx context.Context, op, method, path string, body []byte) (*SubmitRestResponse, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(r.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := r.HTTP
	if client == nil {
		// Spark's own client waits at most 10 s for an answer.
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("REST %s: %w", op, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("REST %s: %w", op, err)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var out SubmitRestResponse
	if ct != "application/json" || json.Unmarshal(raw, &out) != nil {
		return nil, &RESTError{Op: op, Status: resp.StatusCode, Message: snippet(raw)}
	}
	if out.Action == "ErrorResponse" || resp.StatusCode != http.StatusOK {
		msg := out.Message
		if msg == "" {
			msg = snippet(raw)
		}
		// The server appends stack frames after the first line.
		msg, _, _ = strings.Cut(msg, "\n")
		return nil, &RESTError{Op: op, Status: resp.StatusCode, Message: msg}
	}
	if out.Success == nil || !*out.Success {
		msg := out.Message
		if msg == "" {
			msg = "the master refused the request"
			if op == "status" {
				msg = "unknown submission"
			}
		}
		return &out, &RESTError{Op: op, Status: resp.StatusCode, Message: msg}
	}
	return &out, nil
}
