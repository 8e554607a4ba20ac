// Package hoststest gives the hosts provider's tests machines to reach over SSH: each a network
// namespace the test makes, with an address of its own on a veth pair to this machine, running
// Debian's real sshd. Traffic stays between the namespaces and this machine.
package hoststest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/daemon"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// Host is a test machine.
type Host struct {
	Name string // the network namespace
	Addr string // its address, which sshd listens on (port 22)
	// HostKey is the private host key file sshd serves; its .pub beside it.
	HostKey string

	t       testing.TB
	dir     string
	sshd    *daemon.Process
	authKey string
}

var seq atomic.Int32

// Start makes n hosts whose sshd lets in the holder of the private key of authorizedKey (a
// public key in authorized_keys form) as root. They go at the test's end.
func Start(t testing.TB, n int, authorizedKey string) []*Host {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Fatal("sshd is not installed (hack/setup.sh installs Debian's openssh-server)")
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation
		t.Fatal(err)
	}
	hosts := make([]*Host, n)
	for i := range hosts {
		// 10.213.X.0/30 per host: X from the process and a counter, so that parallel test
		// binaries do not collide.
		k := int(seq.Add(1))
		block := (os.Getpid()*7 + k) % 250
		name := fmt.Sprintf("sp%d-%d", os.Getpid()%100000, k)
		h := &Host{Name: name, Addr: fmt.Sprintf("10.213.%d.2", block), t: t, dir: t.TempDir(), authKey: authorizedKey}
		outer, inner := "vo"+name, "vi"+name
		ip(t, "netns", "add", name)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
		ip(t, "link", "add", outer, "type", "veth", "peer", "name", inner)
		t.Cleanup(func() { exec.Command("ip", "link", "del", outer).Run() })
		ip(t, "link", "set", inner, "netns", name)
		ip(t, "addr", "add", fmt.Sprintf("10.213.%d.1/30", block), "dev", outer)
		ip(t, "link", "set", outer, "up")
		ip(t, "-n", name, "addr", "add", h.Addr+"/30", "dev", inner)
		ip(t, "-n", name, "link", "set", inner, "up")
		ip(t, "-n", name, "link", "set", "lo", "up")
		h.HostKey = filepath.Join(h.dir, "host_ed25519_key")
		h.NewHostKey()
		h.StartSSHD()
		hosts[i] = h
	}
	return hosts
}

// NewHostKey gives the host a new host key (for sshd's next start): a reinstalled machine, or
// another one at its address.
func (h *Host) NewHostKey() {
	os.Remove(h.HostKey)
	os.Remove(h.HostKey + ".pub")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", h.HostKey).CombinedOutput(); err != nil {
		h.t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
}

// Fingerprint is the host key's SHA256 fingerprint, as ssh-keygen -l prints it.
func (h *Host) Fingerprint() string {
	out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", h.HostKey+".pub").Output()
	if err != nil {
		h.t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		h.t.Fatalf("ssh-keygen -l: %q", out)
	}
	return f[1]
}

// StartSSHD starts the host's sshd, in its namespace, and waits until it accepts connections.
func (h *Host) StartSSHD() {
	h.t.Helper()
	auth := filepath.Join(h.dir, "authorized_keys")
	if err := os.WriteFile(auth, []byte(h.authKey+"\n"), 0o600); err != nil {
		h.t.Fatal(err)
	}
	cfg := filepath.Join(h.dir, "sshd_config")
	conf := fmt.Sprintf(`ListenAddress %s
Port 22
HostKey %s
AuthorizedKeysFile %s
PidFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
`, h.Addr, h.HostKey, auth, filepath.Join(h.dir, "sshd.pid"))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		h.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", h.Name, "/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	p, err := daemon.Start("sshd "+h.Name, cmd, filepath.Join(h.dir, "sshd.log"))
	if err != nil {
		h.t.Fatal(err)
	}
	h.sshd = p
	h.t.Cleanup(func() { p.Stop(5 * time.Second) })
	testutil.Eventually(h.t, 30*time.Second, "sshd on "+h.Name+" listens", func() error {
		out, err := exec.Command("ip", "netns", "exec", h.Name, "ss", "-ltn", "sport = :22").CombinedOutput()
		if err != nil || !strings.Contains(string(out), h.Addr+":22") {
			return fmt.Errorf("%v: %s\n%s", err, out, testutil.Tail(filepath.Join(h.dir, "sshd.log"), 5))
		}
		return nil
	})
}

// StopSSHD stops the host's sshd (a host that went down, or refuses connections).
func (h *Host) StopSSHD() {
	if h.sshd != nil {
		h.sshd.Stop(5 * time.Second)
		h.sshd = nil
	}
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
