package hosts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// session is one verb's connections to a cluster's hosts, each dialed once, on first use.
type session struct {
	p *Provider
	c *spec.Cluster
	d *Dialer

	mu    sync.Mutex
	conns map[string]*Conn
	homes map[string]string
}

func (p *Provider) session(c *spec.Cluster, notify func(string)) *session {
	return &session{p: p, c: c, d: p.dialer(c.Hosts, notify), conns: map[string]*Conn{}, homes: map[string]string{}}
}

func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.d.Close()
}

func (s *session) conn(ctx context.Context, host string) (*Conn, error) {
	s.mu.Lock()
	c := s.conns[host]
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := s.d.Dial(ctx, host)
	if err != nil {
		return nil, err
	}
	home, err := c.Run(ctx, `printf %s "$HOME"`, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if other := s.conns[host]; other != nil {
		c.Close()
		return other, nil
	}
	s.conns[host], s.homes[host] = c, home
	return c, nil
}

func (s *session) run(ctx context.Context, host, command string, stdin []byte) (string, error) {
	c, err := s.conn(ctx, host)
	if err != nil {
		return "", err
	}
	var in *strings.Reader
	if stdin != nil {
		in = strings.NewReader(string(stdin))
		return c.Run(ctx, command, in)
	}
	return c.Run(ctx, command, nil)
}

// dir is the cluster's directory on a host (after conn).
func (s *session) dir(host string) string { return filepath.Join(s.clusters(host), s.c.Name) }

// clusters is the directory of every cluster's directory on host.
func (s *session) clusters(host string) string {
	s.mu.Lock()
	home := s.homes[host]
	s.mu.Unlock()
	return clustersDir(s.c.Hosts, s.d.user(), home)
}

func (s *session) path(host, rel string) string { return filepath.Join(s.dir(host), rel) }

// each runs f on every host, all at once (or Options.Parallel at a time), and joins the errors.
func (s *session) each(ctx context.Context, hosts []string, f func(context.Context, string) error) error {
	errs := make([]error, len(hosts))
	limit := s.p.opts.Parallel
	if limit <= 0 {
		limit = len(hosts)
	}
	slots := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			errs[i] = f(ctx, h)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readManifest reads the cluster's manifest from its master host.
func (s *session) readManifest(ctx context.Context) (*manifest, error) {
	master := s.c.Hosts.Master
	if _, err := s.conn(ctx, master); err != nil {
		return nil, err
	}
	out, err := s.run(ctx, master, "cat "+shellQuote(s.path(master, fileManifest))+" 2>/dev/null || true", nil)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(out) == "" {
		return nil, fmt.Errorf("%s: no manifest of %s at %s: %w", master, s.c.Name, s.dir(master), provider.ErrNotFound)
	}
	var m manifest
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return nil, fmt.Errorf("%s: the manifest of %s: %w", master, s.c.Name, err)
	}
	return &m, nil
}

// state is whether the host's supervisor runs.
func (s *session) state(ctx context.Context, host string) string {
	if _, err := s.conn(ctx, host); err != nil {
		return provider.NodeStopped
	}
	if _, err := s.run(ctx, host, "d="+shellQuote(s.dir(host))+"\n"+runningScript(s.c.Name), nil); err != nil {
		return provider.NodeStopped
	}
	return provider.NodeRunning
}

// uninstall stops the host's supervisor and agent (TERM to their process group, then KILL
// after 30 s) and removes the cluster's directory, and the directories create made above it
// if nothing else is in them. A host without the cluster is success.
func (s *session) uninstall(ctx context.Context, host string) error {
	if _, err := s.conn(ctx, host); err != nil {
		return err
	}
	dir := shellQuote(s.dir(host))
	script := fmt.Sprintf(`d=%s
[ -d "$d" ] || exit 0
%smade=$(cat "$d/.made" 2>/dev/null || true)
rm -rf "$d"
for m in $made; do rmdir "$m" 2>/dev/null || true; done
`, dir, stopScript(s.c.Name, s.dir(host)))
	if _, err := s.run(ctx, host, script, nil); err != nil {
		return fmt.Errorf("remove %s from %s: %w", s.c.Name, host, err)
	}
	return nil
}

// install puts the cluster on hosts.
type install struct {
	p        *Provider
	c        *spec.Cluster
	s        *session
	created  time.Time
	cert     []byte
	key      []byte
	secret   string
	dist     *spark.Distribution
	progress func(string)

	tarOnce sync.Once
	tarball string // Spark packed for the hosts
	tarErr  error
}

func (in *install) sparkOnHosts() bool { return in.c.Spark.Home != "" }

// hosts installs on every host at once, the first the master if it is the cluster's.
func (in *install) hosts(ctx context.Context, hosts []string) error {
	return in.s.each(ctx, hosts, in.host)
}

// need is the disk a host needs, in MiB: Spark packed and unpacked, sparkplane, logs.
func (in *install) need() int64 {
	if in.sparkOnHosts() {
		return 512
	}
	return 3 * 1024
}

func (in *install) host(ctx context.Context, host string) error {
	start := time.Now()
	s := in.s
	if _, err := s.conn(ctx, host); err != nil {
		return err
	}
	in.progress(host + ": connected")
	dir := s.dir(host)
	base := filepath.Dir(filepath.Dir(dir))
	probe := fmt.Sprintf(`d=%s
echo "arch=$(uname -m)"
if [ -n "$JAVA_HOME" ] && [ -x "$JAVA_HOME/bin/java" ]; then echo "java=$JAVA_HOME/bin/java"; else echo "java=$(command -v java || ls -d /usr/lib/jvm/*/bin/java 2>/dev/null | head -n1)"; fi
p=$d; while [ ! -d "$p" ]; do p=$(dirname "$p"); done
echo "free=$(df -Pk "$p" | awk 'NR==2 {print int($4/1024)}')"
echo "writable=$( [ -w "$p" ] && echo yes || echo no)"
echo "exists=$( [ -e %s ] && echo yes || echo no)"
echo "port=$( (ss -Hltn 'sport = :%d' 2>/dev/null || netstat -ltn 2>/dev/null | grep ':%d ') | head -n1)"
`, shellQuote(base), shellQuote(dir), AgentPort, AgentPort)
	out, err := s.run(ctx, host, probe, nil)
	if err != nil {
		return err
	}
	facts := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			facts[k] = strings.TrimSpace(v)
		}
	}
	free, _ := strconv.ParseInt(facts["free"], 10, 64)
	switch {
	case facts["exists"] == "yes":
		return fmt.Errorf("%s: %s is there already: another cluster %s, or what a failed create left (sparkplane destroy %s removes it)", host, dir, in.c.Name, in.c.Name)
	case facts["java"] == "":
		return fmt.Errorf("%s: no Java: install Java 17 (Debian, Ubuntu: apt-get install openjdk-17-jre-headless), or set JAVA_HOME for %s", host, s.d.user())
	case facts["writable"] != "yes":
		return fmt.Errorf("%s: %s may not create %s: give hosts.dir a directory it may write, or connect as another hosts.user", host, s.d.user(), dir)
	case free < in.need():
		return fmt.Errorf("%s: %s has %d MiB free; the cluster needs about %d MiB there", host, base, free, in.need())
	case facts["port"] != "":
		return fmt.Errorf("%s: port %d, the agent's, is taken (ss -ltnp 'sport = :%d' there says by what)", host, AgentPort, AgentPort)
	}
	bin, err := in.p.opts.Binary(facts["arch"])
	if err != nil {
		return fmt.Errorf("%s: %w", host, err)
	}
	mkdirs := fmt.Sprintf(`set -e
made=""
for m in %s %s %s; do [ -d "$m" ] || { mkdir -m 0755 "$m"; made="$m $made"; }; done
chmod 0700 %s
printf '%%s\n' $made > %s/.made
`, shellQuote(base), shellQuote(filepath.Dir(dir)), shellQuote(dir), shellQuote(dir), shellQuote(dir))
	if _, err := s.run(ctx, host, mkdirs, nil); err != nil {
		return err
	}
	conn, _ := s.conn(ctx, host)
	sum, err := conn.Upload(ctx, bin, filepath.Join(dir, fileBinary), 0o755)
	if err != nil {
		return err
	}
	in.progress(fmt.Sprintf("%s: sparkplane copied (sha256 %s)", host, sum[:12]))
	if !in.sparkOnHosts() {
		tgz, err := in.sparkTarball(ctx)
		if err != nil {
			return err
		}
		if _, err := conn.Upload(ctx, tgz, filepath.Join(dir, fileSpark), 0o644); err != nil {
			return err
		}
		in.progress(fmt.Sprintf("%s: Spark %s copied", host, in.c.Spark.Version))
	}
	role, masterAgent := agentapi.RoleWorker, agentURL(in.c.Hosts.Master)
	if host == in.c.Hosts.Master {
		role, masterAgent = agentapi.RoleMaster, ""
	}
	nf, _ := json.MarshalIndent(NodeFile{Cluster: in.c.Name, Role: role, NodeID: host, Host: host, AgentPort: AgentPort,
		MasterAgent: masterAgent, Spec: *in.c, CreatedAt: in.created}, "", "  ")
	for _, f := range []struct {
		rel  string
		data []byte
		mode os.FileMode
	}{{fileToken, []byte(in.secret + "\n"), 0o600}, {fileKey, in.key, 0o600}, {fileCert, in.cert, 0o644},
		{fileNode, nf, 0o644}, {fileSupervisor, []byte(supervisor(in.c.Name)), 0o755}} {
		if err := writeFile(ctx, conn, filepath.Join(dir, f.rel), f.data, f.mode); err != nil {
			return err
		}
	}
	out, err = s.run(ctx, host, startScript(in.c.Name, dir), nil)
	if err != nil {
		return fmt.Errorf("%s: start the agent: %w", host, err)
	}
	in.progress(fmt.Sprintf("%s: %s agent started, kept by its %s (%s)", host, role, serviceNote(in.c.Name, out), time.Since(start).Round(100*time.Millisecond)))
	return nil
}

