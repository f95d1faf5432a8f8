package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testcert"
	"github.com/sluice-dev/sluice/internal/testnet"
)

// stallConfig: a proxy and an echo listener, each with a 1s idle timeout.
const stallConfig = `shutdown: {drain_timeout: 1s}
listeners:
  - name: proxy
    network: tcp
    address: 127.0.0.1:0
    idle_timeout: 1s
    chain:
      - handler: proxy
        upstreams: [tcp://%s]
  - name: echo
    network: tcp
    address: 127.0.0.1:0
    idle_timeout: 1s
    chain:
      - handler: echo
  - name: tls-echo
    network: tcp
    address: 127.0.0.1:0
    idle_timeout: 1s
    chain:
      - handler: tls
        certificates: [{cert: %s, key: %s}]
      - handler: echo
`

// talker is a connection that keeps talking: every tick it writes a byte
// (when write is set) and it counts what it reads, until the peer ends
// it or the test does.
type talker struct {
	c     net.Conn
	got   atomic.Int64
	ended chan error // what ended the reads
}

func talk(t *testing.T, c net.Conn, write bool, tick time.Duration) *talker {
	t.Helper()
	tk := &talker{c: c, ended: make(chan error, 1)}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = c.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 512)
		for {
			n, err := c.Read(buf)
			tk.got.Add(int64(n))
			if err != nil {
				tk.ended <- err
				return
			}
		}
	}()
	if write {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := c.Write([]byte{'.'}); err != nil {
					return
				}
				time.Sleep(tick)
			}
		}()
	}
	return tk
}

// TestStoppedProcessKeepsTalkingConnections: sluice stopped (SIGSTOP) for
// twice the idle timeout while its peers keep talking, then continued
// (SIGCONT), keeps those connections: the peers were never idle, sluice
// was held up. The idle timeout's timers fire first thing on resume, before
// sluice read what came meanwhile; it must look at the receive queues
// before it calls a connection idle. The same holds for a machine that
// pauses or starves sluice of CPU. Both ways of relaying are checked: the
// event loop, and goroutines only.
func TestStoppedProcessKeepsTalkingConnections(t *testing.T) {
	for _, loop := range []string{"on", "off"} {
		t.Run("event_loop="+loop, func(t *testing.T) {
			// The upstream talks on every connection: a byte every
			// 50ms until the connection ends.
			upAddr := testnet.Serve(t, testnet.Listen(t, "tcp"), func(c net.Conn) {
				go func() { _, _ = io.Copy(io.Discard, c) }() // ends when Serve closes c
				for {
					if _, err := c.Write([]byte{'.'}); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			})

			dir := t.TempDir()
			ca := testcert.NewCA(t, "root")
			cert, key := ca.Issue(t, testcert.Options{Names: []string{"stall.test"}}).Write(t, dir, "stall")
			path := writeConfig(t, dir, fmt.Sprintf(stallConfig, upAddr, cert, key))
			p := startSluice(t, path, "SLUICE_RELAY_EVENT_LOOP="+loop)
			// A stopped process ignores SIGTERM and SIGKILL is queued
			// behind it: continue it whatever happens below.
			t.Cleanup(func() { _ = p.cmd.Process.Signal(syscall.SIGCONT) })

			// The proxy's client only listens: its upstream talks. The
			// echo's client talks and hears itself.
			viaProxy := talk(t, dialT(t, "tcp", p.addr("proxy")), false, 0)
			viaEcho := talk(t, dialT(t, "tcp", p.addr("echo")), true, 50*time.Millisecond)
			// Behind tls the socket is under a wrapper.
			tc := tls.Client(dialT(t, "tcp", p.addr("tls-echo")), &tls.Config{ServerName: "stall.test", RootCAs: ca.Pool()})
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			viaTLS := talk(t, tc, true, 50*time.Millisecond)
			// A second of traffic: the proxied pair is on the event loop
			// by then, when it is on.
			time.Sleep(time.Second)
			p.signal(syscall.SIGSTOP)
			time.Sleep(2 * time.Second)
			p.signal(syscall.SIGCONT)
			afterProxy, afterEcho, afterTLS := viaProxy.got.Load(), viaEcho.got.Load(), viaTLS.got.Load()
			time.Sleep(1500 * time.Millisecond)

			for name, tk := range map[string]*talker{"proxy": viaProxy, "echo": viaEcho, "tls-echo": viaTLS} {
				select {
				case err := <-tk.ended:
					if err == io.EOF {
						err = fmt.Errorf("EOF")
					}
					t.Errorf("%s: connection ended after the stop (%v, %d bytes); log:\n%s", name, err, tk.got.Load(), p.output())
				default:
				}
			}
			// Still moving after the stop: 1.5s at 20 bytes a second.
			if n := viaProxy.got.Load() - afterProxy; n < 10 {
				t.Errorf("proxy: %d bytes in the 1.5s after SIGCONT", n)
			}
			if n := viaEcho.got.Load() - afterEcho; n < 10 {
				t.Errorf("echo: %d bytes in the 1.5s after SIGCONT", n)
			}
			if n := viaTLS.got.Load() - afterTLS; n < 10 {
				t.Errorf("tls-echo: %d bytes in the 1.5s after SIGCONT", n)
			}
			if out := p.output(); strings.Contains(out, "idle timeout") {
				t.Errorf("an idle timeout was logged:\n%s", out)
			}
			p.terminate()
		})
	}
}
