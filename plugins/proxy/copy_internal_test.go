package proxy

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/peek"
)

type wrapped struct{ net.Conn }

func (w wrapped) CloseWrite() error { return w.Conn.(chain.CloseWriter).CloseWrite() }

// TestCopyPaths checks which copy loop each kind of connection takes:
// the accepted socket itself, unwrapped, goes to the direct path and, with
// bulk data, to splice, in both directions, and its bytes are still
// counted; so does one whose first bytes a handler read to decide and
// replays (route, proxy_protocol); a wrapped one takes the buffer.
func TestCopyPaths(t *testing.T) {
	tests := []struct {
		name             string
		client, upstream string // tcp or unix
		wrap             bool
		replay           int // bytes read before the proxy and replayed
		splice, buffered int64
	}{
		{"tcp to tcp", "tcp", "tcp", false, 0, 2, 0},
		{"tcp to unix", "tcp", "unix", false, 0, 2, 0},
		{"unix to tcp", "unix", "tcp", false, 0, 2, 0},
		{"unix to unix", "unix", "unix", false, 0, 2, 0},
		{"tcp to tcp, replayed", "tcp", "tcp", false, 300, 2, 0},
		{"tcp to tcp, wrapped", "tcp", "tcp", true, 0, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upLn := testnet.Listen(t, tt.upstream)
			go echoOnce(upLn)
			url := "tcp://" + upLn.Addr().String()
			if tt.upstream == "unix" {
				url = "unix://" + upLn.Addr().String()
			}
			h := provisioned(t, tt.client, url)
			front := testnet.Listen(t, tt.client)
			served := make(chan *chain.Conn, 1)
			errs := make(chan error, 1)
			go func() {
				raw, err := front.Accept()
				if err != nil {
					errs <- err
					return
				}
				defer raw.Close()
				c := chain.NewConn(raw, 1, "t", 0, hclog.NewNullLogger())
				if tt.wrap {
					c.Conn = wrapped{raw}
				}
				if tt.replay > 0 {
					first := make([]byte, tt.replay)
					if _, err := io.ReadFull(raw, first); err != nil {
						errs <- err
						return
					}
					c.Conn = peek.NewReplay(raw, first)
				}
				errs <- h.ServeStream(context.Background(), c)
				served <- c
			}()

			payload := make([]byte, 1<<20)
			_, _ = rand.Read(payload)
			cl, err := net.Dial(front.Addr().Network(), front.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			_ = cl.SetDeadline(time.Now().Add(30 * time.Second))
			go func() {
				_, _ = cl.Write(payload)
				_ = cl.(chain.CloseWriter).CloseWrite()
			}()
			got, err := io.ReadAll(cl)
			if err != nil || len(got) != len(payload) {
				t.Fatalf("echo: %d bytes, %v", len(got), err)
			}
			if err := <-errs; err != nil {
				t.Fatalf("ServeStream: %v", err)
			}
			c := <-served
			if c.BytesIn() != int64(len(payload)) || c.BytesOut() != int64(len(payload)) {
				t.Errorf("counted in/out %d/%d, want %d each", c.BytesIn(), c.BytesOut(), len(payload))
			}
			if s, b := h.paths.Splice.Load(), h.paths.Buffered.Load(); s != tt.splice || b != tt.buffered {
				t.Errorf("paths splice/buffered = %d/%d, want %d/%d", s, b, tt.splice, tt.buffered)
			}
		})
	}
}

// echoOnce serves one connection: echo with a plain buffer, then
// half-close.
func echoOnce(ln net.Listener) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			break
		}
	}
	_ = c.(chain.CloseWriter).CloseWrite()
}

// TestPoolOrder checks the balance's order and the skipping of upstreams
// marked down, without sockets.
func TestPoolOrder(t *testing.T) {
	ts := []target{{url: "a"}, {url: "b"}, {url: "c"}}
	newP := func(balance string) *pool {
		return newPool(ts, balance, time.Minute, hclog.NewNullLogger(), func(string) counter { return nopCounter{} })
	}
	names := func(us []*upstream) string {
		s := ""
		for _, u := range us {
			s += u.url
		}
		return s
	}
	p := newP(RoundRobin)
	for _, want := range []string{"abc", "bca", "cab", "abc"} {
		if got := names(p.order(nil)); got != want {
			t.Fatalf("round_robin order %q, want %q", got, want)
		}
	}
	p.failed(p.ups[1], io.EOF)
	seen := map[string]int{}
	for range 4 {
		o := names(p.order(nil))
		if len(o) != 2 || o[0] == 'b' || o[1] == 'b' {
			t.Fatalf("order %q includes the upstream marked down", o)
		}
		seen[o[:1]]++
	}
	if seen["a"] != 2 || seen["c"] != 2 {
		t.Fatalf("healthy upstreams not taken in turn: %v", seen)
	}
	p.failed(p.ups[0], io.EOF)
	p.failed(p.ups[2], io.EOF)
	if got := p.order(nil); len(got) != 3 {
		t.Fatalf("all marked down: want all three tried, got %q", names(got))
	}
	p.succeeded(p.ups[1])
	if got := names(p.order(nil)); got != "b" {
		t.Fatalf("after b recovered: order %q, want \"b\"", got)
	}

	lc := newP(LeastConn)
	lc.ups[0].active.Store(2)
	lc.ups[1].active.Store(1)
	lc.ups[2].active.Store(3)
	if got := names(lc.order(nil)); got != "bac" {
		t.Fatalf("least_conn order %q, want \"bac\"", got)
	}
}

type nopCounter struct{}

func (nopCounter) Inc() {}
