package hosts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparkplane/sparkplane/internal/provider/hosts/hoststest"
	"github.com/sparkplane/sparkplane/internal/testutil"
)

// The agent's systemd unit is one systemd itself accepts: systemd-analyze verify, on a cluster
// directory with the agent's binary in place. (The test hosts do not run systemd, so starting
// it is not tested here.)
func TestSystemdUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("SPARKPLANE_REQUIRE_TOOLS") != "" {
			t.Fatal("systemd-analyze is not installed (Debian's systemd)")
		}
		t.Skip("no systemd-analyze")
	}
	dir := filepath.Join(t.TempDir(), "clusters", "lab")
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/bin/true", filepath.Join(dir, fileBinary)); err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), unitName("lab"))
	if err := os.WriteFile(unit, []byte(systemdUnit("lab", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", "--man=no", unit).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s\n%s", err, out, systemdUnit("lab", dir))
	}
	for _, s := range []string{startScript("lab", dir), "d=" + dir + "\n" + stopScript("lab", dir), "d=" + dir + "\n" + runningScript("lab")} {
		if out, err := exec.Command("sh", "-n", "-c", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v\n%s\n%s", err, out, s)
		}
	}
}

// On a host with cron and no systemd, start keeps the user's crontab and adds the cluster's
// @reboot line; stop takes exactly that line away: a crontab the user had is as it was, and
// one that start made is gone. The supervisor's process group is stopped.
func TestCrontabIsLeftAsItWas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a host in a network namespace")
	}
	if _, err := exec.LookPath("crontab"); err != nil {
		if os.Getenv("SPARKPLANE_REQUIRE_TOOLS") != "" {
			t.Fatal("crontab is not installed (hack/setup.sh installs Debian's cron)")
		}
		t.Skip("no crontab")
	}
	h := hoststest.Start(t, 1, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDxsmmdfbNVwTM5LvVNMnuwTL5JN6akHcHP2RBXDdBFi unused")[0]
	run := func(script string) string {
		t.Helper()
		out, err := h.Command("sh", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s\n%s", err, out, script)
		}
		return string(out)
	}
	tab := func() string { out, _ := h.Command("crontab", "-l").Output(); return string(out) }
	dir := hoststest.PrivateDir + "/clusters/lab"
	fake := "mkdir -p " + dir + " && printf '#!/bin/sh\\necho $$ > supervisor.pid\\nexec sleep 600\\n' > " + dir + "/" + fileSupervisor + "\n"
	for _, before := range []string{"", "# the user's own crontab\n0 3 * * * echo backup\n"} {
		if before != "" {
			run("printf %s " + shellQuote(before) + " | crontab -")
		}
		run(fake)
		out := run(startScript("lab", dir))
		if !strings.Contains(out, "service="+serviceCron) {
			t.Fatalf("start: %s", out)
		}
		if got := tab(); !strings.HasPrefix(got, before) || !strings.Contains(got, "@reboot cd "+shellQuote(dir)+" && setsid sh ./run.sh") {
			t.Errorf("crontab after start:\n%s", got)
		}
		testutil.Eventually(t, 10*time.Second, "the supervisor runs", func() error {
			_, err := h.Command("sh", "-c", "d="+dir+"\n"+runningScript("lab")).CombinedOutput()
			return err
		})
		run("d=" + dir + "\n" + stopScript("lab", dir) + "rm -rf \"$d\"")
		if got := tab(); got != before {
			t.Errorf("crontab after stop:\n%q\nwant as before:\n%q", got, before)
		}
		if out, _ := exec.Command("pgrep", "-f", "sleep 600").Output(); len(out) > 0 {
			t.Errorf("the supervisor still runs: %s", out)
		}
	}
	run("crontab -r")
}
