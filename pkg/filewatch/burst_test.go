package filewatch

import (
	"testing"
	"time"
)

func TestBurstSilentUntilEvent(t *testing.T) {
	b := NewBurst(10*time.Millisecond, time.Second, false)
	defer b.Stop()
	select {
	case <-b.C():
		t.Fatal("fired with no burst pending")
	case <-time.After(100 * time.Millisecond):
	}
	b.Event()
	select {
	case <-b.C():
		b.Fired()
	case <-time.After(5 * time.Second):
		t.Fatal("an event's burst never settled")
	}
}

func TestBurstPendingFiresAfterQuiet(t *testing.T) {
	b := NewBurst(10*time.Millisecond, time.Second, true)
	defer b.Stop()
	select {
	case <-b.C():
	case <-time.After(5 * time.Second):
		t.Fatal("a pending burst never settled")
	}
}

// Events that never pause still fire by most after the first: quiet
// alone would wait for ever.
func TestBurstFiresByMost(t *testing.T) {
	b := NewBurst(time.Hour, 50*time.Millisecond, false)
	defer b.Stop()
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	b.Event()
	for {
		select {
		case <-b.C():
			b.Fired()
			if d := time.Since(start); d < 50*time.Millisecond {
				t.Fatalf("fired after %v, before most (50ms)", d)
			}
			return
		case <-tick.C:
			if time.Since(start) > 10*time.Second {
				t.Fatal("a burst without pause never fired")
			}
			b.Event()
		}
	}
}

func TestBurstAfterRetries(t *testing.T) {
	b := NewBurst(time.Hour, time.Hour, false)
	defer b.Stop()
	b.After(10 * time.Millisecond)
	select {
	case <-b.C():
	case <-time.After(5 * time.Second):
		t.Fatal("After never fired")
	}
}
