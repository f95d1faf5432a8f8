package listener

import (
	"errors"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Backoff bounds for accept errors: the first retry waits MinBackoff, each
// further one twice as long up to MaxBackoff, and a success resets it.
// Running out of file descriptors must slow the loop down, not spin it.
const (
	MinBackoff = 5 * time.Millisecond
	MaxBackoff = time.Second
)

// Accept runs ln's accept loop until ln is closed, handing each connection
// to handle (which must not block: it starts the connection's goroutine).
// It returns nil when ln was closed and never returns on other errors.
func Accept(ln net.Listener, log hclog.Logger, handle func(net.Conn)) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			delay = nextBackoff(delay)
			log.Warn("accept failed; retrying", "error", err, "backoff", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		handle(c)
	}
}

func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return MinBackoff
	}
	d *= 2
	if d > MaxBackoff {
		d = MaxBackoff
	}
	return d
}
