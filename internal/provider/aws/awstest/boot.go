package awstest

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sparkplane/sparkplane/internal/testutil"
)

// IMDS is an instance metadata service (IMDSv2) for one pretend instance: the paths the agent
// reads, and the notices a test can give (moto serves no metadata).
type IMDS struct {
	*httptest.Server
	InstanceID string

	mu        sync.Mutex
	spot      string // spot/instance-action, when set
	lifecycle string // autoscaling/target-lifecycle-state
}

func newIMDS(instanceID string) *IMDS {
	m := &IMDS{InstanceID: instanceID, lifecycle: "InService"}
	m.Server = httptest.NewServer(http.HandlerFunc(m.serve))
	return m
}

const imdsToken = "imds-test-token"

func (m *IMDS) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
		ttl := r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds")
		if ttl == "" {
			http.Error(w, "missing TTL", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", ttl) // clients read it back
		w.Write([]byte(imdsToken))
		return
	}
	if r.Header.Get("X-aws-ec2-metadata-token") != imdsToken {
		http.Error(w, "IMDSv2 requires a session token", http.StatusUnauthorized)
		return
	}
	m.mu.Lock()
	values := map[string]string{
		"instance-id": m.InstanceID, "local-ipv4": "127.0.0.1", "public-ipv4": "127.0.0.1",
		"placement/region": Region, "spot/instance-action": m.spot, "autoscaling/target-lifecycle-state": m.lifecycle,
	}
	m.mu.Unlock()
	v, ok := values[strings.TrimPrefix(r.URL.Path, "/latest/meta-data/")]
	if !ok || v == "" {
		http.NotFound(w, r)
		return
	}
	w.Write([]byte(v))
}

// Interrupt gives the spot interruption notice, two minutes ahead, as EC2 does.
func (m *IMDS) Interrupt() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.spot = fmt.Sprintf(`{"action": "terminate", "time": "%s"}`, time.Now().Add(2*time.Minute).UTC().Format(time.RFC3339))
}

// Terminating is the group's termination of the instance, held by its lifecycle hook.
func (m *IMDS) Terminating() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lifecycle = "Terminated"
}

// Booter plays EC2 for moto's instances, which never boot: for every running instance of a
// cluster it runs what the module's user-data would start, the sparkplane agent with the
// instance's node.json (taken from the user-data itself), an IMDSv2 of its own, moto as the AWS
// API, and a directory for /var/lib/sparkplane. It stops an agent when its instance stops.
type Booter struct {
	t       testing.TB
	cfg     aws.Config
	moto    *Moto
	bin     string
	cluster string

	mu    sync.Mutex
	nodes map[string]*bootedNode
	done  chan struct{}
	wg    sync.WaitGroup
}

type bootedNode struct {
	role       string
	prometheus string // where the monitoring instance's Prometheus listens
	imds       *IMDS
	cmd        *exec.Cmd
	dir        string
	exit       chan struct{}
}

// Boot starts playing EC2 for a cluster's instances (every cluster's, when cluster is "") until
// the test ends.
func Boot(t testing.TB, moto *Moto, bin, cluster string) *Booter {
	b := &Booter{t: t, cfg: moto.Config(), moto: moto, bin: bin, cluster: cluster, nodes: map[string]*bootedNode{}, done: make(chan struct{})}
	b.wg.Go(b.loop)
	t.Cleanup(b.stop)
	return b
}

func (b *Booter) loop() {
	e2 := ec2.NewFromConfig(b.cfg)
	for {
		select {
		case <-b.done:
			return
		case <-time.After(300 * time.Millisecond):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		filter := ec2types.Filter{Name: aws.String("tag:sparkplane/cluster"), Values: []string{b.cluster}}
		if b.cluster == "" {
			filter = ec2types.Filter{Name: aws.String("tag-key"), Values: []string{"sparkplane/cluster"}}
		}
		out, err := e2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter}})
		cancel()
		if err != nil {
			continue
		}
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				id := aws.ToString(in.InstanceId)
				b.mu.Lock()
				n, booted := b.nodes[id]
				b.mu.Unlock()
				switch {
				case in.State.Name == ec2types.InstanceStateNameRunning && !booted:
					if err := b.boot(id); err != nil {
						b.t.Errorf("boot %s: %v", id, err)
						b.mu.Lock()
						b.nodes[id] = &bootedNode{exit: closed()}
						b.mu.Unlock()
					}
				case in.State.Name != ec2types.InstanceStateNameRunning && in.State.Name != ec2types.InstanceStateNamePending && booted && n.cmd != nil:
					n.halt()
				}
			}
		}
	}
}

