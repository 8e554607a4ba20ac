package agent

import (
	"container/list"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// An agent's API is reachable by anyone who can reach its port, token or not. What an
// unauthenticated client can hold is bounded: headers must arrive within headerTimeout and fit in
// maxHeaderBytes; an answer without authentication (a 401, a health check) closes the connection;
// and past its share of the process's file descriptors the listener closes the oldest connection
// that has made no authenticated request, so that a flood of idle connections cannot keep the
// cluster's owner out.
const (
	headerTimeout  = 5 * time.Second
	idleTimeout    = 2 * time.Minute
	maxHeaderBytes = 64 << 10
)

// newServer is an HTTP server for the agent's listeners, with the limits above; handlers call
// trust once a request has proven itself.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				c = tc.NetConn()
			}
			if gc, ok := c.(*guardedConn); ok {
				return context.WithValue(ctx, connKey{}, gc)
			}
			return ctx
		},
	}
}

type connKey struct{}

// trust marks the connection r came on as its owner's: the listener no longer closes it to make
// room.
func trust(r *http.Request) {
	if gc, ok := r.Context().Value(connKey{}).(*guardedConn); ok {
		gc.trusted.Store(true)
	}
}

// closeAfter makes the server close the connection once this answer is written.
func closeAfter(w http.ResponseWriter) { w.Header().Set("Connection", "close") }

// guardedListener keeps at most max() connections open, oldest first in conns.
type guardedListener struct {
	net.Listener
	max func() int

	mu    sync.Mutex
	conns list.List // of *guardedConn
}

type guardedConn struct {
	net.Conn
	l       *guardedListener
	elem    *list.Element // nil once out of the list
	trusted atomic.Bool
}

func guard(l net.Listener) *guardedListener { return &guardedListener{Listener: l, max: connBudget} }

// connBudget is the connections an agent keeps open: three quarters of its file descriptors,
// leaving the rest to its Spark daemon's logs, its database and its outgoing calls.
func connBudget() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<20 {
		return 1 << 15
	}
	return max(int(lim.Cur)*3/4, 16)
}

func (l *guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	gc := &guardedConn{Conn: c, l: l}
	var evicted []net.Conn
	limit := l.max()
	l.mu.Lock()
	for e := l.conns.Front(); e != nil && l.conns.Len() >= limit; {
		next := e.Next()
		if old := e.Value.(*guardedConn); !old.trusted.Load() {
			l.conns.Remove(e)
			old.elem = nil
			evicted = append(evicted, old.Conn)
		}
		e = next
	}
	gc.elem = l.conns.PushBack(gc)
	l.mu.Unlock()
	for _, c := range evicted {
		c.Close()
	}
	return gc, nil
}

func (c *guardedConn) Close() error {
	c.l.mu.Lock()
	if c.elem != nil {
		c.l.conns.Remove(c.elem)
		c.elem = nil
	}
	c.l.mu.Unlock()
	return c.Conn.Close()
}
