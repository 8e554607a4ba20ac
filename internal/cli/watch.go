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
	height  int // the terminal's rows; 0 for no limit (a pipe)
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
	var workers []string
	if len(a.Workers) == 0 {
		workers = append(workers, "(no workers)")
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
		workers = append(workers, fmt.Sprintf("%s %s %s %s %7d %9d", pad(name, 12), pad(s.state(w.State), 12), pad(cores, wbar+8), pad(mem, wbar+12), w.Drivers, w.Executors))
	}

	namew := max(8, min(24, s.width-(12+1+1+10+1+8+1+9)))
	var jobs []string
	if len(a.Jobs) == 0 {
		jobs = append(jobs, fmt.Sprintf("(no jobs yet: sparkplane submit -n %s APP)", st.Name))
	}
	for _, j := range a.Jobs[:min(len(a.Jobs), 8)] {
		d := "-"
		if !j.StartedAt.IsZero() {
			d = shortDuration(j.Duration(now))
		}
		jobs = append(jobs, fmt.Sprintf("%s %s %s %-8s %9s", pad(j.ID, 12), pad(j.Name, namew), pad(s.state(j.State), 10), j.DeployMode, d))
	}
	hidden := max(0, len(a.Jobs)-8) // jobs beyond the list, whatever the height

	// The last section: the autoscaler's decisions, else the cluster's events; newest first.
	var lastTitle string
	var last []string
	if as := a.Autoscale; as != nil {
		lastTitle = "AUTOSCALER DECISIONS"
		if len(as.Recent) == 0 {
			seen := "none yet"
			if as.LastDecision != "" {
				seen = as.LastDecision
			}
			last = append(last, fmt.Sprintf("(no change made; last look: %s)", seen))
		}
		recent := as.Recent[max(0, len(as.Recent)-5):]
		for i := len(recent) - 1; i >= 0; i-- {
			d := recent[i]
			text := d.Summary
			if len(d.Nodes) > 0 {
				text += " (" + strings.Join(d.Nodes, ", ") + ")"
			}
			if d.Error != "" {
				text += " — " + s.paint("31", "failed: "+d.Error)
			}
			last = append(last, fmt.Sprintf("%s  %s", d.At.Local().Format("15:04:05"), text))
		}
	} else {
		lastTitle = "RECENT EVENTS"
		events := a.Events[max(0, len(a.Events)-5):] // the agent's are oldest first
		for i := len(events) - 1; i >= 0; i-- {
			e := events[i]
			last = append(last, fmt.Sprintf("%s  %-9s %s", e.Time.Local().Format("15:04:05"), e.Kind, e.Message))
		}
	}

	// On a terminal the frame never scrolls: what the three lists cannot show is counted.
	if s.height > 0 {
		used := strings.Count(b.String(), "\n") + 5 // the three titles and the two blank lines between
		wantJobs := len(jobs)
		if hidden > 0 {
			wantJobs++ // its "… and N more" line
		}
		rows := fitRows(s.height-1-used, []int{len(workers), wantJobs, len(last)})
		workers = cut(workers, rows[0], func(n int) string { return fmt.Sprintf("… and %d more workers", n) })
		if rows[1] < wantJobs {
			keep := max(rows[1]-1, 0)
			hidden += len(jobs) - keep
			jobs = jobs[:keep]
		}
		last = cut(last, rows[2], func(n int) string { return fmt.Sprintf("… and %d more", n) })
	}
	if hidden > 0 {
		jobs = append(jobs, fmt.Sprintf("… and %d more (sparkplane jobs %s)", hidden, st.Name))
	}

	line("%s", s.paint("1", fmt.Sprintf("%-12s %-12s %-*s %-*s %7s %9s", "WORKER", "STATE", wbar+8, "CORES", wbar+12, "MEMORY", "DRIVERS", "EXECUTORS")))
	for _, l := range workers {
		line("%s", l)
	}
	line("")
	line("%s", s.paint("1", fmt.Sprintf("%-12s %-*s %-10s %-8s %9s", "JOB", namew, "NAME", "STATE", "MODE", "DURATION")))
	for _, l := range jobs {
		line("%s", l)
	}
	line("")
	line("%s", s.paint("1", lastTitle))
	for _, l := range last {
		line("%s", l)
	}
	out := b.String()
	if s.height > 0 { // a terminal shorter than the fixed lines: the top of the frame
		if ls := strings.SplitAfter(out, "\n"); len(ls) > s.height-1 {
			out = strings.Join(ls[:max(s.height-1, 1)], "")
		}
	}
	return out
}

// fitRows shares n rows among lists that want the given rows: each at least one while rows
// last, then one more to each in turn.
func fitRows(n int, want []int) []int {
	got := make([]int, len(want))
	for progress := true; progress && n > 0; {
		progress = false
		for i := range want {
			if n > 0 && got[i] < want[i] {
				got[i]++
				n--
				progress = true
			}
		}
	}
	return got
}

// cut keeps lines to n rows, the last of them saying how many it leaves out; a single row shows
// the first line (the newest event, the first worker).
func cut(lines []string, n int, more func(int) string) []string {
	switch {
	case len(lines) <= n:
		return lines
	case n <= 0:
		return nil
	case n == 1:
		return lines[:1]
	}
	return append(lines[:n-1:n-1], more(len(lines)-(n-1)))
}

// watch redraws the status of a cluster every interval until ctx ends: in place on a terminal,
// as a stream of plain snapshots when piped.
func watch(ctx context.Context, f *Factory, m *cluster.Manager, ref cluster.Ref, interval time.Duration) error {
	out := f.IO.Out
	tty := f.IO.IsTerminal()
	style := watchStyle{width: f.IO.Width(), height: f.IO.Height(), unicode: tty, paint: func(_, s string) string { return s }}
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
			style.width, style.height = f.IO.Width(), f.IO.Height()
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