// writeFile writes data to path on the host, with mode, replacing it whole.
func writeFile(ctx context.Context, c *Conn, path string, data []byte, mode os.FileMode) error {
	q := shellQuote(path)
	script := fmt.Sprintf("set -e; umask 077; mkdir -p %s; cat > %s.part; chmod %o %s.part; mv %s.part %s", shellQuote(filepath.Dir(path)), q, mode.Perm(), q, q, q)
	if _, err := c.Run(ctx, script, strings.NewReader(string(data))); err != nil {
		return fmt.Errorf("write %s on %s: %w", path, c.Host, err)
	}
	return nil
}

// supervisor is the shell loop that keeps a host's agent running where there is no systemd to:
// it restarts the agent when it exits, and passes TERM on.
func supervisor(cluster string) string {
	return fmt.Sprintf(`#!/bin/sh
# sparkplane's supervisor of the agent of cluster %s on this host: it restarts the agent when it
# exits. sparkplane destroy and remove stop it with TERM to its process group.
cd "$(dirname "$0")" || exit 1
echo $$ > %s
child=""
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait; exit 0' TERM INT
while :; do
  ./%s agent --hosts %s >> %s 2>&1 &
  child=$!
  wait "$child"
  sleep 5
done
`, cluster, filePID, fileBinary, fileNode, fileLog)
}

