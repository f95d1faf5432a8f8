package main

import (
	"context"
	"time"

	"github.com/sluice-dev/sluice/pkg/reload"
)

// background is a goroutine owned by run: stop asks it to end without
// waiting, so that SIGTERM begins the drain at once even while a reload
// is under way; wait gives it a bounded time to end once the drain is
// over. A nil background (a disabled watcher) is already stopped.
type background struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func goBackground(ctx context.Context, body func(ctx context.Context)) *background {
	ctx, cancel := context.WithCancel(ctx)
	b := &background{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		body(ctx)
	}()
	return b
}

func (b *background) stop() {
	if b != nil {
		b.cancel()
	}
}

// wait reports whether the goroutine ended within d.
func (b *background) wait(d time.Duration) bool {
	if b == nil {
		return true
	}
	select {
	case <-b.done:
		return true
	case <-time.After(d):
		return false
	}
}

// signalReloads runs the reloads SIGHUP asks for, one at a time, in a
// goroutine of their own: the signal loop only asks (request never
// blocks), so that no reload, however slow, holds up SIGTERM. SIGHUPs that
// arrive while a reload runs fold into one more reload, which reads the
// file as it is then.
type signalReloads struct {
	*background
	want chan struct{}
}

func startSignalReloads(ctx context.Context, rl *reload.Reloader) *signalReloads {
	s := &signalReloads{want: make(chan struct{}, 1)}
	s.background = goBackground(ctx, func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.want:
				_, _ = rl.Reload(ctx, "signal")
			}
		}
	})
	return s
}

func (s *signalReloads) request() {
	select {
	case s.want <- struct{}{}:
	default: // one is pending already and will read the file as it is then
	}
}
