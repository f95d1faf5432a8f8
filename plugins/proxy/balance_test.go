package proxy_test

import (
	"io"
	"net"
	"testing"
	"time"
)

// tagServer answers each connection with its name and closes.
func tagServer(t *testing.T, name string) *server {
	return serve(t, listenTCP(t), func(c net.Conn) {
		_, _ = io.WriteString(c, name)
	})
}

func TestBalance(t *testing.T) {
	for _, balance := range []string{"round_robin", "random"} {
		t.Run(balance, func(t *testing.T) {
			names := []string{"a", "b", "c"}
			var urls []string
			for _, n := range names {
				urls = append(urls, "tcp://"+tagServer(t, n).ln.Addr().String())
			}
			h := newHarness(t)
			h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(urls...)+"        balance: "+balance+"\n"))
			conns := 60
			counts := map[string]int{}
			var order []string
			for range conns {
				tag := roundTrip(t, "tcp", h.Addr("front"), "")
				counts[tag]++
				order = append(order, tag)
			}
			switch balance {
			case "round_robin":
				for i := 3; i < len(order); i++ {
					if order[i] != order[i-3] {
						t.Fatalf("not in turn: %v", order)
					}
				}
				for _, n := range names {
					if counts[n] != conns/3 {
						t.Fatalf("counts %v, want %d each", counts, conns/3)
					}
				}
			case "random":
				// 60 draws from 3: missing one has odds of 1e-10.
				for _, n := range names {
					if counts[n] == 0 {
						t.Fatalf("upstream %s never picked: %v", n, counts)
					}
				}
			}
		})
	}
}

// TestLeastConn holds connections open and checks that a new one goes to
// the upstream with the fewest.
func TestLeastConn(t *testing.T) {
	hold := func(name string) *server {
		return serve(t, listenTCP(t), func(c net.Conn) {
			_, _ = io.WriteString(c, name)
			_, _ = io.Copy(io.Discard, c) // until the client's EOF
		})
	}
	a, b := hold("a"), hold("b")
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://"+a.ln.Addr().String(), "tcp://"+b.ln.Addr().String())+"        balance: least_conn\n"))

	open := func() (net.Conn, string) {
		c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var tag [1]byte
		if _, err := io.ReadFull(c, tag[:]); err != nil {
			t.Fatal(err)
		}
		return c, string(tag[:])
	}
	c1, t1 := open()
	_, t2 := open()
	if t1 == t2 {
		t.Fatalf("two connections on %s while the other upstream had none", t1)
	}
	_, t3 := open() // one each: either
	if _, t4 := open(); t4 == t3 {
		t.Fatalf("connection went to %s, which had two; the other had one", t4)
	}
	// Two each. Closing c1 leaves its upstream with the fewest.
	closeWrite(c1)
	_, _ = io.Copy(io.Discard, c1)
	eventually(t, "the first connection to end", func() bool { return h.active("front") == 3 })
	if _, t5 := open(); t5 != t1 {
		t.Fatalf("connection went to %s; %s had fewer", t5, t1)
	}
}
