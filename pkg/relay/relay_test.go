package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/chain"
)

// wrapper stands for a middleware's wrapper (TLS, PROXY protocol): the
// same bytes, but not the socket itself, so only the plain loop applies.
type wrapper struct{ net.Conn }

func (w wrapper) CloseWrite() error { return w.Conn.(chain.CloseWriter).CloseWrite() }

func wrap(c net.Conn) net.Conn { return wrapper{c} }

// paths are the ways Relay can move a pair: the event loop from the
// first byte, goroutines that hop to the loop after two messages, one
// goroutine per direction on the sockets for good, and the plain loop
// over a wrapper.
var paths = []relayPath{
	{"loop", false, 0, nil},
	{"hop", false, 2, nil},
	{"goroutines", true, 0, nil},
	{"wrapped", false, 0, wrap},
}

type relayPath struct {
	name   string
	noLoop bool
	hop    int64
	wrap   func(net.Conn) net.Conn
}

// pair starts one relayed connection on path p, with the package's
// knobs set for p until the test ends.
func (p relayPath) pair(t *testing.T, st *Stats, idle time.Duration) *loopPair {
	t.Helper()
	setNoLoop(t, p.noLoop)
	setHopAfter(t, p.hop)
	return startPair(t, context.Background(), st, testnet.Listen(t, "tcp"), idle, 1, p.wrap)
}

func setNoLoop(t *testing.T, off bool) {
	t.Helper()
	was := noLoop.Load()
	noLoop.Store(off)
	t.Cleanup(func() { noLoop.Store(was) })
}

func setHopAfter(t *testing.T, n int64) {
	t.Helper()
	was := hopAfter.Load()
	hopAfter.Store(n)
	t.Cleanup(func() { hopAfter.Store(was) })
}

// TestRelayHalfClose: either side may finish sending first; the other
// keeps sending, and its bytes still arrive, until it finishes too. The
// counts are exact on every path.
func TestRelayHalfClose(t *testing.T) {
	for _, p := range paths {
		for _, upFirst := range []bool{false, true} {
			t.Run(p.name+map[bool]string{false: "/client first", true: "/upstream first"}[upFirst], func(t *testing.T) {
				lp := p.pair(t, new(Stats), 0)
				first, second := lp.cl, lp.up
				if upFirst {
					first, second = lp.up, lp.cl
				}
				if _, err := first.Write([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				_ = first.(*net.TCPConn).CloseWrite()
				if b, err := io.ReadAll(second); err != nil || string(b) != "ping" {
					t.Fatalf("read %q, %v; want ping then EOF", b, err)
				}
				for range 3 {
					if _, err := second.Write([]byte("pong")); err != nil {
						t.Fatal(err)
					}
				}
				_ = second.(*net.TCPConn).CloseWrite()
				if b, err := io.ReadAll(first); err != nil || string(b) != "pongpongpong" {
					t.Fatalf("read %q, %v; want pong×3 then EOF", b, err)
				}
				if err := lp.wait(t); err != nil {
					t.Fatalf("Relay: %v", err)
				}
				in, out := lp.c.BytesIn(), lp.c.BytesOut()
				if wantIn, wantOut := map[bool][2]int64{false: {4, 12}, true: {12, 4}}[upFirst][0], map[bool][2]int64{false: {4, 12}, true: {12, 4}}[upFirst][1]; in != wantIn || out != wantOut {
					t.Errorf("counted in/out %d/%d, want %d/%d", in, out, wantIn, wantOut)
				}
			})
		}
	}
}

// TestRelayBulkCounts: megabytes both ways arrive intact, are counted to
// the byte, and take splice on the sockets, never behind a wrapper.
func TestRelayBulkCounts(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			st := new(Stats)
			lp := p.pair(t, st, time.Minute)
			toUp, toClient := make([]byte, 3<<20+1), make([]byte, 2<<20+7)
			_, _ = rand.Read(toUp)
			_, _ = rand.Read(toClient)
			go func() {
				_, _ = lp.cl.Write(toUp)
				_ = lp.cl.(*net.TCPConn).CloseWrite()
			}()
			go func() {
				_, _ = lp.up.Write(toClient)
				_ = lp.up.(*net.TCPConn).CloseWrite()
			}()
			gotUp := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(lp.up)
				gotUp <- b
			}()
			if b, err := io.ReadAll(lp.cl); err != nil || !bytes.Equal(b, toClient) {
				t.Fatalf("client got %d bytes (%v), want %d intact", len(b), err, len(toClient))
			}
			if b := <-gotUp; !bytes.Equal(b, toUp) {
				t.Fatalf("upstream got %d bytes, want %d intact", len(b), len(toUp))
			}
			if err := lp.wait(t); err != nil {
				t.Fatalf("Relay: %v", err)
			}
			if in, out := lp.c.BytesIn(), lp.c.BytesOut(); in != int64(len(toUp)) || out != int64(len(toClient)) {
				t.Errorf("counted in/out %d/%d, want %d/%d", in, out, len(toUp), len(toClient))
			}
			spliced, buffered := st.Splice.Load(), st.Buffered.Load()
			if p.wrap != nil && (spliced != 0 || buffered != 2) {
				t.Errorf("wrapped: splice/buffered %d/%d, want 0/2", spliced, buffered)
			}
			if p.wrap == nil && (spliced != 2 || buffered != 0) {
				t.Errorf("sockets: splice/buffered %d/%d, want 2/0", spliced, buffered)
			}
		})
	}
}

