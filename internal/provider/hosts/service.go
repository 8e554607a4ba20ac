package hosts

import (
	"fmt"
	"strings"
)

// How a host's agent is kept running, and brought back after the host reboots. start writes
// which one it chose to fileService, for state and uninstall:
//
//   - serviceSystemd: a system unit, where systemd runs the host and the user is root;
//   - serviceCron: the shell supervisor, started now and by an @reboot line in the user's
//     crontab, where the host has cron;
//   - servicePlain: the shell supervisor alone, which a reboot ends (create says so).
const (
	serviceSystemd = "systemd"
	serviceCron    = "cron"
	servicePlain   = "supervisor"
)

// unitName is the systemd unit of a cluster's agent.
func unitName(cluster string) string { return "sparkplane-" + cluster + ".service" }

// unitPath is where start writes the unit.
func unitPath(cluster string) string { return "/etc/systemd/system/" + unitName(cluster) }

// systemdUnit runs the agent of the cluster whose directory on the host is dir: restarted when
// it exits, at boot once enabled, stopped with TERM to every process of it (the agent stops
// Spark's daemons, then exits).
func systemdUnit(cluster, dir string) string {
	return fmt.Sprintf(`# sparkplane's agent of cluster %[1]s; sparkplane destroy and remove take it away.
[Unit]
Description=sparkplane agent of Spark cluster %[1]s
Wants=network-online.target
After=network-online.target

[Service]
WorkingDirectory=%[2]s
ExecStart=%[2]s/%[3]s agent --hosts %[2]s/%[4]s
Restart=always
RestartSec=5
StandardOutput=append:%[2]s/%[5]s
StandardError=append:%[2]s/%[5]s
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
`, cluster, dir, fileBinary, fileNode, fileLog)
}

// cronMark ends the cluster's @reboot line in a crontab, to find it again.
func cronMark(cluster, dir string) string { return "# sparkplane " + cluster + " " + dir }

// startScript starts the agent in dir the best way the host has, and prints service=KIND.
func startScript(cluster, dir string) string {
	q := shellQuote(dir)
	unit := unitName(cluster)
	boot := fmt.Sprintf("@reboot cd %s && setsid sh ./%s </dev/null >/dev/null 2>&1 %s", q, fileSupervisor, cronMark(cluster, dir))
	return fmt.Sprintf(`d=%[1]s
cd "$d" || exit 1
if [ -d /run/systemd/system ] && [ "$(id -u)" = 0 ] && command -v systemctl >/dev/null 2>&1; then
  cat > %[2]s <<'UNIT'
%[3]sUNIT
  if systemctl daemon-reload && systemctl enable --now %[4]s >/dev/null 2>&1; then
    echo %[5]s > %[6]s; echo service=%[5]s; exit 0
  fi
  echo "systemctl could not start %[4]s; falling back to a supervisor" >&2
  systemctl disable --now %[4]s >/dev/null 2>&1; rm -f %[2]s; systemctl daemon-reload
fi
kind=%[7]s
if command -v crontab >/dev/null 2>&1; then
  if crontab -l >/dev/null 2>&1; then : > .crontab-existed; fi
  if { crontab -l 2>/dev/null | grep -vF %[8]s; echo %[9]s; } | crontab -; then kind=%[10]s; fi
fi
echo "$kind" > %[6]s
setsid sh ./%[11]s </dev/null >/dev/null 2>&1 &
echo service=$kind
if [ "$kind" = %[10]s ] && ! pgrep -x cron >/dev/null 2>&1 && ! pgrep -x crond >/dev/null 2>&1; then echo cron=stopped; fi
`, q, unitPath(cluster), systemdUnit(cluster, dir), unit, serviceSystemd, fileService, servicePlain,
		shellQuote(cronMark(cluster, dir)), shellQuote(boot), serviceCron, fileSupervisor)
}

// stopScript stops the agent in "$d" however start started it, and undoes what start did
// outside "$d" (the unit, the crontab line; a crontab start made is removed again). It runs
// before "$d" is removed.
func stopScript(cluster, dir string) string {
	unit := unitName(cluster)
	return fmt.Sprintf(`case "$(cat "$d/%[1]s" 2>/dev/null)" in
%[2]s)
  systemctl disable --now %[3]s >/dev/null 2>&1 || true
  rm -f %[4]s; systemctl daemon-reload 2>/dev/null || true ;;
%[5]s)
  rest=$(crontab -l 2>/dev/null | grep -vF %[6]s || true)
  if [ -n "$rest" ] || [ -e "$d/.crontab-existed" ]; then printf '%%s\n' "$rest" | crontab -; else crontab -r 2>/dev/null || true; fi ;;
esac
if pid=$(cat "$d/%[7]s" 2>/dev/null) && [ -n "$pid" ]; then
  kill -TERM "-$pid" 2>/dev/null || true
  i=0; while kill -0 "-$pid" 2>/dev/null && [ $i -lt 60 ]; do sleep 0.5; i=$((i+1)); done
  kill -KILL "-$pid" 2>/dev/null || true
fi
`, fileService, serviceSystemd, unit, unitPath(cluster), serviceCron, shellQuote(cronMark(cluster, dir)), filePID)
}

// runningScript exits 0 when the agent's keeper in "$d" runs: the unit is active, or the
// supervisor's process lives.
func runningScript(cluster string) string {
	return fmt.Sprintf(`if [ "$(cat "$d/%s" 2>/dev/null)" = %s ]; then systemctl is-active --quiet %s; else kill -0 "$(cat "$d/%s" 2>/dev/null)" 2>/dev/null; fi`,
		fileService, serviceSystemd, unitName(cluster), filePID)
}

// serviceNote is what create says of a host's service, from start's output.
func serviceNote(cluster, out string) string {
	switch {
	case strings.Contains(out, "service="+serviceSystemd):
		return "systemd unit " + unitName(cluster)
	case strings.Contains(out, "service="+serviceCron) && strings.Contains(out, "cron=stopped"):
		return "supervisor, and cron's @reboot (but no cron daemon runs there now: start cron for the agent to come back after a reboot)"
	case strings.Contains(out, "service="+serviceCron):
		return "supervisor, restarted after a reboot by cron's @reboot"
	default:
		return "supervisor only: no systemd or cron there, so it will not come back after a reboot"
	}
}
