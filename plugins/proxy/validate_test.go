package proxy_test

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/config"
)

// TestValidation: every bad option is reported with its key path, all of
// them in one run.
func TestValidation(t *testing.T) {
	tests := []struct {
		name    string
		network string
		options string
		want    []string
	}{
		{"no upstreams", "tcp", "", []string{
			"listeners[0].chain[0] (proxy): upstreams: required"}},
		{"bad urls", "tcp", `
        upstreams: ["127.0.0.1:80", "tcp://db", "tcp://h:99999", "unix://rel.sock", "http://x:1", "tcp://h:1/path"]`, []string{
			`upstreams[0]: invalid upstream "127.0.0.1:80"`,
			`upstreams[1]: invalid upstream "tcp://db": want tcp://host:port`,
			`upstreams[2]: invalid upstream "tcp://h:99999": port "99999"`,
			`upstreams[3]: invalid upstream "unix://rel.sock": want unix:///absolute/path or unix:relative/path`,
			`upstreams[4]: invalid upstream "http://x:1": unknown scheme "http"`,
			`upstreams[5]: invalid upstream "tcp://h:1/path"`}},
		{"udp upstream on tcp", "tcp", `
        upstreams: [tcp://127.0.0.1:1, udp://127.0.0.1:53]`, []string{
			`upstreams[1]: "udp://127.0.0.1:53" is a datagram upstream`}},
		{"stream upstream on udp", "udp", `
        upstreams: [udp://127.0.0.1:53, unix:///run/x.sock]`, []string{
			`upstreams[1]: "unix:///run/x.sock" is a stream upstream`}},
		{"options", "tcp", `
        upstreams: [tcp://127.0.0.1:1]
        balance: fastest
        connect_timeout: -1s
        fail_timeout: -2s`, []string{
			`balance: invalid value "fastest" (allowed: round_robin, random, least_conn)`,
			`connect_timeout: must not be negative`,
			`fail_timeout: must not be negative`}},
		{"types", "tcp", `
        upstreams: [tcp://127.0.0.1:1]
        retries: 3`, []string{
			`retries: unknown key (known: balance, connect_timeout, fail_timeout, health_check, send_proxy_protocol, tcp_keepalive, tls, upstreams)`}},
		{"send_proxy_protocol", "tcp", `
        upstreams: [tcp://127.0.0.1:1]
        send_proxy_protocol: v3`, []string{
			`listeners[0].chain[0] (proxy): send_proxy_protocol: invalid value "v3" (allowed: v1, v2)`}},
		{"send_proxy_protocol on udp", "udp", `
        upstreams: [udp://127.0.0.1:53]
        send_proxy_protocol: v2`, []string{
			`listeners[0].chain[0] (proxy): send_proxy_protocol: is for stream listeners (tcp, unix)`}},
		{"health_check interval too short", "tcp", `
        upstreams: [tcp://127.0.0.1:1]
        health_check: {interval: 1ns}`, []string{
			`listeners[0].chain[0] (proxy): health_check.interval: must be at least 100ms (omit it for the default, 2s)`}},
		{"health_check send and expect too long", "tcp", `
        upstreams: [tcp://127.0.0.1:1]
        health_check: {send: "` + strings.Repeat("s", 4097) + `", expect: "` + strings.Repeat("e", 5000) + `"}`, []string{
			`listeners[0].chain[0] (proxy): health_check.send: is 4097 bytes long; at most 4096`,
			`listeners[0].chain[0] (proxy): health_check.expect: is 5000 bytes long; at most 4096`}},
		{"tcp_keepalive past the kernel's limit", "tcp", `
        upstreams: [tcp://127.0.0.1:1]
        tcp_keepalive: 32768s`, []string{
			`listeners[0].chain[0] (proxy): tcp_keepalive: 9h6m8s is too long: the kernel takes at most 9h6m7s (32767s)`}},
		{"bare number", "tcp", `
        upstreams: [tcp://127.0.0.1:1]
        fail_timeout: 5`, []string{
			`fail_timeout: invalid duration 5: add a unit, e.g. 5s`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := `
listeners:
  - name: front
    network: ` + tt.network + `
    address: 127.0.0.1:7000
    chain:
      - handler: proxy` + tt.options + "\n"
			_, err := config.Parse("test.yaml", []byte(yaml))
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestValidMixes: stream listeners take any mix of tcp and unix upstreams.
func TestValidMixes(t *testing.T) {
	yaml := `
listeners:
  - name: front
    network: unix
    address: ./front.sock
    chain:
      - handler: proxy
        upstreams: [tcp://127.0.0.1:1, "unix:///run/a.sock", "unix:rel/b.sock", "tcp://[::1]:2", tcp://localhost:3]
        balance: random
        connect_timeout: 1s
        fail_timeout: 1m
`
	if _, err := config.Parse("test.yaml", []byte(yaml)); err != nil {
		t.Fatal(err)
	}
}

// TestHealthCheckBounds: the shortest interval and the longest send and
// expect are accepted.
func TestHealthCheckBounds(t *testing.T) {
	yaml := `
listeners:
  - name: front
    network: tcp
    address: 127.0.0.1:7000
    chain:
      - handler: proxy
        upstreams: [tcp://127.0.0.1:1]
        health_check: {interval: 100ms, send: "` + strings.Repeat("s", 4096) + `", expect: "` + strings.Repeat("e", 4096) + `"}
`
	if _, err := config.Parse("test.yaml", []byte(yaml)); err != nil {
		t.Fatal(err)
	}
}
