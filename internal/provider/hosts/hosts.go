package hosts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/fsutil"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// Name is the provider's name in specs.
const Name = "hosts"

// AgentPort is the port of the agent's API on every host.
const AgentPort = 7443

// Options configure the provider.
type Options struct {
	// Root is this machine's directory for the provider: a record per cluster (its spec, the
	// hosts' settings and the agents' certificate), a cache of what the hosts hold.
	Root string
	// Binary is the sparkplane built for a host's architecture (uname -m); default this
	// executable, for hosts of this machine's.
	Binary func(arch string) (string, error)
	// TrustNewHosts adds hosts that known_hosts does not list (--trust-new-hosts).
	TrustNewHosts bool
	// Getenv reads HOME, USER and SSH_AUTH_SOCK (default os.Getenv).
	Getenv func(string) string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// AgentWait bounds the wait for the master's agent after create (default 3 minutes).
	AgentWait time.Duration
	// Parallel is how many hosts are worked on at once (default all of them; 1 installs them
	// one after another, as the benchmark compares).
	Parallel int
	// Spark finds the distribution to copy to hosts added after create, when the one packed
	// for create is not in Root.
	Spark func(ctx context.Context, c *spec.Cluster) (*spark.Distribution, error)
}

// Provider puts clusters on hosts over SSH.
type Provider struct {
	opts Options

	mu      sync.Mutex
	tunnels map[string]*Dialer // by cluster: the jump host's connection the agents' API goes through
}

// New returns the provider.
func New(opts Options) *Provider {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AgentWait == 0 {
		opts.AgentWait = 3 * time.Minute
	}
	if opts.Binary == nil {
		opts.Binary = func(arch string) (string, error) {
			if arch != localArch() {
				return "", fmt.Errorf("the host is %s and this sparkplane is built for %s: run sparkplane from a machine of the hosts' architecture", arch, localArch())
			}
			return os.Executable()
		}
	}
	return &Provider{opts: opts, tunnels: map[string]*Dialer{}}
}

func (p *Provider) Name() string { return Name }

func (p *Provider) Capabilities() provider.Capabilities {
	return provider.Capabilities{ShipsSpark: true, ScaledFromHere: true, LaunchLatency: 20 * time.Second}
}

// record is what this machine keeps of a cluster: enough to reach its hosts again.
type record struct {
	Spec      *spec.Cluster `json:"spec"`
	CreatedAt time.Time     `json:"createdAt"`
	Cert      string        `json:"cert"` // the agents' certificate (public)
}

// manifest is what the master host keeps of the cluster, the source of truth for its nodes.
type manifest struct {
	Spec      *spec.Cluster `json:"spec"`
	CreatedAt time.Time     `json:"createdAt"`
	Master    string        `json:"master"`
	Workers   []string      `json:"workers"`
	Cert      string        `json:"cert"`
}

func (p *Provider) recordPath(name string) string {
	return filepath.Join(p.opts.Root, "hosts", name+".json")
}