func closed() chan struct{} { c := make(chan struct{}); close(c); return c }

// boot starts the agent of one instance.
func (b *Booter) boot(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	attr, err := ec2.NewFromConfig(b.cfg).DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameUserData})
	if err != nil {
		return err
	}
	script, err := base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value))
	if err != nil {
		return fmt.Errorf("user-data: %w", err)
	}
	node, role, bucket, key, err := nodeFromUserData(string(script))
	if err != nil {
		return err
	}
	// What the script would fetch must be where it looks.
	if _, err := s3.NewFromConfig(b.cfg, func(o *s3.Options) { o.UsePathStyle = true }).HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return fmt.Errorf("the user-data fetches s3://%s/%s, which is not there: %w", bucket, key, err)
	}
	dir, err := os.MkdirTemp(b.t.TempDir(), role+"-")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "node.json"), []byte(node), 0o644); err != nil {
		return err
	}
	meta := newIMDS(id)
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(b.bin, "agent", "--ec2", filepath.Join(dir, "node.json"))
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	for _, kv := range b.moto.Env() {
		if !strings.HasPrefix(kv, "AWS_EC2_METADATA_DISABLED=") {
			env = append(env, kv)
		}
	}
	prom, err := freeAddr()
	if err != nil {
		return err
	}
	cmd.Env = append(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+meta.URL, "SPARKPLANE_EC2_ROOT="+dir, "SPARKPLANE_AGENT_LISTEN=127.0.0.1:0",
		"SPARKPLANE_PROMETHEUS_LISTEN="+prom)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	n := &bootedNode{role: role, prometheus: prom, imds: meta, cmd: cmd, dir: dir, exit: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(n.exit) }()
	b.mu.Lock()
	b.nodes[id] = n
	b.mu.Unlock()
	return nil
}

// nodeFromUserData reads node.json out of the module's user-data, and what it downloads.
func nodeFromUserData(script string) (node, role, bucket, key string, err error) {
	const start, end = "cat > /etc/sparkplane/node.json <<'NODE'\n", "\nNODE\n"
	i := strings.Index(script, start)
	j := strings.Index(script, end)
	if i < 0 || j < i {
		return "", "", "", "", fmt.Errorf("no node.json in the user-data:\n%s", script)
	}
	node = script[i+len(start) : j]
	for _, line := range strings.Split(node, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), `"role": "`); ok {
			role = strings.TrimSuffix(v, `",`)
		}
	}
	k := strings.Index(script, `"s3://`)
	if k < 0 {
		return "", "", "", "", fmt.Errorf("the user-data fetches nothing from S3:\n%s", script)
	}
	url := script[k+len(`"s3://`):]
	url = url[:strings.IndexByte(url, '"')]
	bucket, key, _ = strings.Cut(url, "/")
	key = strings.ReplaceAll(key, "${arch}", "amd64")
	return node, role, bucket, key, nil
}

// Node returns the IMDS and directory of a booted instance.
func (b *Booter) Node(id string) (*IMDS, string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.nodes[id]
	if !ok || n.imds == nil {
		return nil, "", false
	}
	return n.imds, n.dir, true
}

// Running lists the instances whose agents run, by role.
func (b *Booter) Running() map[string][]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string][]string{}
	for id, n := range b.nodes {
		select {
		case <-n.exit:
		default:
			out[n.role] = append(out[n.role], id)
		}
	}
	return out
}

// Logs is the end of every booted agent's log, for failure messages.
func (b *Booter) Logs() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	for id, n := range b.nodes {
		if n.dir != "" {
			fmt.Fprintf(&sb, "--- %s (%s)\n%s\n", id, n.role, testutil.Tail(filepath.Join(n.dir, "agent.log"), 15))
		}
	}
	return sb.String()
}

func (n *bootedNode) halt() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-n.exit:
	case <-time.After(30 * time.Second):
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.exit
	}
}

func (b *Booter) stop() {
	close(b.done)
	b.wg.Wait()
	b.mu.Lock()
	nodes := b.nodes
	b.mu.Unlock()
	for _, n := range nodes {
		n.halt()
		if n.imds != nil {
			n.imds.Close()
		}
	}
}

// Prometheus is the URL of the monitoring instance's Prometheus (behind its login, over TLS),
// once that instance booted.
func (b *Booter) Prometheus() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.nodes {
		if n.role == "monitoring" && n.cmd != nil {
			return "https://" + n.prometheus
		}
	}
	return ""
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
