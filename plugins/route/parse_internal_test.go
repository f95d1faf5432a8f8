package route

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// clientHello captures the first flight of a Go TLS client offering sni
// and protos.
func clientHello(t testing.TB, sni string, protos ...string) []byte {
	t.Helper()
	return helloWith(t, &tls.Config{ServerName: sni, NextProtos: protos, InsecureSkipVerify: true})
}

// smallHello is clientHello with one classic key share, a few hundred
// bytes.
func smallHello(t testing.TB, sni string, protos ...string) []byte {
	t.Helper()
	return helloWith(t, &tls.Config{ServerName: sni, NextProtos: protos, InsecureSkipVerify: true,
		CurvePreferences: []tls.CurveID{tls.X25519}})
}

func helloWith(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	cli, srv := net.Pipe()
	defer srv.Close()
	go func() {
		c := tls.Client(cli, cfg)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_ = c.Handshake()
		_ = cli.Close()
	}()
	_ = srv.SetDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := readFull(srv, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[3:]))
	if _, err := readFull(srv, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// records re-frames a one-record ClientHello as several records of at
// most size bytes of handshake data each, as a client may send it.
func records(hello []byte, size int) []byte {
	body := hello[5:]
	var out []byte
	for len(body) > 0 {
		k := min(size, len(body))
		out = append(out, 0x16, 3, 1, byte(k>>8), byte(k))
		out = append(out, body[:k]...)
		body = body[k:]
	}
	return out
}

func TestParseHello(t *testing.T) {
	one := clientHello(t, "a.example.com", "h2", "http/1.1")
	for name, b := range map[string][]byte{
		"one record":      one,
		"records of 100":  records(one, 100),
		"records of 1":    records(one, 1),
		"then other data": append(append([]byte{}, one...), "trailing"...),
	} {
		h, v := parseHello(b)
		if v != yes || h.sni != "a.example.com" || len(h.alpn) != 2 || h.alpn[0] != "h2" {
			t.Errorf("%s: %+v %v", name, h, v)
		}
		// Every proper prefix needs more, never a wrong answer.
		for _, n := range []int{0, 1, 5, 6, 40, len(b) / 2} {
			if n >= len(b)-len("trailing") && name == "then other data" {
				continue
			}
			if _, v := parseHello(b[:n]); v != more {
				t.Errorf("%s: prefix of %d bytes: %v, want more", name, n, v)
			}
		}
	}
	for name, b := range map[string]string{
		"ssh":               "SSH-2.0-x\r\n",
		"http":              "GET / HTTP/1.1\r\n",
		"alert":             "\x15\x03\x01\x00\x02\x02\x28",
		"server":            "\x16\x03\x03\x00\x05\x02\x00\x00\x01\x00",
		"garbage handshake": "\x16\x03\x01\x00\x08\x01\x00\x00\x04\xff\xff\xff\xff",
	} {
		if _, v := parseHello([]byte(b)); v != no {
			t.Errorf("%s: %v, want no", name, v)
		}
	}
}

func TestParseHost(t *testing.T) {
	for in, want := range map[string]struct {
		host string
		v    verdict
	}{
		"GET / HTTP/1.1\r\nHost: API.example.com:8080\r\n\r\n":   {"api.example.com", yes},
		"GET / HTTP/1.0\nHost: a.example.com.\n\n":               {"a.example.com", yes},
		"POST /x HTTP/1.1\r\nHost: [::1]:80\r\nX: y\r\n\r\nbody": {"::1", yes},
		"GET / HTTP/1.1\r\nHost: a":                              {"", more},
		"GE":                                                     {"", more},
		"GET / HTTP/2.0\r\n\r\n":                                 {"", no},
		"SSH-2.0-OpenSSH_9.2\r\n":                                {"", no},
		"\x16\x03\x01":                                           {"", no},
		"GET / HTTP/1.1\r\n\r\n":                                 {"", no},
	} {
		h, v := parseHost([]byte(in))
		if h != want.host || v != want.v {
			t.Errorf("%q: %q %v, want %q %v", in, h, v, want.host, want.v)
		}
	}
}

func TestNameMatch(t *testing.T) {
	names := []string{"a.example.com", "*.example.org"}
	for name, want := range map[string]bool{
		"a.example.com": true, "b.example.com": false, "x.example.org": true,
		"example.org": false, "a.b.example.org": false, "": false, ".example.org": false,
	} {
		if got := nameMatch(names, name); got != want {
			t.Errorf("%q: %v, want %v", name, got, want)
		}
	}
}

// FuzzParseHello: no input panics the ClientHello parser, and a hello
// parsed is parsed the same from a longer input.
func FuzzParseHello(f *testing.F) {
	// A hello without a post-quantum key share: the fuzzer slows to a
	// crawl on seeds of kilobytes.
	one := smallHello(f, "a.example.com", "h2")
	f.Add(one)
	f.Add(records(one, 50))
	// Records of one byte each, the shape that once made joining quadratic.
	f.Add(records(one, 1))
	f.Add([]byte("\x16\x03\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, v := parseHello(b)
		if v == yes {
			h2, v2 := parseHello(append(append([]byte{}, b...), 0, 1, 2))
			if v2 != yes || h2.sni != h.sni {
				t.Fatalf("the hello changed with bytes after it: %+v %v", h2, v2)
			}
		}
	})
}

// FuzzParseHost: no input panics the HTTP parsers.
func FuzzParseHost(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\nHost: [::1]:80\n\n"))
	f.Add([]byte("SSH-2.0-x\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseHost(b)
		_ = httpLine(b)
		_ = sshBanner(b)
		_ = tlsRecord(b)
	})
}

// TestParseHelloNoCopy: a hello in one record is read in place, also
// when the client's next bytes follow it in the same peek (as they do
// when it wrote both at once): no allocation but the names it returns.
func TestParseHelloNoCopy(t *testing.T) {
	one := clientHello(t, "app.example.com")
	withData := append(append([]byte{}, one...), make([]byte, 64)...)
	for name, b := range map[string][]byte{"alone": one, "with data after it": withData} {
		if msg, v := handshakeMessage(b); v != yes || &msg[0] != &b[9] {
			t.Errorf("%s: the message was copied (verdict %v)", name, v)
		}
		if n := testing.AllocsPerRun(100, func() { _, _ = parseHello(b) }); n > 1 {
			t.Errorf("%s: %.0f allocations per hello, want at most 1 (the name)", name, n)
		}
	}
	// Two records: joined, in a copy of their own.
	two := records(one, 600)
	msg, v := handshakeMessage(two)
	if v != yes || &msg[0] == &two[9] {
		t.Errorf("two records: verdict %v, joined in place", v)
	}
}
