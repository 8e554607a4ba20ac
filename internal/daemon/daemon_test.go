package daemon

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExitAtStartShowsTheLog(t *testing.T) {
	p, err := Start("broken", exec.Command("sh", "-c", "echo 'bind: address already in use' >&2; exit 3"), filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitHTTP(context.Background(), "http://127.0.0.1:1/", 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "broken exited at start") || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("got %v", err)
	}
}

func TestStopKillsWhatIgnoresTerm(t *testing.T) {
	p, err := Start("stubborn", exec.Command("sh", "-c", "trap '' TERM; sleep 60 & wait"), filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the shell set its trap
	p.Stop(300 * time.Millisecond)
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned with the process alive")
	}
}

func TestWaitHTTPGivesUp(t *testing.T) {
	p, err := Start("silent", exec.Command("sleep", "60"), filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitHTTP(context.Background(), "http://127.0.0.1:1/", 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Errorf("got %v", err)
	}
	select {
	case <-p.Done():
	case <-time.After(15 * time.Second):
		t.Error("the process was not stopped when the wait gave up")
	}
}
