//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// The load scenarios. Each runs for a bounded time against one address and
// returns what the client saw; the caller reads the server's CPU time
// around it. All traffic stays on loopback.

// loadResult is one scenario run as the client saw it.
type loadResult struct {
	ops     float64 // ping-pongs, connections, or bytes echoed back
	elapsed time.Duration
	lat     []time.Duration // sorted round-trip times (ping-pong only)
}

// dialer spreads client connections over many loopback source addresses,
// so that the TIME_WAIT sockets a connection-rate run leaves behind never
// exhaust one address's ephemeral ports.
type dialer struct{ n atomic.Uint32 }

func (d *dialer) dial(addr string) (*net.TCPConn, error) {
	i := d.n.Add(1)
	local := &net.TCPAddr{IP: net.IPv4(127, 1, byte(i/200%200+1), byte(i%200+1))}
	c, err := (&net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}).Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, ok := ppTargets.Load(addr); ok {
		// As a load balancer would: the header first, in its own write.
		if _, err := proxyproto.HeaderProxyFromAddrs(2, c.LocalAddr(), c.RemoteAddr()).WriteTo(c); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	if _, ok := helloTargets.Load(addr); ok {
		if err := sendHello(c); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	return c.(*net.TCPConn), nil
}

// ppTargets holds the addresses whose clients start each connection with
// a PROXY v2 header (the PROXY protocol figures).
var ppTargets sync.Map

var clients dialer

// throughput streams size-byte writes on conns connections for d while
// reading the echo back, then half-closes and drains. ops is the number of
// bytes echoed back.
func throughput(addr string, conns, size int, d time.Duration) (loadResult, error) {
	cs, err := dialN(addr, conns)
	if err != nil {
		return loadResult{}, err
	}
	return streamEcho(cs, size, d, "throughput", false)
}

// echoConn is a connection streamEcho drives: TCP or TLS.
type echoConn interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// streamEcho writes size-byte blocks on each of cs for d while reading
// the echo back, then half-closes each and drains it, closing it once
// drained. ops is the bytes echoed back. what names the load in errors;
// with lenient, a read error once the writers stopped is none (how a
// server ends its side is then not what is measured).
func streamEcho[C echoConn](cs []C, size int, d time.Duration, what string, lenient bool) (loadResult, error) {
	var total atomic.Int64
	var stop atomic.Bool
	wait := spawn(2*len(cs), func(i int) error {
		c := cs[i/2]
		if i%2 == 0 {
			return writeUntil(c, &stop, size, what)
		}
		defer c.Close()
		n, err := drain(c)
		total.Add(n)
		if err != nil && !(lenient && stop.Load()) {
			return fmt.Errorf("%s read: %w", what, err)
		}
		return nil
	})
	time.Sleep(d)
	stop.Store(true)
	elapsed, err := wait()
	if err != nil {
		return loadResult{}, err
	}
	return loadResult{ops: float64(total.Load()), elapsed: elapsed}, nil
}

// writeUntil writes size-byte blocks on c until stop, then half-closes.
func writeUntil(c echoConn, stop *atomic.Bool, size int, what string) error {
	buf := make([]byte, size)
	var err error
	for !stop.Load() {
		if _, err = c.Write(buf); err != nil {
			err = fmt.Errorf("%s write: %w", what, err)
			break
		}
	}
	_ = c.CloseWrite()
	return err
}

// drain reads c to its end and counts the bytes; io.EOF is no error.
func drain(c io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	for {
		m, err := c.Read(buf)
		n += int64(m)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
	}
}

// spawn runs f(0) … f(n-1), each on a goroutine of its own. wait waits
// for all of them and returns the time since they were started and the
// first error any of them returned.
func spawn(n int, f func(i int) error) (wait func() (time.Duration, error)) {
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			if err := f(i); err != nil {
				errs <- err
			}
		})
	}
	return func() (time.Duration, error) {
		wg.Wait()
		elapsed := time.Since(start)
		close(errs)
		return elapsed, <-errs
	}
}

