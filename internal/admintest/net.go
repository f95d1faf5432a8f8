package admintest

import (
	"net"
	"testing"
	"time"
)

// FreeAddr returns a loopback address on host that nothing listens on
// now.
func FreeAddr(t testing.TB, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// Occupy binds a loopback address for the test's duration.
func Occupy(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String()
}

// WaitFor polls cond until it holds or WaitBound passes.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", WaitBound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
