package agent

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestFilesServeAJobsUploadsUntilWithdrawn(t *testing.T) {
	root := t.TempDir()
	job := filepath.Join(root, "jobs", "j-1")
	other := filepath.Join(root, "jobs", "j-2")
	for _, d := range []string{filepath.Join(job, "src"), other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(job, "etl app.jar"), []byte("the jar"), 0o644)
	os.WriteFile(filepath.Join(job, "src", "lib.jar"), []byte("cloned"), 0o644)
	os.WriteFile(filepath.Join(other, "secret.jar"), []byte("another job's"), 0o644)
	os.WriteFile(filepath.Join(root, "token"), []byte("the cluster secret"), 0o600)

	f := newFiles("0.0.0.0:7443", "127.0.0.1")
	defer f.close()
	var urls []string
	for _, p := range []string{filepath.Join(job, "etl app.jar"), filepath.Join(job, "src", "lib.jar")} {
		u, err := f.publish("j-1", job, p)
		if err != nil {
			t.Fatal(err)
		}
		urls = append(urls, u)
	}
	if !strings.HasPrefix(urls[0], "http://127.0.0.1:") || !strings.HasSuffix(urls[0], "/etl%20app.jar") {
		t.Fatalf("url %q: want the advertised host and the escaped name", urls[0])
	}
	for i, want := range []string{"the jar", "cloned"} {
		if code, body := get(t, urls[i]); code != 200 || body != want {
			t.Errorf("GET %s: %d %q, want %q", urls[i], code, body, want)
		}
	}
	if _, err := f.publish("j-1", job, filepath.Join(other, "secret.jar")); err == nil {
		t.Error("published a file outside the job's directory")
	}
	base := urls[0][:strings.LastIndex(urls[0], "/")]
	for _, p := range []string{"/../j-2/secret.jar", "/%2e%2e/%2e%2e/token", "/src", "/missing.jar"} {
		if code, body := get(t, base+p); code != http.StatusNotFound {
			t.Errorf("GET %s: %d %q, want 404", base+p, code, body)
		}
	}
	f.withdraw("j-1")
	if code, _ := get(t, urls[0]); code != http.StatusNotFound {
		t.Errorf("after the job ended: %d, want 404", code)
	}
	if code, _ := get(t, strings.Replace(urls[0], "/files/", "/files/x", 1)); code != http.StatusNotFound {
		t.Errorf("a wrong token: %d, want 404", code)
	}
}
