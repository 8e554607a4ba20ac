package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// progress shows the manager's steps on stderr: a spinner while a step runs on a terminal,
// then ✓ or ✗.
type progress struct {
	io  *IOStreams
	mu  sync.Mutex
	end func()
}

func (p *progress) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.end != nil {
		p.end()
		p.end = nil
	}
}

func (p *progress) Start(msg string) {
	p.stop()
	end := p.io.Step("%s", msg)
	p.mu.Lock()
	p.end = end
	p.mu.Unlock()
}
func (p *progress) Done(msg string) { p.stop(); p.io.Success("%s", msg) }
func (p *progress) Fail(msg string) { p.stop(); p.io.Failure("%s", msg) }
func (p *progress) Info(msg string) { p.stop(); p.io.Info("%s", msg) }
func (p *progress) Warn(msg string) { p.stop(); p.io.Warn("%s", msg) }

// manager builds a cluster.Manager; sparkHome is the --spark-home flag, if any.
func (f *Factory) manager(sparkHome string) (*cluster.Manager, *progress, error) {
	store, err := f.Store()
	if err != nil {
		return nil, nil, err
	}
	reg, err := f.Providers()
	if err != nil {
		return nil, nil, err
	}
	pr := &progress{io: f.IO}
	m := &cluster.Manager{Providers: reg, Store: store, Progress: pr}
	m.Spark = func(ctx context.Context, c *spec.Cluster) (*spark.Distribution, error) {
		return f.resolveSpark(ctx, c, sparkHome, pr)
	}
	m.S3A = func(ctx context.Context, d *spark.Distribution) (*spark.Connector, error) {
		cache, err := f.CacheDir()
		if err != nil {
			return nil, err
		}
		return spark.ResolveConnector(ctx, spark.ConnectorOptions{Home: d.Home, CacheDir: filepath.Join(cache, "s3a"), Maven: f.Getenv("SPARKPLANE_MAVEN"), Progress: pr.Info})
	}
	return m, pr, nil
}

// resolveSpark finds Spark: --spark-home, then the spec's spark.home, then SPARK_HOME (each an
// unpacked Spark or a pip-installed pyspark package), then the pyspark that Python imports when it
// is the spec's release, then the cache, then a download.
func (f *Factory) resolveSpark(ctx context.Context, c *spec.Cluster, flagHome string, pr *progress) (*spark.Distribution, error) {
	for _, h := range []struct{ home, from string }{{flagHome, "--spark-home"}, {c.Spark.Home, "spark.home"}, {f.Getenv("SPARK_HOME"), "SPARK_HOME"}} {
		if h.home == "" {
			continue
		}
		d, err := spark.OpenHome(h.home)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.from, err)
		}
		d.From = h.from
		return d, nil
	}
	python := f.Getenv("PYSPARK_PYTHON")
	if python == "" {
		python = "python3"
	}
	if d, err := spark.FindPySpark(ctx, python); err == nil && d.Version == c.Spark.Version {
		return d, nil
	}
	cache, err := f.CacheDir()
	if err != nil {
		return nil, err
	}
	opts := spark.ResolveOptions{Version: c.Spark.Version, CacheDir: cache + "/spark"}
	if c.Spark.Mirror != "" {
		opts.Mirrors = []string{c.Spark.Mirror}
	}
	opts.Progress = f.downloadBar(pr, "Downloading "+spark.TarballName(c.Spark.Version))
	return spark.Resolve(ctx, opts)
}

// downloadBar reports a download: a bar redrawn in place on a terminal, a line every 10% otherwise.
func (f *Factory) downloadBar(pr *progress, label string) func(done, total int64) {
	var last time.Time
	lastTenth := int64(-1)
	started := false
	return func(done, total int64) {
		if !started {
			pr.stop()
			started = true
		}
		if f.IO.errTTY {
			if time.Since(last) < 100*time.Millisecond && done != total {
				return
			}
			last = time.Now()
			if total > 0 {
				pct := done * 100 / total
				bar := strings.Repeat("█", int(pct/4)) + strings.Repeat("░", 25-int(pct/4))
				fmt.Fprintf(f.IO.ErrOut, "\r%s %s %3d%% %s/%s", label, bar, pct, mib(done), mib(total))
			} else {
				fmt.Fprintf(f.IO.ErrOut, "\r%s %s", label, mib(done))
			}
			if done == total {
				fmt.Fprintln(f.IO.ErrOut)
			}
			return
		}
		if total > 0 {
			if tenth := done * 10 / total; tenth != lastTenth {
				lastTenth = tenth
				f.IO.Info("%s: %d%% of %s", label, tenth*10, mib(total))
			}
		}
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
