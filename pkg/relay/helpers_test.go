package relay

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/chain"
)

// loopPair is one relayed connection, seen from both ends: cl is the
// client, up the upstream's accepted socket.
type loopPair struct {
	st     *Stats
	c      *chain.Conn
	cl, up net.Conn
	front  net.Listener
	served chan error
}

func newLoopPair(t *testing.T, ctx context.Context, idle time.Duration) *loopPair {
	t.Helper()
	return startLoopPair(t, ctx, new(Stats), testnet.Listen(t, "tcp"), idle)
}

// startLoopPair accepts one client, dials upLn for it, and relays the two
// with Relay, wrapped by wrap when it is set.
func startLoopPair(t *testing.T, ctx context.Context, st *Stats, upLn net.Listener, idle time.Duration) *loopPair {
	t.Helper()
	return startPair(t, ctx, st, upLn, idle, 1, nil)
}

func startPair(t *testing.T, ctx context.Context, st *Stats, upLn net.Listener, idle time.Duration, id uint64, wrap func(net.Conn) net.Conn) *loopPair {
	t.Helper()
	front := testnet.Listen(t, "tcp")
	lp := &loopPair{st: st, front: front, served: make(chan error, 1)}
	accepted := make(chan *chain.Conn, 1)
	go func() {
		raw, err := front.Accept()
		if err != nil {
			lp.served <- err
			return
		}
		defer raw.Close()
		c := chain.NewConn(raw, id, "t", idle, hclog.NewNullLogger())
		if wrap != nil {
			c.Conn = wrap(raw)
		}
		up, err := net.Dial(upLn.Addr().Network(), upLn.Addr().String())
		if err != nil {
			lp.served <- err
			return
		}
		defer up.Close()
		accepted <- c
		lp.served <- Relay(ctx, c, up, st)
	}()
	cl, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	_ = cl.SetDeadline(time.Now().Add(30 * time.Second))
	up, err := upLn.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Close() })
	_ = up.SetDeadline(time.Now().Add(30 * time.Second))
	lp.cl, lp.up, lp.c = cl, up, <-accepted
	return lp
}

func (lp *loopPair) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-lp.served:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Relay did not return")
		return nil
	}
}
