package testutil

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// PrometheusAPI calls a Prometheus HTTP API path (such as /api/v1/targets) and decodes the data
// of a successful answer into data.
func PrometheusAPI(base, path string, data any) error {
	resp, err := http.Get(base + path)
	if err != nil {
		return err
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
