package testutil

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// PrometheusAPI calls a Prometheus HTTP API path (such as /api/v1/targets) and decodes the data
// of a successful answer into data.
func PrometheusAPI(base, path string, data any) error {
	return PrometheusAPIAs(http.DefaultClient, nil, base, path, data)
}

// PrometheusAPIAs is PrometheusAPI through client, each request signed by sign when not nil (a
// Prometheus behind a login).
func PrometheusAPIAs(client *http.Client, sign func(*http.Request), base, path string, data any) error {
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	if sign != nil {
		sign(req)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: %s", path, body.Error)
	}
	return json.Unmarshal(body.Data, data)
}
