package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sparkplane/sparkplane/internal/cluster"
	"github.com/sparkplane/sparkplane/internal/spec"
	"github.com/sparkplane/sparkplane/internal/state"
)

// watchStyle is how a frame is drawn: for a terminal (Unicode bars, colour) or for a pipe
// (ASCII, no escapes).
type watchStyle struct {
	width   int
	unicode bool
	paint   func(code, s string) string
}

// bar draws used of total in n cells.
func (s watchStyle) bar(used, total, n int) string {
	full, empty := "#", "."
	if s.unicode {
		full, empty = "█", "░"
	}
	k := 0
	if total > 0 {
		k = min(n, (used*n+total-1)/total) // any use shows
	}
	color := "32" // green
	switch {
	case total > 0 && used*100 >= total*95:
		color = "31"
	case total > 0 && used*100 >= total*80:
		color = "33"
	}
	b := s.paint(color, strings.Repeat(full, k)) + strings.Repeat(empty, n-k)
	if !s.unicode {
		b = "[" + b + "]"
	}
	return b
}

func (s watchStyle) state(st string) string {
	switch st {
	case "ALIVE", "RUNNING", state.JobFinished:
		return s.paint("32", st)
	case state.JobLost, "DEAD", state.JobFailed, state.JobError: // a LOST worker too
		return s.paint("31", st)
	case "STARTING", "DECOMMISSIONED", "WAITING", state.JobSubmitted, state.JobKilled:
		return s.paint("33", st)
	}
	return st
}

// pad pads or cuts s to n runes, ignoring colour escapes.
func pad(s string, n int) string {
	visible := utf8.RuneCountInString(stripEscapes(s))
	if visible > n {
		r := []rune(stripEscapes(s))
		return string(r[:max(0, n-1)]) + "…"
	}
	return s + strings.Repeat(" ", n-visible)
}

func stripEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// workerBar is the width of the workers' bars: what the columns leave of the line, within 4-16.
func workerBar(width int) int {
	const rest = 12 + 1 + 12 + 1 + 8 + 1 + 12 + 1 + 7 + 1 + 9 // the columns without the bars
	return max(4, min(16, (width-rest)/2))
}

