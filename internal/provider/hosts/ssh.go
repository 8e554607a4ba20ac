// Package hosts is the provider for machines the user already has, reached over SSH: this file
// is its SSH side, which checks every host's key against known_hosts, signs in with the user's
// ssh-agent or identity file, runs commands, and copies files with a checksum. No private key
// ever leaves this machine.
package hosts

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Dialer opens SSH connections to hosts as the spec's hosts block says.
type Dialer struct {
	User string
	Port int
	// IdentityFile is tried after the ssh-agent's keys ("" for none).
	IdentityFile string
	// KnownHosts is the known_hosts file hosts' keys are checked against.
	KnownHosts string
	// TrustNew adds the key of a host that known_hosts does not list, printing its
	// fingerprint (Notify), instead of refusing it. A changed key is refused regardless.
	TrustNew bool
	// Notify is told of what the dialer does that the user should know (a host trusted).
	Notify func(string)
	// Getenv reads SSH_AUTH_SOCK (default os.Getenv).
	Getenv func(string) string
	// Timeout bounds the TCP connection and the handshake (default 15s).
	Timeout time.Duration
	// Jump is a host to connect through, [user@]host[:port] (hosts.jump): every host is
	// reached from it, as by ssh -J.
	Jump string

	mu     sync.Mutex // known_hosts is read and appended under it
	jumpMu sync.Mutex
	jump   *Conn
}

// UnknownHostError is a host whose key known_hosts does not list.
type UnknownHostError struct {
	Host, Addr  string
	Type        string // the key's type, e.g. ssh-ed25519
	Fingerprint string // SHA256:…
	KnownHosts  string
}

func (e *UnknownHostError) Error() string {
	return fmt.Sprintf("host %s (%s) is not in %s: it offers the %s key %s. If that is its key (on the host: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), "+
		"trust it with --trust-new-hosts, or add it with: ssh-keyscan -p %s %s >> %s",
		e.Host, e.Addr, e.KnownHosts, e.Type, e.Fingerprint, portOf(e.Addr), hostOf(e.Addr), e.KnownHosts)
}

// ChangedHostKeyError is a host whose key is not the one known_hosts holds for it: another
// machine, or someone in between. It is always refused.
type ChangedHostKeyError struct {
	Host, Addr string
	Offered    string // the offered key's fingerprint
	Known      []string
	KnownHosts string
}

func (e *ChangedHostKeyError) Error() string {
	return fmt.Sprintf("host %s (%s) offers the key %s, but %s holds another for it (%s): it may be another machine, or someone in between. "+
		"Refused. If the host was reinstalled, check its new key on the host and remove the old one with: ssh-keygen -f %s -R %s",
		e.Host, e.Addr, e.Offered, e.KnownHosts, strings.Join(e.Known, ", "), e.KnownHosts, knownhosts.Normalize(e.Addr))
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// Conn is a connection to one host.
type Conn struct {
	Host   string
	client *ssh.Client
}

// Close closes the connection.
func (c *Conn) Close() error { return c.client.Close() }

// Dial connects to host and signs in: straight, or through the jump host.
func (d *Dialer) Dial(ctx context.Context, host string) (*Conn, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(d.port()))
	var raw net.Conn
	var err error
	if d.Jump != "" {
		raw, err = d.throughJump(ctx, addr)
	} else {
		dialer := net.Dialer{Timeout: d.timeout()}
		raw, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: cannot connect to %s: %w", host, addr, err)
	}
	return d.handshake(host, addr, d.user(), raw)
}

// handshake signs in as user to host over raw, checking its key. It closes raw on error.
func (d *Dialer) handshake(host, addr, user string, raw net.Conn) (*Conn, error) {
	auth, closeAgent, err := d.auth()
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("%s: %w", host, err)
	}
	defer closeAgent()
	algos, err := d.knownAlgorithms(addr)
	if err != nil {
		raw.Close()
		return nil, err
	}
	cfg := &ssh.ClientConfig{User: user, Auth: auth, HostKeyCallback: d.checkHostKey(host), HostKeyAlgorithms: algos, Timeout: d.timeout()}
	raw.SetDeadline(time.Now().Add(d.timeout()))
	sc, chans, reqs, err := ssh.NewClientConn(raw, addr, cfg)
	if err != nil {
		raw.Close()
		var unknown *UnknownHostError
		var changed *ChangedHostKeyError
		switch {
		case errors.As(err, &unknown):
			return nil, unknown
		case errors.As(err, &changed):
			return nil, changed
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("%s: %s refused every key offered (%s): add one to ~%s/.ssh/authorized_keys there, or give hosts.identityFile", host, user, d.offered(), user)
		}
		return nil, fmt.Errorf("%s: ssh handshake with %s: %w", host, addr, err)
	}
	raw.SetDeadline(time.Time{})
	return &Conn{Host: host, client: ssh.NewClient(sc, chans, reqs)}, nil
}

