package agent

import (
	"bytes"
	"testing"
)

func TestServiceLogFindsBoundPorts(t *testing.T) {
	var out bytes.Buffer
	got := map[string]int{}
	s := &serviceLog{w: &out, onPort: func(service string, port int) { got[service] = port }}
	log := "26/11/21 10:00:00 WARN Utils: Service 'WorkerUI' could not bind on port 8081. Attempting port 8082.\n" +
		"26/11/21 10:00:00 INFO Utils: Successfully started service 'WorkerUI' on port 8082.\n" +
		"26/11/21 10:00:00 INFO Utils: Successfully started service 'sparkWorker' on port 40123.\n" +
		"26/11/21 10:00:00 INFO Utils: Successfully started service on port 6066.\n"
	// Written in pieces that cut lines anywhere, as a pipe delivers them.
	for i := 0; i < len(log); i += 7 {
		s.Write([]byte(log[i:min(i+7, len(log))]))
	}
	if out.String() != log {
		t.Error("the output was not passed on as it was")
	}
	if len(got) != 2 || got["WorkerUI"] != 8082 || got["sparkWorker"] != 40123 {
		t.Errorf("services: %v", got)
	}
}
