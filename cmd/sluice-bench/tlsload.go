//go:build linux

package main

import (
	"crypto/tls"
	"fmt"
	"io"
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
	var resumed atomic.Int64
	r, err := connLoop(workers, d, func() func() error {
		var cache tls.ClientSessionCache
		if resume {
			cache = tls.NewLRUClientSessionCache(4)
		}
		cfg := tlsClientConfig(cache)
		msg, in := make([]byte, 64), make([]byte, 64)
		return func() error {
			did, err := oneTLSConn(addr, cfg, msg, in)
			if err != nil {
				return err
			}
			if did {
				resumed.Add(1)
			}
			return nil
		}
	})
	if err != nil {
		return loadResult{}, err
	}
	n := int64(r.ops)
	if resume && float64(resumed.Load()) < 0.9*float64(n-int64(workers)) {
		return loadResult{}, fmt.Errorf("only %d of %d handshakes resumed a session", resumed.Load(), n)
	}
	return r, nil
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
	// Those made before a failed handshake; streamEcho closes each one
	// it drained, and a second Close is harmless.
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
	return streamEcho(cs, size, d, "tls throughput", true)
}
