package testutil

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/daemon"
)

// StartConsul runs a real Consul dev agent (the testbed's) on loopback ports of its own,
// optionally with ACLs on (default deny, aclToken the management token), and returns its HTTP
// address, HOST:PORT, once it takes writes.
func StartConsul(t testing.TB, aclToken string) string {
	t.Helper()
	bin := Testbed(t, "consul")
	httpPort := FreePort(t)
	hcl := fmt.Sprintf(`ports { http = %d, dns = -1, grpc = -1, grpc_tls = -1, serf_lan = %d, serf_wan = %d, server = %d }`, httpPort, FreePort(t), FreePort(t), FreePort(t))
	if aclToken != "" {
		hcl += fmt.Sprintf(` acl { enabled = true, default_policy = "deny", tokens { initial_management = %q } }`, aclToken)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1", "-hcl", hcl)
	proc, err := daemon.Start("Consul", cmd, filepath.Join(dir, "consul.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Stop(10 * time.Second) })
	addr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	if err := proc.WaitHTTP(context.Background(), "http://"+addr+"/v1/status/leader", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	Eventually(t, time.Minute, "Consul elects itself and takes writes", func() error {
		return ConsulPut(addr, aclToken, "sparkplane-test/ready", "1")
	})
	return addr
}

// ConsulPut writes a key in the KV store of the Consul agent at addr.
func ConsulPut(addr, token, key, value string) error {
	req, err := http.NewRequest(http.MethodPut, "http://"+addr+"/v1/kv/"+key, strings.NewReader(value))
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: %s", key, resp.Status)
	}
	return nil
}
