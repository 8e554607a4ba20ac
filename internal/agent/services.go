package agent

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"sync"
)

// serviceRe is the line Utils.startServiceOnPort logs once a service has bound. Spark moves a
// service up from its port, up to spark.port.maxRetries, when the port is taken; the agent picks
// free ports, but another process can take one before Spark binds it, so the agent reads where
// each service really went from this line.
var serviceRe = regexp.MustCompile(`Successfully started service '([^']+)' on port (\d+)\.`)

// serviceLog passes a daemon's output on to w and tells onPort of every service that bound.
type serviceLog struct {
	w      io.Writer
	onPort func(service string, port int)

	mu   sync.Mutex
	line []byte
}

func (s *serviceLog) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.line = append(s.line, p...)
	for {
		i := bytes.IndexByte(s.line, '\n')
		if i < 0 {
			break
		}
		if m := serviceRe.FindSubmatch(s.line[:i]); m != nil {
			if port, err := strconv.Atoi(string(m[2])); err == nil {
				s.onPort(string(m[1]), port)
			}
		}
		s.line = s.line[i+1:]
	}
	if len(s.line) > 64<<10 { // a line that long is no service's
		s.line = s.line[:0]
	}
	return n, err
}
