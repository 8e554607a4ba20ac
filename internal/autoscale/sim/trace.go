package sim

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Stage is a set of tasks that all take the same time.
type Stage struct {
	Tasks    int
	TaskTime time.Duration
}

// Job is one application: stages run one after the other.
type Job struct {
	Name   string
	Submit time.Duration // from the start of the trace
	Stages []Stage
}

// CoreSeconds is the job's work.
func (j Job) CoreSeconds() float64 {
	s := 0.0
	for _, st := range j.Stages {
		s += float64(st.Tasks) * st.TaskTime.Seconds()
	}
	return s
}

// AloneTime is how long the job takes alone on an unlimited, already running cluster: its
// driver's start, then each stage's tasks all at once.
func (j Job) AloneTime(m Model) time.Duration {
	d := m.JobOverhead
	for _, st := range j.Stages {
		d += st.TaskTime
	}
	return d
}

// TraceError points at a bad line of a trace.
type TraceError struct {
	Line int
	Msg  string
}

func (e *TraceError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// ReadSWIM reads a SWIM trace (job name, submit seconds, gap, input bytes, shuffle bytes, output
// bytes; tab separated) and turns each job into a map stage and, with shuffle, a reduce stage.
func ReadSWIM(r io.Reader, m Model) ([]Job, error) {
	var jobs []Job
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) < 6 {
			return nil, &TraceError{line, fmt.Sprintf("expected 6 columns (name, submit, gap, input, shuffle, output bytes), got %d", len(f))}
		}
		var v [5]float64
		for i := range v {
			limit := maxBytes
			if i < 2 {
				limit = maxSeconds // submit and gap
			}
			x, err := traceNumber(f[i+1], limit)
			if err != nil {
				return nil, &TraceError{line, fmt.Sprintf("column %d: %v", i+2, err)}
			}
			v[i] = x
		}
		if n := math.Ceil(v[2]/float64(m.SplitBytes)) + math.Ceil(v[3]/float64(m.ReducerBytes)); n > maxTasks {
			return nil, &TraceError{line, fmt.Sprintf("its bytes make %.0f tasks, more than the %d of one job this simulator takes", n, maxTasks)}
		}
		jobs = append(jobs, swimJob(f[0], v[0], v[2], v[3], v[4], m))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, errors.New("the trace has no jobs")
	}
	sortJobs(jobs)
	return jobs, nil
}

func swimJob(name string, submit, input, shuffle, output float64, m Model) Job {
	task := func(bytes float64) time.Duration {
		return m.TaskOverhead + time.Duration(bytes/m.CoreRate*float64(time.Second))
	}
	j := Job{Name: name, Submit: time.Duration(submit * float64(time.Second))}
	maps := max(1, int(math.Ceil(input/float64(m.SplitBytes))))
	mapBytes := input
	if shuffle == 0 {
		mapBytes += output // a map-only job writes its output from the maps
	}
	j.Stages = append(j.Stages, Stage{Tasks: maps, TaskTime: task(mapBytes / float64(maps))})
	if shuffle > 0 {
		reds := max(1, int(math.Ceil(shuffle/float64(m.ReducerBytes))))
		j.Stages = append(j.Stages, Stage{Tasks: reds, TaskTime: task((shuffle + output) / float64(reds))})
	}
	return j
}

// ReadCSV reads a hand-made workload: submit seconds, tasks, seconds per task; a header line is
// allowed.
func ReadCSV(r io.Reader) ([]Job, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	var jobs []Job
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(rec) < 3 {
			return nil, &TraceError{line, "expected submit seconds, tasks, seconds per task"}
		}
		submit, err1 := traceNumber(strings.TrimSpace(rec[0]), maxSeconds)
		tasks, err2 := strconv.Atoi(strings.TrimSpace(rec[1]))
		secs, err3 := traceNumber(strings.TrimSpace(rec[2]), maxTaskSeconds)
		if line == 1 && (err1 != nil || err2 != nil || err3 != nil) {
			if _, err := strconv.ParseFloat(strings.TrimSpace(rec[0]), 64); err != nil {
				continue // a header
			}
		}
		switch {
		case err1 != nil:
			return nil, &TraceError{line, "submit seconds: " + err1.Error()}
		case err2 != nil || tasks < 1 || tasks > maxTasks:
			return nil, &TraceError{line, fmt.Sprintf("tasks: %q is not a whole number from 1 to %d", rec[1], maxTasks)}
		case err3 != nil:
			return nil, &TraceError{line, "seconds per task: " + err3.Error()}
		case secs == 0:
			return nil, &TraceError{line, "seconds per task must be more than 0"}
		}
		jobs = append(jobs, Job{Name: fmt.Sprintf("job%d", len(jobs)), Submit: time.Duration(submit * float64(time.Second)),
			Stages: []Stage{{Tasks: tasks, TaskTime: time.Duration(secs * float64(time.Second))}}})
	}
	if len(jobs) == 0 {
		return nil, errors.New("the trace has no jobs")
	}
	sortJobs(jobs)
	return jobs, nil
}

// Bounds on a trace's numbers, far beyond any real workload, so that every duration the
// simulator derives from them fits in a time.Duration (±292 years) and every cost is finite.
const (
	maxSeconds     = 366 * 24 * 3600 // a submit time or gap: within a year
	maxTaskSeconds = 7 * 24 * 3600   // one task: a week
	maxBytes       = 1e15            // one job's input, shuffle or output: a petabyte
	maxTasks       = 1_000_000       // tasks of one job
)

// traceNumber reads a non-negative, finite number no larger than limit.
func traceNumber(s string, limit float64) (float64, error) {
	x, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("%q is not a number", s)
	case math.IsNaN(x) || math.IsInf(x, 0) || errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("%q is not a finite number", s)
	case x < 0:
		return 0, fmt.Errorf("%q is negative", s)
	case x > limit:
		return 0, fmt.Errorf("%s is more than %.0f, beyond any real trace", s, limit)
	}
	return x, nil
}

func sortJobs(jobs []Job) {
	sort.SliceStable(jobs, func(i, k int) bool { return jobs[i].Submit < jobs[k].Submit })
}

// Resample makes another day of the same kind: the trace's hours drawn with replacement, each
// hour's jobs keeping their offsets within the hour. With seed 0 it returns the jobs as they are.
func Resample(jobs []Job, seed uint64) []Job {
	if seed == 0 {
		return jobs
	}
	byHour := map[int][]Job{}
	hours := 0
	for _, j := range jobs {
		h := int(j.Submit / time.Hour)
		byHour[h] = append(byHour[h], j)
		hours = max(hours, h+1)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var out []Job
	for h := 0; h < hours; h++ {
		src := rng.IntN(hours)
		for _, j := range byHour[src] {
			j.Submit = time.Duration(h)*time.Hour + j.Submit - time.Duration(src)*time.Hour
			out = append(out, j)
		}
	}
	sortJobs(out)
	return out
}
