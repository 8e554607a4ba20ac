package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/cluster/clustertest"
	"github.com/sparkplane/sparkplane/internal/spark/sparktest"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

func benchEnv(b *testing.B) *clustertest.Env {
	return clustertest.NewEnv(b, sparktest.Home(b, "3.5.3"))
}

// BenchmarkCreate measures create until every worker is registered in Spark, with the stand-in;
// destroy is not timed.
func BenchmarkCreate(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			e := benchEnv(b)
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				c, err := spec.Default(spec.Options{DefaultName: fmt.Sprintf("bench-%d-%d", workers, i),
					Overrides: []spec.Override{{Path: []string{"workers", "count"}, Value: strconv.Itoa(workers), Flag: "bench"}}})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := e.M.Destroy(ctx, cluster.Ref{Name: c.Name}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// rssMiB reads a process's resident set size.
func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.Fields(rest)[0])
			return float64(kb) / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// BenchmarkIdleCluster reports the agents' memory at idle and how long status takes, through the
// sparkplane binary (what a user waits for) and through the library.
func BenchmarkIdleCluster(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	c, _ := spec.Default(spec.Options{DefaultName: "idle-bench"})
	if _, err := e.M.Create(ctx, c, cluster.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.M.Destroy(context.Background(), cluster.Ref{Name: c.Name}) })
	time.Sleep(5 * time.Second) // let the agents settle into their idle loops
	st, err := e.M.Status(ctx, cluster.Ref{Name: c.Name})
	if err != nil {
		b.Fatal(err)
	}
	var master, worker float64
	for _, n := range st.Nodes {
		pid, _ := strconv.Atoi(strings.TrimPrefix(n.Detail, "pid "))
		rss, err := rssMiB(pid)
		if err != nil {
			b.Fatal(err)
		}
		if n.Role == "master" {
			master = rss
		} else {
			worker = max(worker, rss)
		}
	}
	bin := testutil.Build(b, "github.com/sparkplane/sparkplane/cmd/sparkplane")
	b.Run("status-cli", func(b *testing.B) {
		b.ReportMetric(master, "master-agent-RSS-MiB")
		b.ReportMetric(worker, "worker-agent-RSS-MiB")
		for i := 0; i < b.N; i++ {
			cmd := exec.Command(bin, "status", c.Name, "-o", "json")
			cmd.Env = append(os.Environ(), "SPARKPLANE_HOME="+e.Root)
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := cmd.Run(); err != nil || !strings.Contains(out.String(), `"state": "running"`) {
				b.Fatalf("status: %v %s", err, out.String())
			}
		}
	})
	b.Run("status-library", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := e.M.Status(ctx, cluster.Ref{Name: c.Name}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
