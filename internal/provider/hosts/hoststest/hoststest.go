// Package hoststest gives the hosts provider's tests machines to reach over SSH: each a network
// namespace the test makes, with an address of its own on a veth pair to this machine, running
// Debian's real sshd. Traffic stays between the namespaces and this machine.
package hoststest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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
	// Private is what the host sees at PrivateDir.
	Private string

	t       testing.TB
	dir     string
	sshd    *daemon.Process
	authKey string
}

var seq atomic.Int32

// PrivateDir is the directory each host has of its own (a bind mount in the mount namespace of
// its sshd, and so of every session): the hosts share this machine's other files, so the
// provider's default directory for root is made private to each.
const PrivateDir = "/var/lib/sparkplane"

// Start makes n hosts on a bridge of their own, 10.213.B.0/24, whose sshd lets in the holder
// of the private key of authorizedKey (a public key in authorized_keys form) as root. The hosts
// reach each other and this machine (10.213.B.1), nothing else. They go at the test's end.
func Start(t testing.TB, n int, authorizedKey string) []*Host {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Fatal("sshd is not installed (hack/setup.sh installs Debian's openssh-server)")
	}
	for _, d := range []string{"/run/sshd", PrivateDir} { // sshd's privilege separation; a mount point
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	k := int(seq.Add(1))
	block := (os.Getpid()*7 + k) % 250
	bridge := fmt.Sprintf("spbr%d", (os.Getpid()*7+k)%100000)
	ip(t, "link", "add", bridge, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	ip(t, "addr", "add", fmt.Sprintf("10.213.%d.1/24", block), "dev", bridge)
	ip(t, "link", "set", bridge, "up")
	// Where bridged traffic passes the firewall (br_netfilter, a FORWARD policy of DROP, as a
	// Docker daemon leaves it), let the hosts' traffic through, on this bridge alone.
	if _, err := exec.LookPath("iptables"); err == nil {
		rule := []string{"FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"}
		if exec.Command("iptables", append([]string{"-I"}, rule...)...).Run() == nil {
			t.Cleanup(func() { exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() })
		}
	}
	hosts := make([]*Host, n)
	for i := range hosts {
		name := fmt.Sprintf("%s-%d", bridge, i)
		h := &Host{Name: name, Addr: fmt.Sprintf("10.213.%d.%d", block, i+2), t: t, dir: t.TempDir(), authKey: authorizedKey}
		outer, inner := fmt.Sprintf("vo%d-%d", (os.Getpid()*7+k)%100000, i), fmt.Sprintf("vi%d-%d", (os.Getpid()*7+k)%100000, i)
		ip(t, "netns", "add", name)
		t.Cleanup(func() {
			h.killAll() // what a failed test left running there
			exec.Command("ip", "netns", "del", name).Run()
		})
		ip(t, "link", "add", outer, "type", "veth", "peer", "name", inner)
		t.Cleanup(func() { exec.Command("ip", "link", "del", outer).Run() })
		ip(t, "link", "set", inner, "netns", name)
		ip(t, "link", "set", outer, "master", bridge)
		ip(t, "link", "set", outer, "up")
		ip(t, "-n", name, "addr", "add", h.Addr+"/24", "dev", inner)
		ip(t, "-n", name, "link", "set", inner, "up")
		ip(t, "-n", name, "link", "set", "lo", "up")
		h.Private = filepath.Join(h.dir, "private")
		if err := os.MkdirAll(h.Private, 0o755); err != nil {
			t.Fatal(err)
		}
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
	cmd := exec.Command("ip", "netns", "exec", h.Name, "unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" "$2" && exec /usr/sbin/sshd -D -e -f "$3"`, "sh", h.Private, PrivateDir, cfg)
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

// Down kills every process of the host (its sshd and every session, the agents): a host that
// went down. StartSSHD brings it back.
func (h *Host) Down() {
	h.killAll()
	h.StopSSHD()
}

func (h *Host) killAll() {
	out, _ := exec.Command("ip", "netns", "pids", h.Name).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
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
