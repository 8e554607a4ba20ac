//go:build !linux

package agent

import "syscall"

// childAttr puts a child in its own process group. Outside Linux there is no parent-death signal:
// a killed agent leaves its daemon for destroy to find.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// decommissionSignal is the signal Spark's workers decommission on; PWR does not exist here, so
// clusters on these systems must set spark.worker.decommission.signal.
var decommissionSignal = map[string]syscall.Signal{"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2}
