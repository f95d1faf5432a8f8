package relay

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestYoungWatchdogNoTimer: a relay that ends within armDelay never had
// a timer, and leaves no watchdog waiting; the sweeper then ends.
func TestYoungWatchdogNoTimer(t *testing.T) {
	var ws [100]watchdog
	for i := range ws {
		ws[i].start(5*time.Minute, func() { t.Error("a stopped watchdog expired") })
	}
	for i := range ws {
		ws[i].stop()
		if ws[i].timer != nil {
			t.Fatalf("watchdog %d got a timer within armDelay", i)
		}
	}
	if youngDogs.anyWaiting() {
		t.Fatal("stopped watchdogs still wait for a timer")
	}
	deadline := time.Now().Add(10 * time.Second)
	for youngDogs.sweeping.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper still runs with nothing to arm")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestYoungWatchdogExpiresOnTime: watchdogs armed by the sweeper expire
// at their timeout, counted from their start or their last touch, as an
// armed one does; those stopped meanwhile never do.
func TestYoungWatchdogExpiresOnTime(t *testing.T) {
	const idle = 4 * armDelay
	const n = 40 // over every shard
	start := time.Now()
	var ws [n]watchdog
	var expired [n]atomic.Int64 // nanoseconds after start
	for i := range ws {
		ws[i].start(idle, func() { expired[i].Store(int64(time.Since(start))) })
	}
	for i := 0; i < n; i += 4 {
		ws[i].stop()
	}
	time.Sleep(idle / 2)
	for i := 1; i < n; i += 4 {
		ws[i].touch() // its timeout counts from here
	}
	touched := time.Since(start)
	time.Sleep(idle + touched + idle/2)
	for i := range ws {
		at := time.Duration(expired[i].Load())
		switch {
		case i%4 == 0:
			if at != 0 {
				t.Errorf("stopped watchdog %d expired after %v", i, at)
			}
		case i%4 == 1:
			if at < touched+idle || at > touched+idle+idle/2 {
				t.Errorf("touched watchdog %d expired after %v, want %v after its touch at %v", i, at, idle, touched)
			}
		default:
			if at < idle || at > idle+idle/2 {
				t.Errorf("watchdog %d expired after %v, want %v", i, at, idle)
			}
		}
		ws[i].stop()
		if i%4 != 0 && ws[i].timer == nil {
			t.Errorf("watchdog %d, living past armDelay, has no timer", i)
		}
	}
}
