//go:build linux

package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// tlsClientConfig is the load generator's: no verification (its cost is
// the client's, not the server's) and X25519 only, the group every
// server picks (Go would prefer the X25519MLKEM768 hybrid, which
// OpenSSL 3.0 lacks, and charge sluice for it alone).
func tlsClientConfig(cache tls.ClientSessionCache) *tls.Config {
	return &tls.Config{
		ServerName:         "bench.test",
		InsecureSkipVerify: true,
		CurvePreferences:   []tls.CurveID{tls.X25519},
		ClientSessionCache: cache,
	}
}

// tlsProbe describes what a handshake with addr negotiates.
func tlsProbe(addr string) (string, error) {
	c, err := clients.dial(addr)
	if err != nil {
		return "", err
	}
	tc := tls.Client(c, tlsClientConfig(nil))
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		return "", err
	}
	st := tc.ConnectionState()
	return fmt.Sprintf("%s, %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID), nil
}

// tlsHandshakes runs workers clients in a loop of connect, handshake,
// one 64-byte round trip, close, for d. With resume, each client keeps a
// session cache, so every handshake but its first resumes a session
// (TLS 1.3 PSK with ECDHE); fewer than 90% of those resumed is an
// error. ops counts connections.
func tlsHandshakes(addr string, workers int, d time.Duration, resume bool) (loadResult, error) {
	var total, resumed atomic.Int64
	stop := time.Now().Add(d)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cache tls.ClientSessionCache
			if resume {
				cache = tls.NewLRUClientSessionCache(4)
			}
			cfg := tlsClientConfig(cache)
			msg, in := make([]byte, 64), make([]byte, 64)
			for time.Now().Before(stop) {
				did, err := oneTLSConn(addr, cfg, msg, in)
				if err != nil {
					errs <- err
					return
				}
				total.Add(1)
				if did {
					resumed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return loadResult{}, err
	}
	n := total.Load()
	if resume && float64(resumed.Load()) < 0.9*float64(n-int64(workers)) {
		return loadResult{}, fmt.Errorf("only %d of %d handshakes resumed a session", resumed.Load(), n)
	}
	return loadResult{ops: float64(n), elapsed: elapsed}, nil
}

// oneTLSConn makes one connection; it reports whether it resumed. The
// round trip also reads the TLS 1.3 session tickets sent after the
// handshake.
func oneTLSConn(addr string, cfg *tls.Config, msg, in []byte) (bool, error) {
	c, err := clients.dial(addr)
	if err != nil {
		return false, err
	}
	tc := tls.Client(c, cfg)
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.Write(msg); err != nil {
		return false, fmt.Errorf("tls write: %w", err)
	}
	if _, err := io.ReadFull(tc, in); err != nil {
		return false, fmt.Errorf("tls read: %w", err)
	}
	return tc.ConnectionState().DidResume, nil
}

// tlsThroughput is throughput over TLS: conns established connections
// each write size-byte blocks for d while reading the echo back, then
// send close_notify and drain. ops is the bytes echoed back.
func tlsThroughput(addr string, conns, size int, d time.Duration) (loadResult, error) {
	cs := make([]*tls.Conn, 0, conns)
	defer func() {
		for _, c := range cs {
			_ = c.Close()
		}
	}()
	for range conns {
		c, err := clients.dial(addr)
		if err != nil {
			return loadResult{}, err
		}
		tc := tls.Client(c, tlsClientConfig(nil))
		_ = tc.SetDeadline(time.Now().Add(d + 30*time.Second))
		if err := tc.Handshake(); err != nil {
			_ = tc.Close()
			return loadResult{}, err
		}
		cs = append(cs, tc)
	}
	var total atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 2*conns)
	start := time.Now()
	for _, c := range cs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, size)
			for !stop.Load() {
				if _, err := c.Write(buf); err != nil {
					errs <- fmt.Errorf("tls throughput write: %w", err)
					break
				}
			}
			_ = c.CloseWrite()
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			var n int64
			for {
				m, err := c.Read(buf)
				n += int64(m)
				if err != nil {
					// Once the writer stopped, how a server ends its
					// side (close_notify or a bare FIN) is not what
					// is measured.
					if !errors.Is(err, io.EOF) && !stop.Load() {
						errs <- fmt.Errorf("tls throughput read: %w", err)
					}
					break
				}
			}
			total.Add(n)
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return loadResult{}, err
	}
	return loadResult{ops: float64(total.Load()), elapsed: elapsed}, nil
}
