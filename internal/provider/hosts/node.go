package hosts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/node"
	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
	"github.com/sparkplane/sparkplane/internal/spec"
)

// NodeFile is what create writes on each host, in the cluster's directory there: where the
// host's agent finds its cluster. It holds no secret; the token and the TLS key are files
// beside it (0600).
type NodeFile struct {
	Cluster     string       `json:"cluster"`
	Role        string       `json:"role"`   // master | worker
	NodeID      string       `json:"nodeId"` // the host, as the spec names it
	Host        string       `json:"host"`   // the address Spark and the agent advertise
	AgentPort   int          `json:"agentPort"`
	MasterAgent string       `json:"masterAgent,omitempty"` // on a worker
	Spec        spec.Cluster `json:"spec"`
	CreatedAt   time.Time    `json:"createdAt"`
}

// Files in a cluster's directory on a host.
const (
	fileNode       = "node.json"
	fileToken      = "token"
	fileKey        = "tls/agent.key"
	fileCert       = "tls/agent.crt"
	fileBinary     = "bin/sparkplane"
	fileSpark      = "spark.tgz"
	fileSupervisor = "run.sh"
	filePID        = "supervisor.pid"
	fileService    = "service" // how the agent is kept running: see startScript
	fileLog        = "agent.log"
	fileManifest   = "manifest.json" // on the master: the cluster's hosts
)

// hostNode is `sparkplane agent --hosts FILE` on a host (node.Source): everything from the
// node file and the files create put beside it.
type hostNode struct {
	nf  NodeFile
	dir string
	log *slog.Logger
}

// NodeSource reads a host's node file.
func NodeSource(path string, log *slog.Logger) (node.Source, error) {
	// The supervisor names it relative to the cluster's directory; every path the agent and
	// Spark derive from it must not be (a job's working directory is not that one).
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	h := &hostNode{dir: filepath.Dir(path), log: log}
	if err := json.Unmarshal(b, &h.nf); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if h.nf.Cluster == "" || h.nf.Role == "" || h.nf.AgentPort == 0 {
		return nil, fmt.Errorf("%s lacks the cluster, role or agent port", path)
	}
	return h, nil
}

func (h *hostNode) Identity(context.Context) (node.Identity, error) {
	return node.Identity{Cluster: h.nf.Cluster, Provider: Name, Role: h.nf.Role, NodeID: h.nf.NodeID, Root: h.dir,
		Host: h.nf.Host, Listen: net.JoinHostPort(h.nf.Host, strconv.Itoa(h.nf.AgentPort))}, nil
}

func (h *hostNode) Cluster(context.Context) (spec.Cluster, time.Time, error) {
	return h.nf.Spec, h.nf.CreatedAt, nil
}

func (h *hostNode) Secrets(context.Context) (node.Secrets, error) {
	token, err := os.ReadFile(filepath.Join(h.dir, fileToken))
	if err != nil {
		return node.Secrets{}, err
	}
	key, err := os.ReadFile(filepath.Join(h.dir, fileKey))
	if err != nil {
		return node.Secrets{}, err
	}
	cert, err := os.ReadFile(filepath.Join(h.dir, fileCert))
	if err != nil {
		return node.Secrets{}, err
	}
	return node.Secrets{Token: string(trimNL(token)), TLSKey: key, Cert: cert}, nil
}

// Spark is spark.home on the host, or the tarball create copied, unpacked once.
func (h *hostNode) Spark(ctx context.Context, version, dir string) (string, error) {
	if home := h.nf.Spec.Spark.Home; home != "" {
		if _, err := spark.OpenHome(home); err != nil {
			return "", fmt.Errorf("spark.home on this host: %w", err)
		}
		return home, nil
	}
	return node.UnpackSpark(ctx, version, dir, func(_ context.Context, tgz string) error {
		return os.Rename(filepath.Join(h.dir, fileSpark), tgz)
	})
}

func (h *hostNode) MasterAgent(context.Context) (string, error) {
	if h.nf.MasterAgent == "" {
		return "", errors.New("the node file names no master agent")
	}
	return h.nf.MasterAgent, nil
}

func (h *hostNode) Publish(context.Context, string) error { return nil }

func (h *hostNode) Watch(ctx context.Context, _ chan<- agentapi.Interruption) { <-ctx.Done() }

// Provider, inside the cluster, knows the cluster's hosts from the master's manifest, and can
// do nothing to them: no private key is on any host. (The spec refuses a lifetime and
// autoscaling for provider hosts; sparkplane add and remove work from the user's machine.)
func (h *hostNode) Provider() provider.Provider { return inside{dir: h.dir} }

func (h *hostNode) Beside(ctx context.Context, _ *node.Node) error { <-ctx.Done(); return nil }

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// inside is the provider as a master's agent sees it: it reads the manifest beside it, and may
// not reach the other hosts.
type inside struct{ dir string }

var errInside = errors.New("a hosts cluster's agents cannot reach the other hosts over SSH (no private key is on any host): add and remove hosts with sparkplane add and remove, from a machine that can")

func (inside) Name() string { return Name }
func (inside) Capabilities() provider.Capabilities {
	return provider.Capabilities{ScaledFromHere: true}
}
func (inside) Plan(context.Context, *spec.Cluster) (*provider.Plan, error) {
	return nil, errInside
}
func (inside) Create(context.Context, *spec.Cluster, provider.CreateOptions) (*provider.Cluster, error) {
	return nil, errInside
}

// manifest is the cluster's manifest, on the master's host.
func (in inside) manifest(name string) (*manifest, error) {
	b, err := os.ReadFile(filepath.Join(in.dir, fileManifest))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no manifest of %s on this host (only the master's has one)", provider.ErrNotFound, name)
	}
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(in.dir, fileManifest), err)
	}
	return &m, nil
}

// Get is the cluster as the manifest lists it, every host taken to be running: from here they
// cannot be asked.
func (in inside) Get(_ context.Context, name string) (*provider.Cluster, error) {
	m, err := in.manifest(name)
	if err != nil {
		return nil, err
	}
	states := make([]string, len(m.hosts()))
	for i := range states {
		states[i] = provider.NodeRunning
	}
	return m.cluster(name, states), nil
}

func (inside) List(context.Context) ([]provider.Cluster, error) { return nil, errInside }
func (inside) Secret(context.Context, string) (string, error)   { return "", errInside }
func (inside) EventLogDir(name string, c *spec.Cluster) string {
	return provider.NodesEventLogDir(name, c)
}
func (inside) AddWorkers(context.Context, string, int) ([]string, error) { return nil, errInside }

// RemoveWorkers succeeds for hosts the manifest no longer lists (removed from outside), and
// refuses the others.
func (in inside) RemoveWorkers(_ context.Context, name string, nodes []string) error {
	m, err := in.manifest(name)
	if err != nil {
		return err
	}
	for _, id := range nodes {
		if slices.Contains(m.Workers, id) {
			return errInside
		}
	}
	return nil
}
func (inside) Destroy(context.Context, string) error { return errInside }