// pingPong sends one size-byte message at a time on each of conns
// connections and waits for its echo, for d. ops counts round trips.
func pingPong(addr string, conns, size int, d time.Duration) (loadResult, error) {
	cs, err := dialN(addr, conns)
	if err != nil {
		return loadResult{}, err
	}
	lats := make([][]time.Duration, conns)
	end := time.Now().Add(d)
	elapsed, err := spawn(conns, func(i int) error {
		c := cs[i]
		defer c.Close()
		out := make([]byte, size)
		in := make([]byte, size)
		l := make([]time.Duration, 0, 1<<14)
		for {
			t0 := time.Now()
			if t0.After(end) {
				break
			}
			if _, err := c.Write(out); err != nil {
				return fmt.Errorf("ping-pong write: %w", err)
			}
			if _, err := io.ReadFull(c, in); err != nil {
				return fmt.Errorf("ping-pong read: %w", err)
			}
			l = append(l, time.Since(t0))
		}
		lats[i] = l
		return nil
	})()
	if err != nil {
		return loadResult{}, err
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	return loadResult{ops: float64(len(all)), elapsed: elapsed, lat: all}, nil
}

// connRate opens connections from workers goroutines for d: connect, one
// 64-byte round trip, close. ops counts completed connections.
func connRate(addr string, workers int, d time.Duration) (loadResult, error) {
	return connLoop(workers, d, func() func() error {
		msg := make([]byte, 64)
		in := make([]byte, 64)
		return func() error { return oneConn(addr, msg, in) }
	})
}

// connLoop runs workers clients for d, each making connections one after
// another with the function its newClient returns, until d has passed or
// one fails. ops counts connections.
func connLoop(workers int, d time.Duration, newClient func() func() error) (loadResult, error) {
	var total atomic.Int64
	end := time.Now().Add(d)
	elapsed, err := spawn(workers, func(int) error {
		one := newClient()
		for time.Now().Before(end) {
			if err := one(); err != nil {
				return err
			}
			total.Add(1)
		}
		return nil
	})()
	if err != nil {
		return loadResult{}, err
	}
	return loadResult{ops: float64(total.Load()), elapsed: elapsed}, nil
}

func oneConn(addr string, msg, in []byte) error {
	c, err := clients.dial(addr)
	if err != nil {
		return fmt.Errorf("connection rate: %w", err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("connection rate write: %w", err)
	}
	if _, err := io.ReadFull(c, in); err != nil {
		return fmt.Errorf("connection rate read: %w", err)
	}
	return nil
}

// openIdle opens n connections, each after one round trip of msgSize
// bytes, so that the server has read from every one of them and is now
// waiting for more. The caller closes them.
func openIdle(addr string, n, msgSize int) ([]*net.TCPConn, error) {
	cs := make([]*net.TCPConn, n)
	var next atomic.Int64
	_, err := spawn(32, func(int) error {
		msg := make([]byte, msgSize)
		for {
			i := next.Add(1) - 1
			if i >= int64(n) {
				return nil
			}
			c, err := clients.dial(addr)
			if err != nil {
				return fmt.Errorf("idle connection %d: %w", i, err)
			}
			cs[i] = c
			// A server out of descriptors leaves connections in its
			// backlog unanswered: fail, never hang.
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err = c.Write(msg); err == nil {
				_, err = io.ReadFull(c, msg)
			}
			_ = c.SetDeadline(time.Time{})
			if err != nil {
				return fmt.Errorf("idle connection %d: %w", i, err)
			}
		}
	})()
	if err != nil {
		closeAll(cs)
		return nil, err
	}
	return cs, nil
}

func closeAll(cs []*net.TCPConn) {
	for _, c := range cs {
		if c != nil {
			_ = c.Close()
		}
	}
}

func dialN(addr string, n int) ([]*net.TCPConn, error) {
	cs := make([]*net.TCPConn, 0, n)
	for range n {
		c, err := clients.dial(addr)
		if err != nil {
			closeAll(cs)
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// percentile of sorted samples, p in [0,1].
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}
