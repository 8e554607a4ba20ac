package hosts_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/daemon"
	"github.com/sparkplane/sparkplane/internal/provider/hosts"
	"github.com/sparkplane/sparkplane/internal/provider/hosts/hoststest"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// clientKey makes an SSH key pair for the test's user and returns the private key's file and
// the public key's authorized_keys line.
func clientKey(t testing.TB, name string) (string, string) {
	t.Helper()
	key := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return key, strings.TrimSpace(string(pub))
}

// startAgent runs a real ssh-agent holding key and returns its socket.
func startAgent(t *testing.T, key string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	p, err := daemon.Start("ssh-agent", exec.Command("ssh-agent", "-D", "-a", sock), filepath.Join(t.TempDir(), "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	testutil.Eventually(t, 10*time.Second, "ssh-agent listens", func() error { _, err := os.Stat(sock); return err })
	add := exec.Command("ssh-add", key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	return sock
}

// Host keys are checked strictly against known_hosts: an unknown host is refused with its
// fingerprint (the one ssh-keygen prints of the key sshd serves) and how to trust it; trusting
// new hosts adds exactly that key; a changed key is refused even then, naming the line that
// holds the old one. Signing in goes through the user's ssh-agent first, then the identity
// file; a key the host does not take is refused with who and what was offered. Files arrive
// checked by their SHA-256.
func TestSSHAgainstRealSSHD(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sshd in network namespaces")
	}
	key, pub := clientKey(t, "sparkplane-test")
	h := hoststest.Start(t, 1, pub)[0]
	ctx := context.Background()
	known := filepath.Join(t.TempDir(), "known_hosts")
	var notes []string
	d := &hosts.Dialer{User: "root", IdentityFile: key, KnownHosts: known, Getenv: func(string) string { return "" },
		Notify: func(s string) { notes = append(notes, s) }}

	_, err := d.Dial(ctx, h.Addr)
	var unknown *hosts.UnknownHostError
	if !errors.As(err, &unknown) || unknown.Fingerprint != h.Fingerprint() || !strings.Contains(err.Error(), "--trust-new-hosts") {
		t.Fatalf("an unknown host: %v, want its fingerprint %s", err, h.Fingerprint())
	}
	t.Logf("unknown: %v", err)
	if b, _ := os.ReadFile(known); len(b) != 0 {
		t.Errorf("known_hosts after refusing: %q", b)
	}

	d.TrustNew = true
	conn, err := d.Dial(ctx, h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := conn.Run(ctx, "echo hello from $(hostname -I)", nil); err != nil || !strings.Contains(out, h.Addr) {
		t.Errorf("run: %q %v", out, err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], h.Fingerprint()) {
		t.Errorf("notes: %q", notes)
	}
	if b, _ := os.ReadFile(known); strings.Count(string(b), "\n") != 1 || !strings.Contains(string(b), h.Addr) {
		t.Errorf("known_hosts: %q", b)
	}
	var rerr *hosts.RunError
	if _, err := conn.Run(ctx, "echo oops >&2; exit 3", nil); !errors.As(err, &rerr) || rerr.ExitCode != 3 || !strings.Contains(err.Error(), "oops") {
		t.Errorf("a failing command: %v", err)
	}

	// Upload: checked on arrival; the same file is not sent twice.
	local := filepath.Join(t.TempDir(), "payload")
	os.WriteFile(local, []byte(strings.Repeat("spark ", 100000)), 0o644)
	remote := filepath.Join(t.TempDir(), "sub", "payload")
	sum, err := conn.Upload(ctx, local, remote, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := conn.Run(ctx, "sha256sum "+remote+" && stat -c %a "+remote, nil); err != nil || !strings.HasPrefix(out, sum) || !strings.HasSuffix(out, "755\n") {
		t.Errorf("uploaded: %q %v", out, err)
	}
	before, _ := os.Stat(remote)
	time.Sleep(10 * time.Millisecond)
	if _, err := conn.Upload(ctx, local, remote, 0o755); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(remote); !after.ModTime().Equal(before.ModTime()) {
		t.Error("the same file was copied again")
	}
	conn.Close()

	// Another key at the same address: refused, even when trusting new hosts.
	h.StopSSHD()
	h.NewHostKey()
	h.StartSSHD()
	_, err = d.Dial(ctx, h.Addr)
	var changed *hosts.ChangedHostKeyError
	if !errors.As(err, &changed) || !strings.Contains(err.Error(), h.Fingerprint()) || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "ssh-keygen -f") {
		t.Errorf("a changed host key: %v", err)
	}
	t.Logf("changed: %v", err)

	// Signing in: through the ssh-agent alone, then with a key the host does not take.
	os.WriteFile(known, nil, 0o600)
	sock := startAgent(t, key)
	byAgent := &hosts.Dialer{User: "root", KnownHosts: known, TrustNew: true, Getenv: func(k string) string {
		if k == "SSH_AUTH_SOCK" {
			return sock
		}
		return ""
	}}
	if conn, err := byAgent.Dial(ctx, h.Addr); err != nil {
		t.Errorf("through the ssh-agent: %v", err)
	} else {
		conn.Close()
	}
	stranger, _ := clientKey(t, "stranger")
	d.IdentityFile, d.TrustNew = stranger, false
	if _, err := d.Dial(ctx, h.Addr); err == nil || !strings.Contains(err.Error(), "root refused every key offered") || !strings.Contains(err.Error(), stranger) {
		t.Errorf("a key the host does not take: %v", err)
	}

	// A host that is down.
	h.StopSSHD()
	if _, err := d.Dial(ctx, h.Addr); err == nil || !strings.Contains(err.Error(), "cannot connect to "+h.Addr+":22") {
		t.Errorf("a host that is down: %v", err)
	}
}

// Through a jump host, hosts this machine cannot reach are reached, several at once over the
// one connection to the jump host, for SSH sessions and for TCP (the agents' API); the jump
// host's key is checked like any host's; and a jump connection that drops is dialled again.
func TestJumpHostAgainstRealSSHD(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sshd in network namespaces")
	}
	key, pub := clientKey(t, "sparkplane-test")
	hs := hoststest.Start(t, 3, pub)
	jump, behind := hs[0], hs[1:]
	var lines []string
	for _, h := range hs {
		b, err := os.ReadFile(h.HostKey + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b))
		lines = append(lines, h.Addr+" "+f[0]+" "+f[1])
	}
	known := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(known, []byte(strings.Join(lines[1:], "\n")+"\n"), 0o600) // not the jump host yet
	for _, h := range behind {
		h.Unreachable()
	}
	ctx := context.Background()
	d := &hosts.Dialer{User: "root", IdentityFile: key, KnownHosts: known, Getenv: func(string) string { return "" }, Jump: "root@" + jump.Addr + ":22", Timeout: 5 * time.Second}
	defer d.Close()
	var unknown *hosts.UnknownHostError
	if _, err := d.Dial(ctx, behind[0].Addr); !errors.As(err, &unknown) || unknown.Host != jump.Addr {
		t.Fatalf("a jump host known_hosts does not list: %v", err)
	}
	os.WriteFile(known, []byte(strings.Join(lines, "\n")+"\n"), 0o600)

	direct := &hosts.Dialer{User: "root", IdentityFile: key, KnownHosts: known, Getenv: func(string) string { return "" }, Timeout: 3 * time.Second}
	if _, err := direct.Dial(ctx, behind[0].Addr); err == nil {
		t.Fatal("a host behind the jump host answered directly: the test's isolation is broken")
	}

	each := func(what string) {
		t.Helper()
		errs := make(chan error, 2*len(behind))
		for _, h := range behind {
			go func() {
				conn, err := d.Dial(ctx, h.Addr)
				if err == nil {
					var out string
					out, err = conn.Run(ctx, "hostname -I", nil)
					if err == nil && !strings.Contains(out, h.Addr) {
						err = errors.New("ran on " + out)
					}
					conn.Close()
				}
				errs <- err
			}()
			go func() {
				c, err := d.DialTCP(ctx, h.Addr+":22")
				if err == nil {
					buf := make([]byte, 7)
					c.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err = io.ReadFull(c, buf); err == nil && string(buf) != "SSH-2.0" {
						err = errors.New("no SSH banner: " + string(buf))
					}
					c.Close()
				}
				errs <- err
			}()
		}
		for range 2 * len(behind) {
			if err := <-errs; err != nil {
				t.Errorf("%s: %v", what, err)
			}
		}
	}
	each("through the jump host")
	// The jump host's sshd restarted: its connection is gone, and the next dial makes another.
	jump.Down()
	jump.StartSSHD()
	each("after the jump host's sshd restarted")
}
