package filewatch

import "time"

// Burst times the callback of a burst of events: it fires once the
// events have been quiet for quiet, but never later than most after the
// first one, so that a file written without pause is still seen. Its
// owner selects on C and calls Fired when it receives from it.
type Burst struct {
	quiet, most time.Duration
	timer       *time.Timer
	first       time.Time // of the pending burst; zero: none pending
}

// NewBurst returns a Burst. When pending, a burst is under way already
// (changes made before the watch began) and C fires after quiet unless
// more events come; otherwise C stays silent until the first Event.
func NewBurst(quiet, most time.Duration, pending bool) *Burst {
	b := &Burst{quiet: quiet, most: most, timer: time.NewTimer(quiet)}
	if pending {
		b.first = time.Now()
	} else {
		b.timer.Stop()
	}
	return b
}

// C fires when the pending burst has settled.
func (b *Burst) C() <-chan time.Time { return b.timer.C }

// Event notes one event of a burst, starting one when none is pending.
func (b *Burst) Event() {
	now := time.Now()
	if b.first.IsZero() {
		b.first = now
	}
	b.timer.Reset(min(b.quiet, b.first.Add(b.most).Sub(now)))
}

// Fired ends the pending burst; the owner calls it on receiving from C.
func (b *Burst) Fired() { b.first = time.Time{} }

// After fires C once more after d, with no burst pending: a retry.
func (b *Burst) After(d time.Duration) { b.timer.Reset(d) }

// Stop releases the timer.
func (b *Burst) Stop() { b.timer.Stop() }
