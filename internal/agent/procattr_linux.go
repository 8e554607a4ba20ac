package agent

import "syscall"

// childAttr puts a child in its own process group, so that it and what it starts can be signalled
// together, and has the kernel kill it if the agent dies without stopping it (kill -9).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// decommissionSignal is the signal Spark's workers decommission on (spark.worker.decommission.signal).
var decommissionSignal = map[string]syscall.Signal{"PWR": syscall.SIGPWR, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2}
