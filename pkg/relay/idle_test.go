package relay

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/chain"
)

// queuesSay is a relay's receive queues as a test wants them.
type queuesSay struct {
	waiting atomic.Bool
	asked   atomic.Int32
}

func (q *queuesSay) unread() bool {
	q.asked.Add(1)
	return q.waiting.Load()
}

// TestWatchdogGrace: a watchdog whose time is up while bytes wait unread
// gives the relay a quarter of the timeout more, once per quiet spell;
// with nothing waiting it expires on time; progress after a grace earns
// a new one.
func TestWatchdogGrace(t *testing.T) {
	const idle = 200 * time.Millisecond
	run := func(t *testing.T, waiting bool, touchAt time.Duration) (time.Duration, int32) {
		t.Helper()
		q := &queuesSay{}
		q.waiting.Store(waiting)
		expired := make(chan time.Time, 1)
		w := &watchdog{queues: q}
		start := time.Now()
		w.start(idle, func() { expired <- time.Now() })
		defer w.stop()
		if touchAt > 0 {
			time.Sleep(touchAt)
			w.touch()
		}
		select {
		case at := <-expired:
			return at.Sub(start), q.asked.Load()
		case <-time.After(10 * time.Second):
			t.Fatal("the watchdog never expired")
			return 0, 0
		}
	}
	t.Run("nothing waiting", func(t *testing.T) {
		d, asked := run(t, false, 0)
		if d < idle || asked != 1 {
			t.Errorf("expired after %v having asked %d times, want ≥ %v and once", d, asked, idle)
		}
	})
	t.Run("bytes waiting", func(t *testing.T) {
		d, asked := run(t, true, 0)
		if d < idle+idle/4 || asked != 1 {
			t.Errorf("expired after %v having asked %d times, want ≥ %v and once", d, asked, idle+idle/4)
		}
	})
	t.Run("progress after the grace", func(t *testing.T) {
		// The touch at 1.1× lands in the grace: a new quiet spell, with
		// a grace of its own.
		d, asked := run(t, true, idle+idle/10)
		if want := idle + idle/10 + idle + idle/4; d < want || asked != 2 {
			t.Errorf("expired after %v having asked %d times, want ≥ %v and twice", d, asked, want)
		}
	})
}

// TestRelayIdleTimeoutStuck: bytes that wait unread because their
// destination takes nothing do not keep a relay alive: the upstream
// never reads, the client fills every buffer on the way, and the idle
// timeout still ends the pair, at most a grace later.
func TestRelayIdleTimeoutStuck(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			setNoLoop(t, p.noLoop)
			setHopAfter(t, p.hop)
			lp := startPair(t, context.Background(), new(Stats), testnet.Listen(t, "tcp"), idle, 1, p.wrap)
			// Small messages first, for the hop; then fill until a
			// write would wait.
			for range 4 {
				if _, err := lp.cl.Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			// The relay may end while the client still fills its own
			// buffers: the relay stopped moving bytes long before.
			block := make([]byte, 64<<10)
			for {
				_ = lp.cl.SetWriteDeadline(time.Now().Add(idle / 2))
				if _, err := lp.cl.Write(block); err != nil {
					break
				}
			}
			quiet := time.Now()
			err := lp.wait(t)
			if !errors.Is(err, chain.ErrIdleTimeout) {
				t.Fatalf("Relay = %v, want the idle timeout", err)
			}
			// The last byte moved at most idle/2 before quiet: the end
			// is due by 1.25× idle after it, plus scheduling.
			if d := time.Since(quiet); d > 10*idle {
				t.Errorf("ended %v after the client's last write", d)
			}
		})
	}
}
