package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// -o json and -o yaml write durations and memory as the spec does, keep the field order, and omit
// what encoding/json omits.
func TestOutputUsesTheSpecsUnits(t *testing.T) {
	c, err := spec.Default(spec.Options{DefaultName: "c", Overrides: []spec.Override{
		{Path: []string{"lifetime", "idleTimeout"}, Value: "90m", Flag: "test"},
		{Path: []string{"workers", "memory"}, Value: "1536m", Flag: "test"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	st := agentapi.ClusterStatus{Cluster: "c", MemoryMiB: 4096, MemoryUsed: 512,
		Lifetime: agentapi.Lifetime{MaxAge: 2 * time.Hour, CreatedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}}
	var out bytes.Buffer
	io := &IOStreams{Out: &out}
	if err := io.Print(FormatJSON, struct {
		Spec   *spec.Cluster          `json:"spec"`
		Status agentapi.ClusterStatus `json:"status"`
	}{c, st}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{`"memory": "1536m"`, `"idleTimeout": "1h30m"`, `"interval": "10s"`, `"maxAge": "2h"`,
		`"memoryUsed": "512m"`, `"createdAt": "2026-12-01T00:00:00Z"`} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %s:\n%s", want, text)
		}
	}
	if strings.Contains(text, "MiB") || strings.Contains(text, "5400000000000") {
		t.Errorf("output keeps MiB names or nanoseconds:\n%s", text)
	}
	if i, j := strings.Index(text, `"name"`), strings.Index(text, `"provider"`); i < 0 || j < i {
		t.Errorf("fields out of the struct's order:\n%s", text)
	}
	var generic map[string]any
	if err := json.Unmarshal(out.Bytes(), &generic); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	// What it prints, the spec reads back.
	if d, err := spec.ParseDuration("1h30m"); err != nil || d != 90*time.Minute {
		t.Errorf("spec.ParseDuration(1h30m) = %v %v", d, err)
	}
	for d, want := range map[time.Duration]string{0: "0s", 10 * time.Second: "10s", time.Hour: "1h", 90 * time.Second: "1m30s", 1500 * time.Millisecond: "1.5s", 25 * time.Hour: "25h"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
	out.Reset()
	if err := io.Print(FormatYAML, c); err != nil || !strings.Contains(out.String(), "idleTimeout: 1h30m") || !strings.Contains(out.String(), "memory: 1536m") {
		t.Errorf("yaml: %v\n%s", err, out.String())
	}
}
