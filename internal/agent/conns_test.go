package agent

import (
	"io"
	"net"
	"testing"
	"time"
)

// Past its budget the listener closes the oldest connection not yet trusted, never a trusted one.
func TestGuardedListenerEvictsTheOldestUntrusted(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &guardedListener{Listener: raw, max: func() int { return 3 }}
	defer l.Close()
	var clients []net.Conn
	var served []*guardedConn
	accept := func() {
		t.Helper()
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		served = append(served, s.(*guardedConn))
	}
	closed := func(i int) bool {
		clients[i].SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := clients[i].Read(make([]byte, 1))
		return err == io.EOF
	}
	for range 3 {
		accept()
	}
	served[0].trusted.Store(true) // the owner's, the oldest
	accept()                      // a fourth: the oldest untrusted (1) goes
	if closed(0) || !closed(1) || closed(2) || closed(3) {
		t.Errorf("after the fourth: closed 0..3 = %v %v %v %v, want only 1", closed(0), closed(1), closed(2), closed(3))
	}
	served[3].Close() // a connection closed by the server leaves the count
	accept()
	if closed(2) {
		t.Error("a connection was evicted though one had closed and made room")
	}
	if n := l.conns.Len(); n != 3 {
		t.Errorf("%d connections counted, want 3", n)
	}
}