// DialTCP opens a TCP connection to addr as the hosts see it: straight, or from the jump host
// (for the agents' API, when only the jump host is reachable from here).
func (d *Dialer) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	if d.Jump == "" {
		dialer := net.Dialer{Timeout: d.timeout()}
		return dialer.DialContext(ctx, "tcp", addr)
	}
	return d.throughJump(ctx, addr)
}

// throughJump opens a connection to addr from the jump host, signing in there first (its key
// checked as every host's). One connection to the jump host serves every host; it is dialed
// again if it broke.
func (d *Dialer) throughJump(ctx context.Context, addr string) (net.Conn, error) {
	d.jumpMu.Lock()
	defer d.jumpMu.Unlock()
	for attempt := 0; ; attempt++ {
		if d.jump == nil {
			user, host, port := ParseJump(d.Jump, d.user())
			jaddr := net.JoinHostPort(host, strconv.Itoa(port))
			dialer := net.Dialer{Timeout: d.timeout()}
			raw, err := dialer.DialContext(ctx, "tcp", jaddr)
			if err != nil {
				return nil, fmt.Errorf("the jump host %s: cannot connect to %s: %w", host, jaddr, err)
			}
			c, err := d.handshake(host, jaddr, user, raw)
			if err != nil {
				return nil, fmt.Errorf("the jump host: %w", err)
			}
			d.jump = c
		}
		conn, err := d.jump.client.DialContext(ctx, "tcp", addr)
		if err == nil || attempt > 0 || ctx.Err() != nil {
			if err != nil {
				err = fmt.Errorf("through the jump host %s: %w", d.Jump, err)
			}
			return conn, err
		}
		d.jump.Close() // broken, or the jump host restarted: once more on a new connection
		d.jump = nil
	}
}

// Close closes the connection to the jump host, if one is open.
func (d *Dialer) Close() {
	d.jumpMu.Lock()
	defer d.jumpMu.Unlock()
	if d.jump != nil {
		d.jump.Close()
		d.jump = nil
	}
}

// ParseJump reads a jump host written as OpenSSH's ProxyJump takes it, [user@]host[:port];
// user defaults to the hosts' user, port to 22.
func ParseJump(s, defaultUser string) (user, host string, port int) {
	user, host, port = defaultUser, s, 22
	if u, h, ok := strings.Cut(s, "@"); ok {
		user, host = u, h
	}
	if h, p, err := net.SplitHostPort(host); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			host, port = h, n
		}
	}
	return user, host, port
}

func (d *Dialer) port() int {
	if d.Port == 0 {
		return 22
	}
	return d.Port
}

func (d *Dialer) user() string {
	if d.User != "" {
		return d.User
	}
	if u := d.getenv("USER"); u != "" {
		return u
	}
	return "root"
}

func (d *Dialer) timeout() time.Duration {
	if d.Timeout == 0 {
		return 15 * time.Second
	}
	return d.Timeout
}

func (d *Dialer) getenv(k string) string {
	if d.Getenv != nil {
		return d.Getenv(k)
	}
	return os.Getenv(k)
}

// offered says which keys Dial offers, for an error.
func (d *Dialer) offered() string {
	var what []string
	if d.getenv("SSH_AUTH_SOCK") != "" {
		what = append(what, "the ssh-agent's")
	}
	if d.IdentityFile != "" {
		what = append(what, d.IdentityFile)
	}
	if len(what) == 0 {
		return "none: no ssh-agent (SSH_AUTH_SOCK) and no hosts.identityFile"
	}
	return strings.Join(what, ", then ")
}

