package echo_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/plugintest"
	"github.com/sluice-dev/sluice/pkg/registry"
	"github.com/sluice-dev/sluice/plugins/echo"
)

func TestReadmeExamples(t *testing.T) {
	cfgs := plugintest.CheckReadme(t, "README.md")
	if cfgs[0].Listeners[0].Chain[0].Handler != "echo" {
		t.Error("README example does not use echo")
	}
}

func TestRejectsOptions(t *testing.T) {
	if _, errs := registry.New("echo", map[string]any{"loud": true}); len(errs) != 1 || !strings.Contains(errs[0].Error(), "loud: unknown key") {
		t.Errorf("errs = %v", errs)
	}
}

// serve accepts one TCP connection and runs echo on it, returning the
// client side and a channel with echo's result and the counted bytes.
type result struct {
	err     error
	in, out int64
}

func serve(t *testing.T, idle time.Duration) (*net.TCPConn, <-chan result) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	res := make(chan result, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer nc.Close()
		c := chain.NewConn(nc, 1, "t", idle, nil)
		err = (&echo.Handler{}).ServeStream(context.Background(), c)
		res <- result{err, c.BytesIn(), c.BytesOut()}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn), res
}

func TestEchoHalfCloseAndCounts(t *testing.T) {
	c, res := serve(t, 0)
	payload := make([]byte, 1<<20+123)
	rand.Read(payload)
	go func() {
		c.Write(payload)
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("got %d bytes (err %v), want %d intact", len(got), err, len(payload))
	}
	r := <-res
	if r.err != nil || r.in != int64(len(payload)) || r.out != int64(len(payload)) {
		t.Errorf("result %+v, want nil error and %d bytes each way", r, len(payload))
	}
}

func TestEchoIdleTimeout(t *testing.T) {
	c, res := serve(t, 100*time.Millisecond)
	io.WriteString(c, "x")
	io.ReadFull(c, make([]byte, 1))
	r := <-res
	if !errors.Is(r.err, chain.ErrIdleTimeout) {
		t.Errorf("err = %v, want idle timeout", r.err)
	}
}

// TestNoAllocPerRead: a long stream of small writes costs no allocation
// per read once the connection runs.
func TestNoAllocPerRead(t *testing.T) {
	c, _ := serve(t, 0)
	msg := []byte("ping")
	buf := make([]byte, 4)
	roundtrip := func() {
		c.Write(msg)
		io.ReadFull(c, buf)
	}
	roundtrip()
	// The measured loop includes the client's own work; echo's share of
	// allocations must be zero, so the whole is well below one per op.
	if a := testing.AllocsPerRun(200, roundtrip); a >= 1 {
		t.Errorf("%.2f allocations per roundtrip", a)
	}
}