// TestRelayIdleTimeout: a pair ends with chain.ErrIdleTimeout once
// nothing moved either way for the timeout, not before; traffic in one
// direction alone keeps both alive.
func TestRelayIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			lp := p.pair(t, new(Stats), idle)
			// One-way traffic for three timeouts.
			buf := make([]byte, 1)
			var quiet time.Time
			for i := range 13 {
				if i > 0 {
					time.Sleep(idle / 4)
				}
				if _, err := lp.cl.Write([]byte("x")); err != nil {
					t.Fatalf("write while traffic flows: %v", err)
				}
				if _, err := io.ReadFull(lp.up, buf); err != nil {
					t.Fatalf("read while traffic flows: %v", err)
				}
				// Taken once the byte arrived: the relay moved it before.
				quiet = time.Now()
			}
			err := lp.wait(t)
			if !errors.Is(err, chain.ErrIdleTimeout) {
				t.Fatalf("Relay = %v, want the idle timeout", err)
			}
			if d := time.Since(quiet); d < idle-idle/4 {
				t.Errorf("ended %v after the last byte, before the %v timeout", d, idle)
			}
			if _, err := lp.cl.Read(buf); err == nil {
				t.Error("client: read succeeded after the idle timeout")
			}
		})
	}
}

// copyPair runs Copy from a to b's peer: the client writes into src, the
// reader reads what Copy wrote to dst.
func copyPair(t *testing.T, idle time.Duration, wrapIt bool, st *Stats) (client, reader net.Conn, c *chain.Conn, done <-chan error) {
	t.Helper()
	srcLn, dstLn := testnet.Listen(t, "tcp"), testnet.Listen(t, "tcp")
	res := make(chan error, 1)
	conns := make(chan *chain.Conn, 1)
	go func() {
		src, err := srcLn.Accept()
		if err != nil {
			res <- err
			return
		}
		defer src.Close()
		dst, err := net.Dial("tcp", dstLn.Addr().String())
		if err != nil {
			res <- err
			return
		}
		defer dst.Close()
		c := chain.NewConn(src, 1, "t", idle, hclog.NewNullLogger())
		var d net.Conn = dst
		if wrapIt {
			c.Conn, d = wrap(src), wrap(dst)
		}
		conns <- c
		res <- Copy(c, d, c.Conn, In, st)
	}()
	cl, err := net.Dial("tcp", srcLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	rd, err := dstLn.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rd.Close() })
	_ = cl.SetDeadline(time.Now().Add(30 * time.Second))
	_ = rd.SetDeadline(time.Now().Add(30 * time.Second))
	return cl, rd, <-conns, res
}