// renderWatch draws one frame of the watch view.
func renderWatch(st *cluster.Status, now time.Time, interval time.Duration, s watchStyle) string {
	var b strings.Builder
	line := func(format string, args ...any) {
		l := fmt.Sprintf(format, args...)
		if utf8.RuneCountInString(stripEscapes(l)) > s.width {
			l = pad(l, s.width) // a line that would wrap would shift the whole frame
		}
		b.WriteString(l + "\n")
	}
	head := fmt.Sprintf("%s · %s · %s", s.paint("1", st.Name), st.Provider, st.State)
	right := fmt.Sprintf("%s · every %s · Ctrl-C quits", now.Format("15:04:05"), interval)
	line("%s%s%s", head, strings.Repeat(" ", max(2, s.width-utf8.RuneCountInString(stripEscapes(head))-utf8.RuneCountInString(right))), right)
	a := st.Agent
	if a == nil {
		line("Master     not answering: %s", st.AgentError)
		return b.String()
	}
	line("Master     %s  %s  Spark %s  UI %s", a.Master.URL, s.state(orDash(a.Master.State)), a.Master.Version, a.Master.UI)
	barw := max(10, min(30, (s.width-50)/2))
	line("Cores      %s %d/%d    Memory %s %s/%s", s.bar(a.CoresUsed, a.Cores, barw), a.CoresUsed, a.Cores,
		s.bar(a.MemoryUsed, a.MemoryMiB, barw), spec.FormatMemory(a.MemoryUsed), spec.FormatMemory(a.MemoryMiB))
	line("Lifetime   %s", lifetimeLine(a.Lifetime))
	if as := a.Autoscale; as != nil {
		line("Autoscale  %s policy · launches take %s · %d starting · %d draining", as.Policy,
			shortDuration(as.LaunchLatency), as.Requested, as.Draining)
	}
	line("")

	wbar := workerBar(s.width)
	line("%s", s.paint("1", fmt.Sprintf("%-12s %-12s %-*s %-*s %7s %9s", "WORKER", "STATE", wbar+8, "CORES", wbar+12, "MEMORY", "DRIVERS", "EXECUTORS")))
	if len(a.Workers) == 0 {
		line("(no workers)")
	}
	for _, w := range a.Workers {
		name := w.NodeID
		if name == "" {
			name = w.SparkID
		}
		cores, mem := "-", "-"
		if w.Cores > 0 {
			cores = fmt.Sprintf("%s %d/%d", s.bar(w.CoresUsed, w.Cores, wbar), w.CoresUsed, w.Cores)
			mem = fmt.Sprintf("%s %s/%s", s.bar(w.MemoryUsed, w.MemoryMiB, wbar), spec.FormatMemory(w.MemoryUsed), spec.FormatMemory(w.MemoryMiB))
		}
		line("%s %s %s %s %7d %9d", pad(name, 12), pad(s.state(w.State), 12), pad(cores, wbar+8), pad(mem, wbar+12), w.Drivers, w.Executors)
	}
	line("")

	namew := max(8, min(24, s.width-(12+1+1+10+1+8+1+9)))
	line("%s", s.paint("1", fmt.Sprintf("%-12s %-*s %-10s %-8s %9s", "JOB", namew, "NAME", "STATE", "MODE", "DURATION")))
	jobs := a.Jobs
	if len(jobs) > 8 {
		jobs = jobs[:8]
	}
	if len(jobs) == 0 {
		line("(no jobs yet: sparkplane submit -n %s APP)", st.Name)
	}
	for _, j := range jobs {
		d := "-"
		if !j.StartedAt.IsZero() {
			d = shortDuration(j.Duration(now))
		}
		line("%s %s %s %-8s %9s", pad(j.ID, 12), pad(j.Name, namew), pad(s.state(j.State), 10), j.DeployMode, d)
	}
	if more := len(a.Jobs) - len(jobs); more > 0 {
		line("… and %d more (sparkplane jobs %s)", more, st.Name)
	}
	line("")

	if as := a.Autoscale; as != nil {
		line("%s", s.paint("1", "AUTOSCALER DECISIONS"))
		if len(as.Recent) == 0 {
			last := "none yet"
			if as.LastDecision != "" {
				last = as.LastDecision
			}
			line("(no change made; last look: %s)", last)
		}
		recent := as.Recent
		if len(recent) > 5 {
			recent = recent[len(recent)-5:]
		}
		for i := len(recent) - 1; i >= 0; i-- {
			d := recent[i]
			text := d.Summary
			if len(d.Nodes) > 0 {
				text += " (" + strings.Join(d.Nodes, ", ") + ")"
			}
			if d.Error != "" {
				text += " — " + s.paint("31", "failed: "+d.Error)
			}
			line("%s  %s", d.At.Local().Format("15:04:05"), text)
		}
	} else {
		line("%s", s.paint("1", "RECENT EVENTS"))
		events := a.Events
		if len(events) > 5 {
			events = events[:5]
		}
		for _, e := range events {
			line("%s  %-9s %s", e.Time.Local().Format("15:04:05"), e.Kind, e.Message)
		}
	}
	return b.String()
}

// watch redraws the status of a cluster every interval until ctx ends: in place on a terminal,
// as a stream of plain snapshots when piped.
func watch(ctx context.Context, f *Factory, m *cluster.Manager, ref cluster.Ref, interval time.Duration) error {
	out := f.IO.Out
	tty := f.IO.IsTerminal()
	style := watchStyle{width: f.IO.Width(), unicode: tty, paint: func(_, s string) string { return s }}
	if tty && f.IO.colorOut() {
		style.paint = func(code, s string) string { return "\x1b[" + code + "m" + s + "\x1b[0m" }
	}
	if tty {
		io.WriteString(out, "\x1b[?25l") // hide the cursor while drawing
		defer io.WriteString(out, "\x1b[?25h\n")
	}
	for first := true; ; first = false {
		st, err := m.Status(ctx, ref)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			if tty && !first {
				io.WriteString(out, "\n")
			}
			return err
		}
		frame := renderWatch(st, time.Now(), interval, style)
		if tty {
			// Home, then each line cleared to its end, then the rest of the screen: no flicker.
			style.width = f.IO.Width()
			io.WriteString(out, "\x1b[H"+strings.ReplaceAll(frame, "\n", "\x1b[K\n")+"\x1b[J")
		} else {
			if !first {
				io.WriteString(out, "\n")
			}
			io.WriteString(out, frame)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}
