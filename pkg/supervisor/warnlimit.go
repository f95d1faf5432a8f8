package supervisor

import (
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// warnEvery is the most often one listener warns about a failed
// connection or flow.
const warnEvery = time.Second

// warnLimiter lets one listener's per-connection warnings through at most
// once per warnEvery and counts the ones it held back, which the next
// warning reports as "suppressed": a flood of failing clients (spoofed
// UDP sources, a dead upstream) writes a bounded log, not a line each.
type warnLimiter struct {
	mu   sync.Mutex
	next time.Time
	held int
}

// allow reports whether a warning may be written now, and how many were
// held back since the last one written.
func (w *warnLimiter) allow() (ok bool, held int) {
	if w == nil {
		return true, 0
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Before(w.next) {
		w.held++
		return false, 0
	}
	w.next = now.Add(warnEvery)
	held, w.held = w.held, 0
	return true, held
}

// log writes msg at level on l; a warning goes through the limit, with the
// count of the ones held back since the last as "suppressed".
func (w *warnLimiter) log(l hclog.Logger, level hclog.Level, msg string, args ...any) {
	if level == hclog.Warn {
		ok, held := w.allow()
		if !ok {
			return
		}
		if held > 0 {
			args = append(args, "suppressed", held)
		}
	}
	l.Log(level, msg, args...)
}
