package testutil

import (
	"net"
	"testing"
)

// FreeAddr is a loopback host:port nothing listens on at the moment, for a server the test
// starts (Prometheus, say) that takes its address as a flag.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// FreePort is a loopback port nothing listens on at the moment, for a server that takes its
// ports as numbers (Consul, Nomad).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
