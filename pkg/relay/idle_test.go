package relay

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/chain"
)

// queuesSay is a relay's receive queues as a test wants them.
type queuesSay struct {
	waiting atomic.Bool
	asked   atomic.Int32
	// taken, when set, runs at the first question: a reader that takes
	// the waiting bytes just then, touching as it does.
	taken func()
}

func (q *queuesSay) unread() bool {
	if q.asked.Add(1) == 1 && q.taken != nil {
		q.taken()
	}
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
	t.Run("bytes taken while asked", func(t *testing.T) {
		// The queues are empty when asked, but only because a reader
		// took the bytes meanwhile: its touch is progress, and the
		// relay gets a new quiet spell.
		q := &queuesSay{}
		w := &watchdog{queues: q}
		q.taken = w.touch
		expired := make(chan time.Time, 1)
		start := time.Now()
		w.start(idle, func() { expired <- time.Now() })
		defer w.stop()
		select {
		case at := <-expired:
			if d, asked := at.Sub(start), q.asked.Load(); d < 2*idle || asked != 2 {
				t.Errorf("expired after %v having asked %d times, want ≥ %v and twice", d, asked, 2*idle)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the watchdog never expired")
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
			lp := p.pair(t, new(Stats), idle)
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

// lateReader is a source whose reads come back late: after a read that
// gave bytes it sleeps for hold, as a sluice stopped or starved of CPU
// between a read and its write would.
type lateReader struct {
	net.Conn
	hold time.Duration
}

func (h lateReader) Read(p []byte) (int, error) {
	n, err := h.Conn.Read(p)
	if n > 0 {
		time.Sleep(h.hold)
	}
	return n, err
}

// TestCopyHeldUpAfterRead: a Copy held up between a read and its write
// for longer than its deadline had left still writes those bytes and
// goes on: sluice stalled, the peers were not idle.
func TestCopyHeldUpAfterRead(t *testing.T) {
	const idle = 200 * time.Millisecond
	inCl, inSv := testnet.TCPPair(t)
	outCl, outSv := testnet.TCPPair(t)
	c := chain.NewConn(inSv, 1, "t", idle, hclog.NewNullLogger())
	done := make(chan error, 1)
	go func() { done <- Copy(c, outSv, lateReader{inSv, idle + idle/2}, In, nil) }()
	_ = outCl.SetReadDeadline(time.Now().Add(30 * time.Second))
	for _, msg := range []string{"one", "two"} {
		if _, err := inCl.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(outCl, got); err != nil || string(got) != msg {
			t.Fatalf("got %q, %v; want %q (Copy: %v)", got, err, msg, errOf(done))
		}
	}
	_ = inCl.CloseWrite()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Copy = %v, want nil at the client's EOF", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Copy did not end at the client's EOF")
	}
}

// errOf is what done holds, if anything yet.
func errOf(done <-chan error) error {
	select {
	case err := <-done:
		return err
	default:
		return nil
	}
}