func (p *Provider) readRecord(name string) (*record, error) {
	b, err := os.ReadFile(p.recordPath(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, provider.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", p.recordPath(name), err)
	}
	return &r, nil
}

func (p *Provider) dialer(h *spec.Hosts, notify func(string)) *Dialer {
	known := h.KnownHosts
	if known == "" {
		known = filepath.Join(p.opts.Getenv("HOME"), ".ssh", "known_hosts")
	}
	return &Dialer{User: h.User, Port: h.Port, IdentityFile: h.IdentityFile, KnownHosts: known, TrustNew: p.opts.TrustNewHosts,
		Notify: notify, Getenv: p.opts.Getenv, Jump: h.Jump}
}

// clustersDir holds every cluster's directory on a host: hosts.dir/clusters.
func clustersDir(h *spec.Hosts, user, home string) string {
	base := h.Dir
	switch {
	case base != "":
	case user == "root":
		base = "/var/lib/sparkplane"
	default:
		base = filepath.Join(home, ".local", "share", "sparkplane")
	}
	return filepath.Join(base, "clusters")
}

// Plan lists the hosts and what goes on each.
func (p *Provider) Plan(ctx context.Context, c *spec.Cluster) (*provider.Plan, error) {
	if err := check(c); err != nil {
		return nil, err
	}
	plan := &provider.Plan{Provider: Name}
	what := "sparkplane and Spark " + c.Spark.Version + " copied, the agent started"
	if c.Spark.Home != "" {
		what = "sparkplane copied, the agent started with Spark at " + c.Spark.Home
	}
	plan.Changes = append(plan.Changes, provider.Change{Action: provider.Create, Resource: "host " + c.Hosts.Master + " (master)", Detail: what})
	for _, w := range c.Hosts.Workers[:c.Workers.Count] {
		plan.Changes = append(plan.Changes, provider.Change{Action: provider.Create, Resource: "host " + w + " (worker)", Detail: what})
	}
	return plan, nil
}

func check(c *spec.Cluster) error {
	if c.Hosts == nil || c.Hosts.Master == "" {
		return c.Origin.Errorf("hosts.master", "name the machine that runs the master", "required for provider hosts")
	}
	if c.Workers.Count > len(c.Hosts.Workers) {
		return c.Origin.Errorf("workers.count", "list more hosts in hosts.workers", "%d workers, but hosts.workers lists %d hosts", c.Workers.Count, len(c.Hosts.Workers))
	}
	return nil
}

// Create installs the cluster on its master and first workers.count worker hosts, all at once,
// and returns once the master's agent answers. What it made is left for Destroy on error.
func (p *Provider) Create(ctx context.Context, c *spec.Cluster, opts provider.CreateOptions) (*provider.Cluster, error) {
	if err := check(c); err != nil {
		return nil, err
	}
	if _, err := p.readRecord(c.Name); err == nil {
		return nil, &provider.ExistsError{Name: c.Name, Provider: Name}
	}
	progress := func(s string) {
		if opts.Progress != nil {
			opts.Progress(s)
		}
	}
	created := p.opts.Now().UTC().Truncate(time.Second)
	certPEM, keyPEM, err := agentapi.NewCertificate(c.Name, created)
	if err != nil {
		return nil, err
	}
	// The record first, so that Destroy finds the hosts of a create that fails half-way.
	rec := &record{Spec: c, CreatedAt: created, Cert: string(certPEM)}
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := fsutil.WriteFileAtomic(p.recordPath(c.Name), b, 0o600); err != nil {
		return nil, err
	}
	progress(fmt.Sprintf("installing on %d host(s) at once", 1+c.Workers.Count))
	s := p.session(c, progress)
	defer s.close()
	in := &install{p: p, c: c, s: s, created: created, cert: certPEM, key: keyPEM, secret: opts.Secret, dist: opts.Spark, progress: progress}
	workers := c.Hosts.Workers[:c.Workers.Count]
	if err := in.hosts(ctx, append([]string{c.Hosts.Master}, workers...)); err != nil {
		return nil, err
	}
	m := manifest{Spec: c, CreatedAt: created, Master: c.Hosts.Master, Workers: workers, Cert: string(certPEM)}
	if err := in.writeManifest(ctx, m); err != nil {
		return nil, err
	}
	client, err := provider.AgentClient(ctx, p, c.Name, agentURL(c.Hosts.Master), opts.Secret)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(p.opts.AgentWait)
	for {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := client.Health(hctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the master's agent on %s did not answer within %s: %w (its log: %s)", c.Hosts.Master, p.opts.AgentWait, err, in.logTail(ctx, c.Hosts.Master))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	progress("the master's agent answers at " + agentURL(c.Hosts.Master))
	return p.Get(ctx, c.Name)
}

// open connects to a cluster's hosts as its record here says, and reads its manifest from its
// master.
func (p *Provider) open(ctx context.Context, name string) (*session, *manifest, error) {
	rec, err := p.readRecord(name)
	if err != nil {
		return nil, nil, err
	}
	s := p.session(rec.Spec, nil)
	m, err := s.readManifest(ctx)
	if err != nil {
		s.close()
		return nil, nil, err
	}
	return s, m, nil
}

// Get describes the cluster from its master's manifest, and each host's supervisor.
func (p *Provider) Get(ctx context.Context, name string) (*provider.Cluster, error) {
	s, m, err := p.open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer s.close()
	hosts := m.hosts()
	states := make([]string, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { states[i] = s.state(ctx, h) })
	}
	wg.Wait()
	return m.cluster(name, states), nil
}

// agentURL is the API of the agent on a host.
func agentURL(host string) string {
	return "https://" + net.JoinHostPort(host, strconv.Itoa(AgentPort))
}

// hosts are the master, then the workers.
func (m *manifest) hosts() []string { return append([]string{m.Master}, m.Workers...) }

// cluster is the cluster the manifest describes, its hosts in the given states.
func (m *manifest) cluster(name string, states []string) *provider.Cluster {
	out := &provider.Cluster{Name: name, Provider: Name, Spec: m.Spec, CreatedAt: m.CreatedAt, Agent: agentURL(m.Master)}
	for i, h := range m.hosts() {
		role := agentapi.RoleWorker
		if i == 0 {
			role = agentapi.RoleMaster
		}
		out.Nodes = append(out.Nodes, provider.Node{ID: h, Role: role, State: states[i], Address: h, Agent: agentURL(h), Detail: "host " + h})
	}
	return out
}

// List describes the clusters this machine has made.
func (p *Provider) List(ctx context.Context) ([]provider.Cluster, error) {
	files, _ := filepath.Glob(filepath.Join(p.opts.Root, "hosts", "*.json"))
	var out []provider.Cluster
	for _, f := range files {
		c, err := p.Get(ctx, strings.TrimSuffix(filepath.Base(f), ".json"))
		if errors.Is(err, provider.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, nil
}

// Find looks for clusters on the hosts the spec names (its master and workers), whichever
// machine made them: each master's manifest names its hosts and holds its spec and
// certificate. Each found is recorded here, reached with this spec's SSH settings (user, port,
// keys, known_hosts, jump host), so that every verb works on it. A host that cannot be reached
// is an error beside what the others held.
func (p *Provider) Find(ctx context.Context, c *spec.Cluster) ([]provider.Cluster, error) {
	if c.Hosts == nil || c.Hosts.Master == "" {
		return nil, c.Origin.Errorf("hosts.master", "name the hosts to look on", "required to find clusters on hosts")
	}
	s := p.session(c, nil)
	defer s.close()
	look := slices.Compact(append([]string{c.Hosts.Master}, c.Hosts.Workers...))
	manifests := make([][]*manifest, len(look))
	err := s.each(ctx, look, func(ctx context.Context, host string) error {
		if _, err := s.conn(ctx, host); err != nil {
			return err
		}
		base := s.clusters(host)
		out, err := s.run(ctx, host, fmt.Sprintf(`for f in %s/*/%s; do [ -f "$f" ] && { cat "$f"; echo; }; done; true`, shellQuote(base), fileManifest), nil)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(strings.NewReader(out))
		for {
			var m manifest
			if err := dec.Decode(&m); err == io.EOF {
				return nil
			} else if err != nil {
				return fmt.Errorf("%s: a manifest under %s: %w", host, base, err)
			}
			if m.Spec != nil && m.Master == host {
				i := slices.Index(look, host)
				manifests[i] = append(manifests[i], &m)
			}
		}
	})
	var out []provider.Cluster
	for _, ms := range manifests {
		for _, m := range ms {
			name := m.Spec.Name
			if slices.ContainsFunc(out, func(x provider.Cluster) bool { return x.Name == name }) {
				continue
			}
			if _, rerr := p.readRecord(name); errors.Is(rerr, provider.ErrNotFound) {
				sp := *m.Spec
				h := *sp.Hosts
				h.User, h.Port, h.IdentityFile, h.KnownHosts, h.Jump = c.Hosts.User, c.Hosts.Port, c.Hosts.IdentityFile, c.Hosts.KnownHosts, c.Hosts.Jump
				sp.Hosts = &h
				b, _ := json.MarshalIndent(record{Spec: &sp, CreatedAt: m.CreatedAt, Cert: m.Cert}, "", "  ")
				if werr := fsutil.WriteFileAtomic(p.recordPath(name), b, 0o600); werr != nil {
					return out, werr
				}
			}
			got, gerr := p.Get(ctx, name)
			if gerr != nil {
				err = errors.Join(err, gerr)
				continue
			}
			out = append(out, *got)
		}
	}
	return out, err
}

// Secret reads the token from the master host.
func (p *Provider) Secret(ctx context.Context, name string) (string, error) {
	rec, err := p.readRecord(name)
	if err != nil {
		return "", err
	}
	s := p.session(rec.Spec, nil)
	defer s.close()
	out, err := s.run(ctx, rec.Spec.Hosts.Master, "cat "+shellQuote(s.path(rec.Spec.Hosts.Master, fileToken)), nil)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// AgentHTTPClient trusts exactly the cluster's certificate.
func (p *Provider) AgentHTTPClient(ctx context.Context, name string) (*http.Client, error) {
	rec, err := p.readRecord(name)
	if err != nil {
		return nil, err
	}
	client, err := agentapi.PinnedClient([]byte(rec.Cert))
	if err != nil || rec.Spec.Hosts.Jump == "" {
		return client, err
	}
	// Through the jump host, on one SSH connection kept for as long as this process runs.
	p.mu.Lock()
	d := p.tunnels[name]
	if d == nil {
		d = p.dialer(rec.Spec.Hosts, nil)
		p.tunnels[name] = d
	}
	p.mu.Unlock()
	tr := client.Transport.(*http.Transport)
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) { return d.DialTCP(ctx, addr) }
	return client, nil
}

// EventLogDir is on the master host (storage.path when given), until a shared store is set.
func (p *Provider) EventLogDir(name string, c *spec.Cluster) string {
	return provider.NodesEventLogDir(name, c)
}

// AddWorkers installs the next n hosts of hosts.workers that the cluster does not use.
func (p *Provider) AddWorkers(ctx context.Context, name string, n int) ([]string, error) {
	s, m, err := p.open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer s.close()
	var free []string
	for _, h := range m.Spec.Hosts.Workers {
		if !slices.Contains(m.Workers, h) {
			free = append(free, h)
		}
	}
	if len(free) < n {
		return nil, fmt.Errorf("%s has %d unused host(s) in hosts.workers, not %d: list more there", name, len(free), n)
	}
	return p.AddHosts(ctx, name, free[:n])
}

// AddHosts installs the cluster's worker on the given hosts and records them on the master.
func (p *Provider) AddHosts(ctx context.Context, name string, hosts []string) ([]string, error) {
	s, m, err := p.open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer s.close()
	for _, h := range hosts {
		if h == m.Master || slices.Contains(m.Workers, h) {
			return nil, fmt.Errorf("%s already runs on %s", name, h)
		}
	}
	secret, err := p.Secret(ctx, name)
	if err != nil {
		return nil, err
	}
	key, err := s.run(ctx, m.Master, "cat "+shellQuote(s.path(m.Master, fileKey)), nil)
	if err != nil {
		return nil, err
	}
	in := &install{p: p, c: m.Spec, created: m.CreatedAt, cert: []byte(m.Cert), key: []byte(key), secret: secret, s: s, progress: func(string) {}}
	if !in.sparkOnHosts() && p.opts.Spark != nil {
		if in.dist, err = p.opts.Spark(ctx, m.Spec); err != nil {
			return nil, err
		}
	}
	// Recorded first, so that a failed add leaves the hosts for Destroy.
	m.Workers = append(m.Workers, hosts...)
	if err := in.writeManifest(ctx, *m); err != nil {
		return nil, err
	}
	if err := in.hosts(ctx, hosts); err != nil {
		return nil, err
	}
	return hosts, nil
}

// RemoveWorkers stops the given workers' agents and removes the cluster's files from their
// hosts.
func (p *Provider) RemoveWorkers(ctx context.Context, name string, nodes []string) error {
	s, m, err := p.open(ctx, name)
	if err != nil {
		return err
	}
	defer s.close()
	for _, id := range nodes {
		if !slices.Contains(m.Workers, id) {
			return fmt.Errorf("%s has no worker %s", name, id)
		}
	}
	if err := s.each(ctx, nodes, s.uninstall); err != nil {
		return err
	}
	m.Workers = slices.DeleteFunc(m.Workers, func(h string) bool { return slices.Contains(nodes, h) })
	in := &install{p: p, c: m.Spec, s: s}
	return in.writeManifest(ctx, *m)
}

// Destroy stops every agent of the cluster and removes every file it put on its hosts, then
// its record here. Hosts that are down are an error naming them; nothing is forgotten.
func (p *Provider) Destroy(ctx context.Context, name string) error {
	rec, err := p.readRecord(name)
	if errors.Is(err, provider.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s := p.session(rec.Spec, nil)
	defer s.close()
	hosts := append([]string{rec.Spec.Hosts.Master}, rec.Spec.Hosts.Workers...)
	if m, err := s.readManifest(ctx); err == nil {
		for _, h := range m.Workers {
			if !slices.Contains(hosts, h) {
				hosts = append(hosts, h)
			}
		}
	}
	// Every host it can reach; the master last, since its manifest names the hosts added
	// after create. The record stays while a host could not be cleaned, so that destroy can be
	// run again.
	if err := s.each(ctx, hosts[1:], s.uninstall); err != nil {
		return fmt.Errorf("%w\n(the cluster stays recorded, and its master untouched, until every host is clean: run destroy again once they answer)", err)
	}
	if err := s.uninstall(ctx, hosts[0]); err != nil {
		return err
	}
	return os.Remove(p.recordPath(name))
}