// auth signs in with the ssh-agent's keys, then the identity file's.
func (d *Dialer) auth() ([]ssh.AuthMethod, func(), error) {
	var methods []ssh.AuthMethod
	closeAgent := func() {}
	if sock := d.getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(c).Signers))
			closeAgent = func() { c.Close() }
		}
	}
	if d.IdentityFile != "" {
		pem, err := os.ReadFile(d.IdentityFile)
		if err != nil {
			closeAgent()
			return nil, nil, fmt.Errorf("hosts.identityFile: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			closeAgent()
			return nil, nil, fmt.Errorf("hosts.identityFile %s is protected by a passphrase: add it to your ssh-agent (ssh-add %s) and leave identityFile out", d.IdentityFile, d.IdentityFile)
		case err != nil:
			closeAgent()
			return nil, nil, fmt.Errorf("hosts.identityFile %s: %w", d.IdentityFile, err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if len(methods) == 0 {
		return nil, nil, errors.New("no key to sign in with: start an ssh-agent with your key (ssh-add), or give hosts.identityFile")
	}
	return methods, closeAgent, nil
}

// knownAlgorithms are the key types known_hosts holds for addr, so that the host is asked for
// a key that can be checked rather than one known_hosts has no line for (which would look like
// a changed key). None: any.
func (d *Dialer) knownAlgorithms(addr string) ([]string, error) {
	check, err := d.callback()
	if err != nil {
		return nil, err
	}
	// A key no host has: the error lists what known_hosts holds for addr.
	probe, err := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	if err != nil {
		return nil, err
	}
	var ke *knownhosts.KeyError
	if err := check(addr, &net.TCPAddr{}, probe); !errors.As(err, &ke) {
		return nil, nil
	}
	var algos []string
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algos = append(algos, t)
		}
	}
	return algos, nil
}

func (d *Dialer) callback() (ssh.HostKeyCallback, error) {
	if d.KnownHosts == "" {
		return nil, errors.New("no known_hosts file to check hosts' keys against (hosts.knownHosts)")
	}
	if _, err := os.Stat(d.KnownHosts); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(d.KnownHosts), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(d.KnownHosts, nil, 0o600); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return knownhosts.New(d.KnownHosts)
}

// checkHostKey accepts a key known_hosts holds for the host, adds an unknown one only with
// TrustNew, and refuses a changed one.
func (d *Dialer) checkHostKey(host string) ssh.HostKeyCallback {
	return func(addr string, remote net.Addr, key ssh.PublicKey) error {
		check, err := d.callback()
		if err != nil {
			return err
		}
		err = check(addr, remote, key)
		var ke *knownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ke) && len(ke.Want) > 0:
			known := make([]string, len(ke.Want))
			for i, k := range ke.Want {
				known[i] = fmt.Sprintf("%s %s at line %d", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Line)
			}
			return &ChangedHostKeyError{Host: host, Addr: addr, Offered: key.Type() + " " + ssh.FingerprintSHA256(key), Known: known, KnownHosts: d.KnownHosts}
		case errors.As(err, &ke) && d.TrustNew:
			line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
			d.mu.Lock()
			defer d.mu.Unlock()
			f, err := os.OpenFile(d.KnownHosts, os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := f.WriteString(line); err != nil {
				return err
			}
			if d.Notify != nil {
				d.Notify(fmt.Sprintf("trusted %s (%s): its %s key %s is now in %s", host, addr, key.Type(), ssh.FingerprintSHA256(key), d.KnownHosts))
			}
			return nil
		case errors.As(err, &ke):
			return &UnknownHostError{Host: host, Addr: addr, Type: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), KnownHosts: d.KnownHosts}
		}
		return err
	}
}

// RunError is a command that ran on a host and failed.
type RunError struct {
	Host, Command string
	ExitCode      int
	Stderr        string
}

func (e *RunError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "no output"
	}
	return fmt.Sprintf("%s: %s exited %d: %s", e.Host, e.Command, e.ExitCode, msg)
}

// Run runs a shell command on the host with stdin (nil for none) and returns its stdout. A
// command that exits non-zero is a *RunError with its stderr. ctx ending closes the session.
func (c *Conn) Run(ctx context.Context, command string, stdin io.Reader) (string, error) {
	s, err := c.client.NewSession()
	if err != nil {
		return "", fmt.Errorf("%s: cannot open an SSH session; the connection was likely lost (the host went down, or its sshd stopped): %w", c.Host, err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdin, s.Stdout, s.Stderr = stdin, &stdout, &stderr
	done := make(chan error, 1)
	go func() { done <- s.Run(command) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		s.Signal(ssh.SIGTERM)
		s.Close()
		return "", fmt.Errorf("%s: %s: %w", c.Host, command, ctx.Err())
	}
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		return stdout.String(), &RunError{Host: c.Host, Command: command, ExitCode: exit.ExitStatus(), Stderr: stderr.String()}
	}
	var missing *ssh.ExitMissingError
	if errors.Is(err, io.EOF) || errors.As(err, &missing) {
		return stdout.String(), fmt.Errorf("%s: the connection was lost (the host went down, or its sshd stopped): %w", c.Host, err)
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%s: %w", c.Host, err)
	}
	return stdout.String(), nil
}

// Upload copies a local file to path on the host with mode, through a temporary file that
// replaces path only once its SHA-256 on the host matches the local file's. It returns the
// checksum. A file already there with that checksum is not copied again.
func (c *Conn) Upload(ctx context.Context, local, path string, mode os.FileMode) (string, error) {
	sum, err := fileSHA256(local)
	if err != nil {
		return "", err
	}
	q := shellQuote(path)
	if out, err := c.Run(ctx, "sha256sum "+q+" 2>/dev/null", nil); err == nil && strings.HasPrefix(out, sum+" ") {
		return sum, nil
	}
	f, err := os.Open(local)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tmp := shellQuote(path + ".part")
	script := fmt.Sprintf("set -e; mkdir -p %s; cat > %s; chmod %o %s; test \"$(sha256sum %s | cut -d' ' -f1)\" = %s || { rm -f %s; echo 'checksum mismatch after copy' >&2; exit 1; }; mv %s %s",
		shellQuote(filepath.Dir(path)), tmp, mode.Perm(), tmp, tmp, sum, tmp, tmp, q)
	if _, err := c.Run(ctx, script, f); err != nil {
		return "", fmt.Errorf("copy %s to %s:%s: %w", filepath.Base(local), c.Host, path, err)
	}
	return sum, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
