package listener

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudflare/tableflip"
)

// An offer keeps a duplicate of each socket for the next process; after a
// failed upgrade Withdraw must let it go, or a listener a later reload
// removes would go on accepting into a backlog nobody reads, and its
// address could not be bound again.
func TestWithdrawReleasesTheSocket(t *testing.T) {
	upg := testUpgrader(t)
	spec := Spec{Name: "t", Network: "tcp", Address: "127.0.0.1:0"}
	ln, err := ListenStream(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	o := NewOffer(upg.Fds)
	if err := o.AddListener(spec, ln); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	// The offered duplicate still listens: the kernel completes the
	// handshake into its backlog.
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("the offered socket does not listen: %v", err)
	}
	c.Close()

	o.Withdraw()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		if err == nil {
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts 10s after Withdraw: %v", addr, err)
		}
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
}

// tableflip allows one Upgrader a process: the tests share it, and
// TestMain stops it.
var testUpg struct {
	once sync.Once
	upg  *tableflip.Upgrader
	err  error
}

func testUpgrader(t *testing.T) *tableflip.Upgrader {
	t.Helper()
	testUpg.once.Do(func() { testUpg.upg, testUpg.err = tableflip.New(tableflip.Options{}) })
	if testUpg.err != nil {
		t.Fatal(testUpg.err)
	}
	return testUpg.upg
}

func stopTestUpgrader() {
	if testUpg.upg != nil {
		testUpg.upg.Stop()
		<-testUpg.upg.Exit()
	}
}

func TestHandoverKey(t *testing.T) {
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Name: "a", Network: "tcp", Address: "127.0.0.1:7000"}, "127.0.0.1:7000"},
		{Spec{Name: "a", Network: "tcp", Address: "127.0.0.1:0"}, "127.0.0.1:0 a"},
		{Spec{Name: "a", Network: "udp", Address: ":0"}, ":0 a"},
		{Spec{Name: "a", Network: "unix", Address: "/run/x.sock"}, "/run/x.sock"},
	} {
		if got := handoverKey(tc.spec); got != tc.want {
			t.Errorf("handoverKey(%+v) = %q, want %q", tc.spec, got, tc.want)
		}
	}
}
