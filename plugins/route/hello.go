package route

import (
	"golang.org/x/crypto/cryptobyte"
)

// verdict is what a matcher can tell from the bytes seen so far.
type verdict uint8

const (
	more verdict = iota // not yet: it needs more bytes
	no
	yes
)

// hello is what a TLS ClientHello says: the server name and the
// protocols offered.
type hello struct {
	sni  string
	alpn []string
}

// TLS constants (RFC 8446, RFC 6066, RFC 7301).
const (
	recordHandshake   = 22
	typeClientHello   = 1
	extServerName     = 0
	extALPN           = 16
	sniHostName       = 0
	maxHandshakeBytes = 1 << 16 // as Go's TLS stack bounds a handshake message
)

// parseHello reads a ClientHello's server name and ALPN from the first
// bytes of a connection. The handshake message may be split over several
// records (and the records over segments): the fragments are joined
// first. more: b is a TLS handshake's start that ends before the hello
// does; no: it is not a ClientHello. The hello's fields are read with
// cryptobyte, as Go's own TLS stack reads them.
func parseHello(b []byte) (hello, verdict) {
	if v := tlsRecord(b); v != yes {
		return hello{}, v
	}
	msg, v := handshakeMessage(b)
	if v != yes {
		return hello{}, v
	}
	h, ok := parseClientHello(msg)
	if !ok {
		return hello{}, no
	}
	return h, yes
}

// tlsRecord tells a TLS handshake record carrying a ClientHello apart
// from anything else by its first six bytes: content type 22, version
// 3.x, and handshake type 1. It is also the protocol: tls matcher.
func tlsRecord(b []byte) verdict {
	for i, ok := range [...]func(byte) bool{
		func(c byte) bool { return c == recordHandshake },
		func(c byte) bool { return c == 3 },
		func(c byte) bool { return c <= 4 },
		func(byte) bool { return true }, // the record's length
		func(byte) bool { return true },
		func(c byte) bool { return c == typeClientHello },
	} {
		if i >= len(b) {
			return more
		}
		if !ok(b[i]) {
			return no
		}
	}
	return yes
}

// handshakeMessage joins the handshake records at the start of b until
// the first handshake message is complete, and returns its body.
func handshakeMessage(b []byte) ([]byte, verdict) {
	var msg []byte
	need := -1 // the message's full length, header included, once known
	for {
		if len(b) < 5 {
			return nil, more
		}
		if b[0] != recordHandshake || b[1] != 3 {
			return nil, no
		}
		n := int(b[3])<<8 | int(b[4])
		if n == 0 {
			return nil, no
		}
		frag := b[5:]
		complete := len(frag) >= n
		if complete {
			frag = frag[:n]
		} else if msg == nil {
			return nil, more // the first record is still arriving
		}
		if msg == nil && len(frag) >= 4 {
			// The common case: the first record holds the whole
			// message, whatever follows it. No copy.
			if end := 4 + (int(frag[1])<<16 | int(frag[2])<<8 | int(frag[3])); end <= len(frag) {
				return frag[4:end], yes
			}
		}
		switch {
		case msg == nil:
			// A copy, never b itself, which is the caller's.
			msg = append([]byte(nil), frag...)
		default:
			// msg is ours: grow it in place. Copying it for each record
			// made a hello in many tiny records quadratic (a 64 KiB
			// message in 1-byte records cost seconds of CPU per look).
			msg = append(msg, frag...)
		}
		if need < 0 && len(msg) >= 4 {
			need = 4 + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
			if need > maxHandshakeBytes {
				return nil, no
			}
		}
		if need >= 0 && len(msg) >= need {
			return msg[4:need], yes
		}
		if !complete {
			return nil, more
		}
		b = b[5+n:]
	}
}

// parseClientHello reads the extensions of a ClientHello body.
func parseClientHello(body []byte) (hello, bool) {
	var h hello
	s := cryptobyte.String(body)
	var random, sessionID, suites, compression cryptobyte.String
	if !s.Skip(2) || // legacy_version
		!s.ReadBytes((*[]byte)(&random), 32) ||
		!s.ReadUint8LengthPrefixed(&sessionID) ||
		!s.ReadUint16LengthPrefixed(&suites) ||
		!s.ReadUint8LengthPrefixed(&compression) {
		return h, false
	}
	if s.Empty() {
		return h, true // no extensions: an old client, no name
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return h, false
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return h, false
		}
		switch typ {
		case extServerName:
			var names cryptobyte.String
			if !data.ReadUint16LengthPrefixed(&names) || !data.Empty() {
				return h, false
			}
			for !names.Empty() {
				var kind uint8
				var name cryptobyte.String
				if !names.ReadUint8(&kind) || !names.ReadUint16LengthPrefixed(&name) {
					return h, false
				}
				if kind == sniHostName && h.sni == "" {
					h.sni = string(name)
				}
			}
		case extALPN:
			var protos cryptobyte.String
			if !data.ReadUint16LengthPrefixed(&protos) || !data.Empty() {
				return h, false
			}
			for !protos.Empty() {
				var p cryptobyte.String
				if !protos.ReadUint8LengthPrefixed(&p) || len(p) == 0 {
					return h, false
				}
				h.alpn = append(h.alpn, string(p))
			}
		}
	}
	return h, true
}
