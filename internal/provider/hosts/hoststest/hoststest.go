// Package hoststest gives the hosts provider's tests machines to reach over SSH: each a network
// namespace the test makes, with an address of its own on a veth pair to this machine, running
// Debian's real sshd. Traffic stays between the namespaces and this machine.
package hoststest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
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
	// Spool is what the host sees at SpoolDir, where its crontabs are.
	Spool string

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

// SpoolDir is cron's spool, private to each host as PrivateDir is, when this machine has cron.
const SpoolDir = "/var/spool/cron"

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
		h.Spool = filepath.Join(h.dir, "spool")
		if err := os.MkdirAll(filepath.Join(h.Spool, "crontabs"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(h.Spool, "crontabs"), os.ModeSticky|0o730) // as Debian has it
		if g, err := user.LookupGroup("crontab"); err == nil {
			gid, _ := strconv.Atoi(g.Gid)
			os.Chown(filepath.Join(h.Spool, "crontabs"), 0, gid)
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
	p, err := daemon.Start("sshd "+h.Name, h.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg), filepath.Join(h.dir, "sshd.log"))
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

// Command runs a program on the host: in its network namespace, with its own PrivateDir and
// SpoolDir, as its sshd and every session there.
func (h *Host) Command(args ...string) *exec.Cmd {
	mounts := `mount --bind "$1" "$2"`
	if _, err := os.Stat(SpoolDir); err == nil {
		mounts += ` && mount --bind "$3" "$4"`
	}
	return exec.Command("ip", append([]string{"netns", "exec", h.Name, "unshare", "--mount", "--propagation", "private", "sh", "-c",
		mounts + ` && shift 4 && exec "$@"`, "sh", h.Private, PrivateDir, h.Spool, SpoolDir}, args...)...)
}

// Reboot plays a reboot: every process of the host killed, its sshd started again, and then
// what a booting cron daemon runs, the @reboot lines of root's crontab. It returns those lines.
func (h *Host) Reboot() []string {
	h.t.Helper()
	h.Down()
	h.StartSSHD()
	tab, _ := os.ReadFile(filepath.Join(h.Spool, "crontabs", "root"))
	var ran []string
	for _, line := range strings.Split(string(tab), "\n") {
		if cmd, ok := strings.CutPrefix(strings.TrimSpace(line), "@reboot"); ok {
			// As cron does: each line in a shell of its own, not waited for.
			c := h.Command("sh", "-c", cmd)
			if err := c.Start(); err != nil {
				h.t.Fatalf("%s at boot: %s: %v", h.Addr, cmd, err)
			}
			go c.Wait()
			ran = append(ran, strings.TrimSpace(cmd))
		}
	}
	return ran
}

// Unreachable makes the host unreachable from this machine (its packets to the host are
// rejected), while the other hosts still reach it: a machine behind a jump host. Until the
// test's end.
func (h *Host) Unreachable() {
	h.t.Helper()
	rule := []string{"OUTPUT", "-d", h.Addr, "-j", "REJECT"}
	if out, err := exec.Command("iptables", append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
		h.t.Fatalf("iptables: %v\n%s", err, out)
	}
	h.t.Cleanup(func() { exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() })
}

// Processes lists what runs on the host besides its sshd and the sessions it serves: pid and
// command line.
func (h *Host) Processes() []string {
	out, _ := exec.Command("ip", "netns", "pids", h.Name).Output()
	var left []string
	for _, f := range strings.Fields(string(out)) {
		comm, _ := os.ReadFile("/proc/" + f + "/comm")
		if strings.TrimSpace(string(comm)) == "sshd" {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + f + "/cmdline")
		if err != nil || len(cmdline) == 0 {
			continue // gone, or a zombie
		}
		left = append(left, f+" "+strings.ReplaceAll(strings.TrimSpace(string(cmdline)), "\x00", " "))
	}
	return left
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
