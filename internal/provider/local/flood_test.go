package local_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
)

// A master agent whose file descriptors are limited to 4,096 keeps answering its owner while
// 6,000 connections are opened against it from loopback and held: a third send nothing, a third
// ask for its health (which anyone may) and a third call the API without a token, each then
// reading nothing and never closing. Without the agent's limits the health and 401 connections
// stay open for good and take every descriptor.
func TestMasterAgentAnswersItsOwnerDuringAConnectionFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 6,000 connections")
	}
	p, root := newProvider(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := smallSpec("flood", 1)
	opts := sparkOptions(sparktest.Home(t, "3.5.3"))(t)
	opts.Secret = "flood-secret"
	t.Cleanup(func() { p.Destroy(context.Background(), c.Name) })
	got, err := p.Create(ctx, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	owner := &agentapi.Client{BaseURL: got.Agent, Token: opts.Secret}
	waitAlive(t, ctx, owner, 1)
	pid := pidOf(t, root, c.Name, "master")
	const limit, flood = 4096, 6000
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Skipf("cannot lower the agent's file-descriptor limit: %v", err)
	}
	u, _ := url.Parse(got.Agent)

	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	requests := []string{"", "GET /v1/health HTTP/1.1\r\nHost: a\r\n\r\n", "GET /v1/status HTTP/1.1\r\nHost: a\r\n\r\n"}
	var wg sync.WaitGroup
	var refused int
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < flood; i += 4 {
				conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
				if err != nil {
					mu.Lock()
					refused++
					mu.Unlock()
					continue
				}
				if r := requests[i%3]; r != "" {
					conn.Write([]byte(r))
				}
				mu.Lock()
				held = append(held, conn)
				mu.Unlock()
			}
		})
	}
	// The owner asks throughout, each call on a new connection as a new CLI command would.
	var slowest time.Duration
	calls := 0
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	ask := func() {
		fresh := &agentapi.Client{BaseURL: got.Agent, Token: opts.Secret,
			HTTP: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
		start := time.Now()
		st, err := fresh.Status(ctx)
		if err != nil || st.AliveWorkers() != 1 {
			t.Errorf("status during the flood (call %d, %s in): %v %+v", calls, time.Since(start), err, st)
			return
		}
		slowest = max(slowest, time.Since(start))
		calls++
	}
flooding:
	for {
		select {
		case <-done:
			break flooding
		case <-time.After(20 * time.Millisecond):
			ask()
		}
	}
	during := calls
	for range 5 { // and while the flood's connections are held
		ask()
	}
	fds, _ := os.ReadDir(filepath.Join("/proc", fmt.Sprint(pid), "fd"))
	t.Logf("%d connections attempted (%d refused or timed out); %d status calls (%d while connecting), the slowest %s; the agent holds %d descriptors of %d",
		flood, refused, calls, during, slowest, len(fds), limit)
	if during < 1 {
		t.Errorf("no status call was made while the flood connected")
	}
	if len(fds) >= limit {
		t.Errorf("the agent holds %d descriptors, its whole limit", len(fds))
	}
}
