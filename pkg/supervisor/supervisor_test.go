package supervisor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/listener"
	"github.com/sluice-dev/sluice/pkg/supervisor"
)

func TestRoundtripTCPAndUnix(t *testing.T) {
	sock := tempSock(t)
	s := start(t, "listeners:\n"+tcpListener("t", "sv-echo")+
		fmt.Sprintf("  - {name: u, network: unix, address: %q, chain: [{handler: sv-echo}]}\n", sock))
	for _, tc := range []struct{ network, address string }{{"tcp", addr(t, s, "t")}, {"unix", sock}} {
		c := dial(t, tc.network, tc.address)
		if got, err := roundtrip(c, "hello sluice\n"); err != nil || got != "hello sluice\n" {
			t.Errorf("%s: got %q, %v", tc.network, got, err)
		}
	}
}

// TestLargePayloadConcurrent writes 4 MiB while reading concurrently:
// nothing is lost, reordered or duplicated.
func TestLargePayloadConcurrent(t *testing.T) {
	s := start(t, "listeners:\n"+tcpListener("t", "sv-echo"))
	c := dial(t, "tcp", addr(t, s, "t"))
	payload := make([]byte, 4<<20)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		c.(*net.TCPConn).CloseWrite()
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("payload corrupted: got %d bytes, want %d", len(got), len(payload))
	}
}

// TestHalfClose: after the client's EOF the server still delivers every
// byte, then closes.
func TestHalfClose(t *testing.T) {
	s := start(t, "listeners:\n"+tcpListener("t", "sv-echo"))
	c := dial(t, "tcp", addr(t, s, "t")).(*net.TCPConn)
	if _, err := io.WriteString(c, "last words"); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "last words" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestManyConcurrentConnections(t *testing.T) {
	s := start(t, "listeners:\n"+tcpListener("t", "sv-echo"))
	a := addr(t, s, "t")
	const n = 300
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial(t, "tcp", a)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Sprintf("conn %d\n", i)
			if got, err := roundtrip(c, msg); err != nil || got != msg {
				errs <- fmt.Errorf("conn %d: got %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := s.Status(); len(st) != 1 || st[0].Connections != n {
		t.Errorf("status = %+v, want %d open connections", st, n)
	}
}

// TestPanicClosesOneConnection: a handler panic closes its connection and
// nothing else.
func TestPanicClosesOneConnection(t *testing.T) {
	s := start(t, "listeners:\n"+tcpListener("good", "sv-echo")+tcpListener("bad", "sv-panic"))
	good := dial(t, "tcp", addr(t, s, "good"))
	if _, err := roundtrip(good, "before"); err != nil {
		t.Fatal(err)
	}
	bad := dial(t, "tcp", addr(t, s, "bad"))
	io.WriteString(bad, "x")
	if !closedByPeer(bad) {
		t.Fatal("panicking connection not closed")
	}
	if got, err := roundtrip(good, "after"); err != nil || got != "after" {
		t.Fatalf("other connection hurt by the panic: %q, %v", got, err)
	}
	// And the panicking listener still accepts.
	again := dial(t, "tcp", addr(t, s, "bad"))
	io.WriteString(again, "x")
	if !closedByPeer(again) {
		t.Fatal("second panicking connection not closed")
	}
}

// TestShutdownDrains: an open connection may finish within the drain
// timeout; one that does not is closed when it passes.
func TestShutdownDrains(t *testing.T) {
	s := supervisor.New(hclog.NewNullLogger(), nil)
	cfg := mustParse(t, "shutdown: {drain_timeout: 300ms}\nlisteners:\n"+tcpListener("t", "sv-echo"))
	if _, err := s.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	a := addr(t, s, "t")
	finishing := dial(t, "tcp", a)
	lingering := dial(t, "tcp", a)
	if _, err := roundtrip(lingering, "hi"); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	begin := time.Now()
	go func() {
		_ = s.Shutdown(context.Background())
		close(done)
	}()
	// The listener stops accepting at once...
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// ...while an open connection still works, and can finish cleanly.
	if got, err := roundtrip(finishing, "still here"); err != nil || got != "still here" {
		t.Fatalf("open connection broken during drain: %q, %v", got, err)
	}
	finishing.(*net.TCPConn).CloseWrite()
	if !closedByPeer(finishing) {
		t.Fatal("finished connection not closed")
	}
	// The lingering one is closed by the drain timeout.
	if !closedByPeer(lingering) {
		t.Fatal("lingering connection not closed at the drain timeout")
	}
	<-done
	if d := time.Since(begin); d < 300*time.Millisecond {
		t.Errorf("shutdown took %v, less than the drain timeout with a connection open", d)
	}
	if _, err := s.Apply(context.Background(), cfg); !errors.Is(err, supervisor.ErrClosed) {
		t.Errorf("Apply after Shutdown: %v", err)
	}
}

// TestApplyIsAllOrNothing: when one listener cannot bind, nothing of the
// new config is left bound and the running one keeps serving.
func TestApplyIsAllOrNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()

	s := start(t, "listeners:\n"+tcpListener("old", "sv-echo"))
	oldAddr := addr(t, s, "old")
	old := dial(t, "tcp", oldAddr)

	bad := mustParse(t, "listeners:\n"+
		fmt.Sprintf("  - {name: fresh, network: tcp, address: %q, chain: [{handler: sv-echo}]}\n", freeAddr)+
		fmt.Sprintf("  - {name: clash, network: tcp, address: %q, chain: [{handler: sv-echo}]}\n", busy.Addr()))
	_, err = s.Apply(context.Background(), bad)
	if !errors.Is(err, listener.ErrInUse) || !strings.Contains(err.Error(), "listeners[1] (clash)") {
		t.Fatalf("Apply: %v, want address in use naming listeners[1] (clash)", err)
	}
	// The freshly bound socket of listeners[0] was released again.
	ln, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("failed Apply left %s bound: %v", freeAddr, err)
	}
	ln.Close()
	// The running config is untouched.
	if got, err := roundtrip(old, "ok"); err != nil || got != "ok" {
		t.Fatalf("running listener hurt: %q %v", got, err)
	}
	if _, ok := s.Addr("fresh"); ok {
		t.Error("listener of the failed config is running")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
