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
			x, err := strconv.ParseFloat(f[i+1], 64)
			if err != nil || x < 0 {
				return nil, &TraceError{line, fmt.Sprintf("column %d: %q is not a non-negative number", i+2, f[i+1])}
			}
			v[i] = x
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
		submit, err1 := strconv.ParseFloat(strings.TrimSpace(rec[0]), 64)
		tasks, err2 := strconv.Atoi(strings.TrimSpace(rec[1]))
		secs, err3 := strconv.ParseFloat(strings.TrimSpace(rec[2]), 64)
		if err1 != nil || err2 != nil || err3 != nil {
			if line == 1 {
				continue // a header
			}
			return nil, &TraceError{line, "submit seconds, tasks and seconds per task must be numbers"}
		}
		if submit < 0 || tasks < 1 || secs <= 0 {
			return nil, &TraceError{line, "submit ≥ 0, tasks ≥ 1 and seconds per task > 0"}
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