// sparkTarball is the Spark distribution as the hosts get it, packed once per create.
func (in *install) sparkTarball(ctx context.Context) (string, error) {
	in.tarOnce.Do(func() {
		d := in.dist
		if d != nil && d.Tarball != "" {
			in.tarball = d.Tarball
			return
		}
		dir := filepath.Join(in.p.opts.Root, "hosts", "spark")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			in.tarErr = err
			return
		}
		path := filepath.Join(dir, spark.TarballName(in.c.Spark.Version))
		if _, err := os.Stat(path); err == nil {
			in.tarball = path
			return
		}
		if d == nil {
			in.tarErr = errors.New("no Spark distribution to copy to the hosts (give spark.home for a Spark they have)")
			return
		}
		f, err := os.CreateTemp(dir, ".pack-*")
		if err != nil {
			in.tarErr = err
			return
		}
		defer os.Remove(f.Name())
		if err := spark.Pack(f, d.Home, in.c.Spark.Version); err != nil {
			f.Close()
			in.tarErr = fmt.Errorf("pack Spark for the hosts: %w", err)
			return
		}
		if err := f.Close(); err != nil {
			in.tarErr = err
			return
		}
		in.tarErr = os.Rename(f.Name(), path)
		in.tarball = path
	})
	return in.tarball, in.tarErr
}

// writeManifest records the cluster's hosts on its master.
func (in *install) writeManifest(ctx context.Context, m manifest) error {
	s := in.s
	conn, err := s.conn(ctx, in.c.Hosts.Master)
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return writeFile(ctx, conn, s.path(in.c.Hosts.Master, fileManifest), b, 0o644)
}

// logTail is the end of a host's agent log, for an error.
func (in *install) logTail(ctx context.Context, host string) string {
	s := in.p.session(in.c, nil)
	defer s.close()
	if _, err := s.conn(ctx, host); err != nil {
		return err.Error()
	}
	out, _ := s.run(ctx, host, "tail -n 5 "+shellQuote(s.path(host, fileLog))+" 2>&1", nil)
	return strings.TrimSpace(out)
}

func localArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}