// TestCopy: one direction, small messages then bulk, arrives intact and
// is counted exactly; src's EOF becomes dst's half-close; bulk splices
// on the sockets and never behind a wrapper.
func TestCopy(t *testing.T) {
	for _, wrapIt := range []bool{false, true} {
		t.Run(map[bool]string{false: "sockets", true: "wrapped"}[wrapIt], func(t *testing.T) {
			st := new(Stats)
			cl, rd, c, done := copyPair(t, time.Minute, wrapIt, st)
			payload := make([]byte, 2<<20+3)
			_, _ = rand.Read(payload)
			go func() {
				for i := 0; i < 64*10; i += 64 { // small messages first
					_, _ = cl.Write(payload[i : i+64])
					time.Sleep(time.Millisecond / 10)
				}
				_, _ = cl.Write(payload[640:])
				_ = cl.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(rd)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("got %d bytes (%v), want %d intact then EOF", len(got), err, len(payload))
			}
			if err := <-done; err != nil {
				t.Fatalf("Copy: %v", err)
			}
			if c.BytesIn() != int64(len(payload)) || c.BytesOut() != 0 {
				t.Errorf("counted in/out %d/%d, want %d/0", c.BytesIn(), c.BytesOut(), len(payload))
			}
			if want := map[bool]int64{false: 1, true: 0}[wrapIt]; st.Splice.Load() != want {
				t.Errorf("%d switches to splice, want %d", st.Splice.Load(), want)
			}
		})
	}
}

// TestCopyIdleTimeout: a quiet Copy ends with chain.ErrIdleTimeout, not
// before the timeout, on both paths.
func TestCopyIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	for _, wrapIt := range []bool{false, true} {
		t.Run(map[bool]string{false: "sockets", true: "wrapped"}[wrapIt], func(t *testing.T) {
			cl, rd, _, done := copyPair(t, idle, wrapIt, nil)
			if _, err := cl.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(rd, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			quiet := time.Now()
			select {
			case err := <-done:
				if !errors.Is(err, chain.ErrIdleTimeout) {
					t.Fatalf("Copy = %v, want the idle timeout", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Copy did not end")
			}
			if d := time.Since(quiet); d < idle-idle/4 {
				t.Errorf("ended %v after the last byte, before the %v timeout", d, idle)
			}
		})
	}
}

// TestRelayLeavesLastFINToClose: on the goroutines (the loop off, or not
// joined yet), the first EOF is passed on at once as a half-close; the
// second, onto a socket, is not shut down by Relay but sent by the close
// that follows it, as a clean EOF and not a reset.
func TestRelayLeavesLastFINToClose(t *testing.T) {
	for _, tc := range []struct {
		name    string
		upFirst bool
		noLoop  bool
	}{
		{"client first", false, true},
		{"upstream first", true, true},
		{"client first, hop pending", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setNoLoop(t, tc.noLoop)
			setHopAfter(t, 8)
			upFirst := tc.upFirst
			cl, c := testnet.TCPPair(t)
			upc, ups := testnet.TCPPair(t)
			for _, s := range []*net.TCPConn{cl, ups} {
				_ = s.SetDeadline(time.Now().Add(30 * time.Second))
			}
			conn := chain.NewConn(c, 1, "t", 0, hclog.NewNullLogger())
			served := make(chan error, 1)
			go func() { served <- Relay(context.Background(), conn, upc, new(Stats)) }()
			first, second := net.Conn(cl), net.Conn(ups)
			if upFirst {
				first, second = ups, cl
			}
			_ = first.(*net.TCPConn).CloseWrite()
			if b, err := io.ReadAll(second); err != nil || len(b) != 0 {
				t.Fatalf("read %q, %v; want the first EOF passed on at once", b, err)
			}
			_ = second.(*net.TCPConn).CloseWrite()
			select {
			case err := <-served:
				if err != nil {
					t.Fatalf("Relay: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Relay did not return after both EOFs")
			}
			_ = first.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, err := first.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read %d, %v before the close; want nothing yet (no shutdown by Relay)", n, err)
			}
			_ = c.Close()
			_ = upc.Close()
			_ = first.SetReadDeadline(time.Now().Add(30 * time.Second))
			if b, err := io.ReadAll(first); err != nil || len(b) != 0 {
				t.Fatalf("read %q, %v after the close; want a clean EOF", b, err)
			}
		})
	}
}
