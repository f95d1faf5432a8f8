package route

import (
	"crypto/tls"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// matcher is one route's match in its runtime form.
type matcher struct {
	sni    []string // lower case; "*.x" matches one label before x
	alpn   []string
	hosts  []string // as sni
	proto  string
	remote []netip.Prefix
}

func (m *matcher) empty() bool {
	return len(m.sni) == 0 && len(m.alpn) == 0 && len(m.hosts) == 0 && m.proto == "" && len(m.remote) == 0
}

// needBytes reports whether the matcher looks at the connection's bytes
// (remote alone does not).
func (m *matcher) needBytes() bool {
	return len(m.sni) > 0 || len(m.alpn) > 0 || len(m.hosts) > 0 || m.proto != ""
}

// input is what a connection shows the matchers, and what they learned
// from it so far: each parse runs until it has a final answer, then
// keeps it.
type input struct {
	remote    netip.Addr // invalid on a Unix socket
	tlsState  *tls.ConnectionState
	data      []byte
	final     bool // no more bytes will come: more means no
	helloV    verdict
	hello     hello
	hostV     verdict
	host      string
	triedSeen int // len(data) when the hello was last tried
}

// connState is implemented by a connection an earlier tls middleware
// terminated (a *tls.Conn after its handshake).
type connState interface {
	ConnectionState() tls.ConnectionState
}

func newInput(c net.Conn, remote net.Addr) input {
	var in input
	if a, ok := remote.(*net.TCPAddr); ok {
		in.remote = a.AddrPort().Addr().Unmap()
	}
	if cs, ok := c.(connState); ok {
		st := cs.ConnectionState()
		if st.HandshakeComplete {
			in.tlsState = &st
		}
	}
	return in
}

func (in *input) clientHello() (hello, verdict) {
	if in.helloV == more && len(in.data) > in.triedSeen {
		in.triedSeen = len(in.data)
		in.hello, in.helloV = parseHello(in.data)
	}
	return in.hello, in.helloV
}

func (in *input) httpHost() (string, verdict) {
	if in.hostV == more {
		in.host, in.hostV = parseHost(in.data)
	}
	return in.host, in.hostV
}

// match judges route m on what in shows. Every key set must hold; the
// cheap keys are judged first, so that a no needs no parse.
func (m *matcher) match(in *input) verdict {
	if len(m.remote) > 0 && !m.remoteOK(in.remote) {
		return no
	}
	v := yes
	and := func(w verdict) bool {
		switch w {
		case no:
			v = no
			return false
		case more:
			v = more
		}
		return true
	}
	if m.proto != "" && !and(m.protocol(in)) {
		return no
	}
	if (len(m.sni) > 0 || len(m.alpn) > 0) && !and(m.tls(in)) {
		return no
	}
	if len(m.hosts) > 0 && !and(m.host(in)) {
		return no
	}
	if v == more && in.final {
		return no
	}
	return v
}

func (m *matcher) remoteOK(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range m.remote {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (m *matcher) protocol(in *input) verdict {
	switch m.proto {
	case "tls":
		if in.tlsState != nil {
			return yes
		}
		return tlsRecord(in.data)
	case "http":
		return httpLine(in.data)
	case "ssh":
		return sshBanner(in.data)
	}
	return no
}

// tls judges sni and alpn: on the negotiated values when a tls middleware
// terminated the connection, else on the ClientHello.
func (m *matcher) tls(in *input) verdict {
	var sni string
	var alpn []string
	if in.tlsState != nil {
		sni = in.tlsState.ServerName
		if p := in.tlsState.NegotiatedProtocol; p != "" {
			alpn = []string{p}
		}
	} else {
		h, v := in.clientHello()
		if v != yes {
			return v
		}
		sni, alpn = h.sni, h.alpn
	}
	if len(m.sni) > 0 && !nameMatch(m.sni, strings.ToLower(strings.TrimSuffix(sni, "."))) {
		return no
	}
	if len(m.alpn) > 0 && !slices.ContainsFunc(alpn, func(p string) bool { return slices.Contains(m.alpn, p) }) {
		return no
	}
	return yes
}

func (m *matcher) host(in *input) verdict {
	h, v := in.httpHost()
	if v != yes {
		return v
	}
	if !nameMatch(m.hosts, h) {
		return no
	}
	return yes
}

// nameMatch reports whether name (lower case) is one of names, where
// "*.example.com" stands for any one label before example.com, as in a
// certificate.
func nameMatch(names []string, name string) bool {
	if name == "" {
		return false
	}
	for _, n := range names {
		if n == name {
			return true
		}
		if rest, ok := strings.CutPrefix(n, "*"); ok {
			if i := strings.IndexByte(name, '.'); i > 0 && name[i:] == rest {
				return true
			}
		}
	}
	return false
}
