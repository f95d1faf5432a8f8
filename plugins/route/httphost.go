package route

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strings"
)

// maxMethod bounds how long a request line's method may be before the
// bytes are judged not to be HTTP.
const maxMethod = 32

// httpLine tells whether b starts with an HTTP/1.x request line
// ("GET /path HTTP/1.1"): the protocol: http matcher. It answers no at the
// first byte a method cannot have, without waiting for the line's end.
func httpLine(b []byte) verdict {
	sp := bytes.IndexByte(b, ' ')
	method := b
	if sp >= 0 {
		method = b[:sp]
	}
	if len(method) > maxMethod || (sp == 0) {
		return no
	}
	for _, c := range method {
		if !isToken(c) {
			return no
		}
	}
	nl := bytes.IndexByte(b, '\n')
	switch {
	case nl >= 0 && (sp < 0 || sp > nl):
		return no // a line with no space is no request line
	case nl < 0:
		return more
	}
	line := strings.TrimSuffix(string(b[:nl]), "\r")
	parts := strings.Split(line, " ")
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return no
	}
	return yes
}

func isToken(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune("()<>@,;:\\\"/[]?={}", rune(c))
}

// parseHost reads the Host of an HTTP/1.x request from b, with net/http's
// parser, once the header block is complete. The port is dropped and the
// name lower-cased.
func parseHost(b []byte) (string, verdict) {
	if v := httpLine(b); v != yes {
		return "", v
	}
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if end = bytes.Index(b, []byte("\n\n")); end < 0 {
			return "", more
		}
		end += 2
	} else {
		end += 4
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:end])))
	if err != nil || req.Host == "" {
		return "", no
	}
	return normalizeHost(req.Host), yes
}

// normalizeHost drops a port and a trailing dot, and lower-cases.
func normalizeHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimPrefix(strings.TrimSuffix(h, "]"), "[")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// sshBanner tells an SSH client by its first bytes, "SSH-".
func sshBanner(b []byte) verdict {
	const banner = "SSH-"
	n := min(len(b), len(banner))
	if string(b[:n]) != banner[:n] {
		return no
	}
	if n < len(banner) {
		return more
	}
	return yes
}
