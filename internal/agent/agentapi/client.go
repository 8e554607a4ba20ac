package agentapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sparkplane/sparkplane/internal/state"
)

// Client calls an agent's API. Every call but Health carries the cluster token.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// APIError is an error answer from an agent.
type APIError struct {
	Status  int
	Message string
	Hint    string
}

func (e *APIError) Error() string {
	msg := e.Message
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// ErrUnauthorized is the agent's answer to a wrong or missing token.
var ErrUnauthorized = errors.New("the agent refused the cluster token")

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

func (c *Client) do(req *http.Request, out any) error {
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("agent at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	return decode(resp, out)
}

func decode(resp *http.Response, out any) error {
	if resp.StatusCode == http.StatusUnauthorized {
		return ErrUnauthorized
	}
	if resp.StatusCode >= 300 {
		var e Error
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error, Hint: e.Hint}
	}
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	return c.do(req, out)
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := c.newRequest(ctx, http.MethodPost, path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, out)
}

// Health asks whether the agent answers at all.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var h Health
	return &h, c.getJSON(ctx, "/v1/health", &h)
}

// Status is the cluster's status, from the master's agent.
func (c *Client) Status(ctx context.Context) (*ClusterStatus, error) {
	var s ClusterStatus
	return &s, c.getJSON(ctx, "/v1/status", &s)
}

// Metrics is the agent's metrics exposition, in Prometheus' text format.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	b, _, err := c.getRaw(ctx, "/metrics")
	return b, err
}

// getRaw GETs path and returns the body of a 200 answer as it is, with its headers.
func (c *Client) getRaw(ctx context.Context, path string) ([]byte, http.Header, error) {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("agent at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, decode(resp, nil)
	}
	b, err := io.ReadAll(resp.Body)
	return b, resp.Header, err
}

// Submit sends a job, uploading local files: uploads maps the names used in req to paths on this
// machine. The body is streamed, so large applications are not held in memory.
func (c *Client) Submit(ctx context.Context, req JobRequest, uploads map[string]string) (*state.Job, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			jw, err := mw.CreateFormField("job")
			if err != nil {
				return err
			}
			if err := json.NewEncoder(jw).Encode(req); err != nil {
				return err
			}
			for name, path := range uploads {
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				fw, err := mw.CreateFormFile("file", name)
				if err == nil {
					_, err = io.Copy(fw, f)
				}
				f.Close()
				if err != nil {
					return err
				}
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	hreq, err := c.newRequest(ctx, http.MethodPost, "/v1/jobs", pr)
	if err != nil {
		pr.Close()
		return nil, err
	}
	hreq.Header.Set("Content-Type", mw.FormDataContentType())
	var job state.Job
	// Uploads may be large: no overall timeout beyond ctx.
	client := *c.httpClient()
	client.Timeout = 0
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("agent at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	return &job, decode(resp, &job)
}

// Jobs lists the cluster's jobs, newest first.
func (c *Client) Jobs(ctx context.Context) ([]state.Job, error) {
	var jobs []state.Job
	return jobs, c.getJSON(ctx, "/v1/jobs", &jobs)
}

// Job returns one job.
func (c *Client) Job(ctx context.Context, id string) (*state.Job, error) {
	var j state.Job
	return &j, c.getJSON(ctx, "/v1/jobs/"+url.PathEscape(id), &j)
}

// Kill stops a job.
func (c *Client) Kill(ctx context.Context, id string) (*state.Job, error) {
	var j state.Job
	return &j, c.postJSON(ctx, "/v1/jobs/"+url.PathEscape(id)+"/kill", struct{}{}, &j)
}

// LogChunk is a piece of a log from Offset on.
type LogChunk struct {
	Data []byte
	Next int64 // offset of the next read
	Done bool  // nothing more will be written
}

// Logs reads a job's driver log from offset on.
func (c *Client) Logs(ctx context.Context, id, stream string, offset int64) (*LogChunk, error) {
	return c.logs(ctx, "/v1/jobs/"+url.PathEscape(id)+"/logs", stream, offset)
}

// DriverLogs reads, from a worker's agent, the log of a driver that ran on that worker.
func (c *Client) DriverLogs(ctx context.Context, driverID, stream string, offset int64) (*LogChunk, error) {
	return c.logs(ctx, "/v1/drivers/"+url.PathEscape(driverID)+"/logs", stream, offset)
}

func (c *Client) logs(ctx context.Context, path, stream string, offset int64) (*LogChunk, error) {
	q := url.Values{"stream": {stream}, "offset": {strconv.FormatInt(offset, 10)}}
	data, h, err := c.getRaw(ctx, path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	next, err := strconv.ParseInt(h.Get(HeaderOffset), 10, 64)
	if err != nil {
		next = offset + int64(len(data))
	}
	return &LogChunk{Data: data, Next: next, Done: h.Get(HeaderDone) == "true"}, nil
}

// AddWorkers asks the master's agent for more workers.
func (c *Client) AddWorkers(ctx context.Context, n int) (*WorkersResult, error) {
	var r WorkersResult
	return &r, c.postJSON(ctx, "/v1/workers/add", AddWorkersRequest{Count: n}, &r)
}

// RemoveWorkers asks the master's agent to drain and stop workers.
func (c *Client) RemoveWorkers(ctx context.Context, req RemoveWorkersRequest) (*WorkersResult, error) {
	var r WorkersResult
	client := *c
	hc := *c.httpClient()
	hc.Timeout = 0 // draining takes as long as it takes; ctx bounds it
	client.HTTP = &hc
	return &r, client.postJSON(ctx, "/v1/workers/remove", req, &r)
}

// Register is a worker agent's registration with the master's agent.
func (c *Client) Register(ctx context.Context, r Registration) (*RegistrationReply, error) {
	var reply RegistrationReply
	return &reply, c.postJSON(ctx, "/v1/nodes/register", r, &reply)
}

// WorkerStatus is a worker agent's own status.
func (c *Client) WorkerStatus(ctx context.Context) (*WorkerNodeStatus, error) {
	var s WorkerNodeStatus
	return &s, c.getJSON(ctx, "/v1/status", &s)
}

// Decommission asks a worker agent to decommission its Spark worker.
func (c *Client) Decommission(ctx context.Context) error {
	return c.postJSON(ctx, "/v1/decommission", struct{}{}, nil)
}

// Shutdown asks an agent to stop itself and its Spark daemon. It does not destroy the cluster.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.postJSON(ctx, "/v1/shutdown", struct{}{}, nil)
}

// ReadEndpoint reads the endpoint file an agent wrote in its node directory.
func ReadEndpoint(nodeDir string) (*Endpoint, error) {
	b, err := os.ReadFile(filepath.Join(nodeDir, EndpointFile))
	if err != nil {
		return nil, err
	}
	var e Endpoint
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(nodeDir, EndpointFile), err)
	}
	return &e, nil
}
