package nomad_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// BenchmarkRealSparkCreate measures, on a real Nomad agent with real Spark, the time from
// create until every worker is ALIVE in the Spark master (s/alive), and the Nomad API calls of
// one `sparkplane status` from a machine with no state of its own (calls/status, through a
// counting proxy). The client's resources are stated larger than this machine's in the agent's
// configuration, so that 20 workers of 1 core and 512 MiB fit; the time is then what 2 cores
// take to start 21 JVMs and their agents.
//
//	go test -run '^$' -bench RealSparkCreate -benchtime 1x ./internal/provider/nomad
func BenchmarkRealSparkCreate(b *testing.B) {
	if testing.Short() {
		b.Skip("runs a Nomad agent and real Spark")
	}
	addr, _ := startNomadServer(b, false, "client {\n  memory_total_mb = 65536\n  cpu_total_compute = 40000\n}")
	home := sparktest.RealHome(b, sparktest.Newest())
	specs := specFor(b, addr, home)
	bin := testutil.Build(b, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	p := newProvider(addr)
	for _, n := range []int{3, 20} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				ctx := context.Background()
				c := specs(fmt.Sprintf("bench-%d-%d", n, i), n)
				c.Workers.MemoryMiB = 512
				const secret = "bench-secret-0123456789"
				start := time.Now()
				got, err := p.Create(ctx, c, provider.CreateOptions{Secret: secret})
				if err != nil {
					b.Fatal(err)
				}
				testutil.Eventually(b, 10*time.Minute, fmt.Sprintf("%d workers ALIVE", n), func() error {
					ws, err := workers(ctx, p, c.Name, secret)
					if err != nil {
						return err
					}
					alive := 0
					for _, w := range ws {
						if w.State == spark.WorkerAlive {
							alive++
						}
					}
					if alive < n {
						return fmt.Errorf("%d of %d alive", alive, n)
					}
					return nil
				})
				b.ReportMetric(time.Since(start).Seconds(), "s/alive")
				b.ReportMetric(float64(len(got.Workers())), "workers")
				calls, paths := statusCalls(b, bin, addr, c.Name)
				b.ReportMetric(float64(calls), "calls/status")
				b.Logf("one status, %d workers: %d Nomad API calls: %s", n, calls, strings.Join(paths, ", "))
				if err := p.Destroy(ctx, c.Name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// statusCalls runs `sparkplane status NAME -p nomad -o json` from an empty SPARKPLANE_HOME
// through a proxy to Nomad that counts the requests, and returns their number and paths.
func statusCalls(b *testing.B, bin, addr, name string) (int, []string) {
	target, _ := url.Parse(addr)
	var mu sync.Mutex
	var paths []string
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	cmd := exec.Command(bin, "status", name, "-p", "nomad", "-o", "json")
	cmd.Env = append(os.Environ(), "NOMAD_ADDR="+srv.URL, "SPARKPLANE_HOME="+b.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("status: %v\n%s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	sorted := append([]string(nil), paths...)
	sort.Strings(sorted)
	return len(paths), sorted
}
