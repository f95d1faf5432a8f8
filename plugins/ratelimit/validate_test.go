package ratelimit_test

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/registry"
	"github.com/sluice-dev/sluice/plugins/ratelimit"
)

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name    string
		options map[string]any
		want    []string // each must be in one error; none means valid
	}{
		{"rate and burst", map[string]any{"connections_per_second": 50, "burst": 10}, nil},
		{"fractional rate, default burst", map[string]any{"connections_per_second": 0.5}, nil},
		{"max only", map[string]any{"max_connections": 3}, nil},
		{"per_ip only", map[string]any{"per_ip": map[string]any{"max_connections": 2}}, nil},
		{"bytes with units", map[string]any{"bytes_per_second": "1MB", "burst_bytes": "64KiB"}, nil},
		{"nothing", map[string]any{}, []string{"no limit set"}},
		{"negative rate", map[string]any{"connections_per_second": -1}, []string{"connections_per_second: must not be negative"}},
		{"burst 0 with a rate", map[string]any{"connections_per_second": 5, "burst": 0}, []string{"burst: must be > 0"}},
		{"negative burst", map[string]any{"connections_per_second": 5, "burst": -2}, []string{"burst: must be > 0"}},
		{"burst without a rate", map[string]any{"max_connections": 1, "burst": 5}, []string{"burst: has no effect without"}},
		{"negative max", map[string]any{"max_connections": -1}, []string{"max_connections: must not be negative"}},
		{"empty per_ip", map[string]any{"per_ip": map[string]any{}}, []string{"per_ip: set connections_per_second or max_connections"}},
		{"per_ip burst 0", map[string]any{"per_ip": map[string]any{"connections_per_second": 1, "burst": 0}}, []string{"per_ip.burst: must be > 0"}},
		{"per_ip negatives", map[string]any{"per_ip": map[string]any{"connections_per_second": -1, "max_connections": -1, "max_entries": -1}},
			[]string{"per_ip.connections_per_second: must not be negative", "per_ip.max_connections: must not be negative", "per_ip.max_entries: must not be negative"}},
		{"per_ip unknown key", map[string]any{"per_ip": map[string]any{"max_conns": 1}}, []string{"per_ip.max_conns: unknown key"}},
		{"burst_bytes 0", map[string]any{"bytes_per_second": 100, "burst_bytes": 0}, []string{"burst_bytes: must be > 0"}},
		{"burst_bytes without a rate", map[string]any{"max_connections": 1, "burst_bytes": "1KiB"}, []string{"burst_bytes: has no effect without bytes_per_second"}},
		{"bad byte size", map[string]any{"bytes_per_second": "fast"}, []string{"bytes_per_second", "byte size"}},
		{"negative byte size", map[string]any{"bytes_per_second": -5}, []string{"bytes_per_second", "negative"}},
		{"both kinds of rate", map[string]any{"connections_per_second": 1, "packets_per_second": 1}, []string{"not both"}},
		{"unknown key", map[string]any{"rate": 5}, []string{"rate: unknown key"}},
		{"every problem at once", map[string]any{"connections_per_second": -1, "max_connections": -1},
			[]string{"connections_per_second:", "max_connections:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := registry.New(ratelimit.Name, "tcp", tt.options)
			if len(tt.want) == 0 {
				if len(errs) > 0 {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			all := make([]string, len(errs))
			for i, e := range errs {
				all[i] = e.Error()
			}
			joined := strings.Join(all, "\n")
			for _, w := range tt.want {
				if !strings.Contains(joined, w) {
					t.Errorf("errors %q lack %q", joined, w)
				}
			}
		})
	}
}

func TestByteSizesParse(t *testing.T) {
	h, errs := registry.New(ratelimit.Name, "tcp", map[string]any{"bytes_per_second": "1MB", "burst_bytes": "64KiB"})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	rl := h.(*ratelimit.Handler)
	if rl.BytesPerSecond != 1000000 || *rl.BurstBytes != 64<<10 {
		t.Fatalf("bytes_per_second=%d burst_bytes=%d, want 1000000 and 65536", rl.BytesPerSecond, *rl.BurstBytes)
	}
}

func TestErrorsNameTheirKeyPath(t *testing.T) {
	tests := []struct {
		name, network, options, want string
	}{
		{"burst 0", "tcp", "connections_per_second: 5\n        burst: 0",
			"listeners[0].chain[0] (ratelimit): burst: must be > 0"},
		{"udp option on tcp", "tcp", "packets_per_second: 5",
			"listeners[0].chain[0] (ratelimit): packets_per_second: only applies to udp listeners"},
		{"stream option on udp", "udp", "max_connections: 5",
			"listeners[0].chain[0] (ratelimit): max_connections: only applies to stream listeners"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("test.yaml", []byte(`
listeners:
  - name: x
    network: `+tt.network+`
    address: 127.0.0.1:0
    chain:
      - handler: ratelimit
        `+tt.options+`
      - handler: echo
`))
			if err == nil || !strings.Contains(err.Error(), "test.yaml: "+tt.want) {
				t.Fatalf("got %v\nwant a line with %q", err, tt.want)
			}
		})
	}
}

// TestOptionAndNetworkErrorsTogether: an option error does not hide a
// network mismatch of another option; one `sluice validate` run reports
// both.
func TestOptionAndNetworkErrorsTogether(t *testing.T) {
	_, err := config.Parse("test.yaml", []byte(`
listeners:
  - name: u
    network: udp
    address: 127.0.0.1:0
    chain:
      - handler: ratelimit
        packets_per_second: -1
        max_connections: 5
      - handler: echo
`))
	for _, want := range []string{
		"listeners[0].chain[0] (ratelimit): packets_per_second: must not be negative",
		"listeners[0].chain[0] (ratelimit): max_connections: only applies to stream listeners",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v\nwant a line with %q", err, want)
		}
	}
}

// TestOnUDPOnlyPacketOptionsApply: packets_per_second and burst are
// accepted on a UDP listener (the chain then uses the datagram side), and
// every stream-only option is refused there, each by name.
func TestOnUDPOnlyPacketOptionsApply(t *testing.T) {
	parse := func(options string) error {
		_, err := config.Parse("test.yaml", []byte(`
listeners:
  - name: u
    network: udp
    address: 127.0.0.1:0
    chain:
      - handler: log
      - handler: ratelimit
        `+options+`
      - handler: echo
`))
		return err
	}
	if err := parse("packets_per_second: 10\n        burst: 5"); err != nil {
		t.Fatalf("packets_per_second on udp: %v", err)
	}
	err := parse("packets_per_second: 10\n        connections_per_second: 0\n        max_connections: 1\n" +
		"        per_ip: {max_connections: 1}\n        bytes_per_second: 1KiB\n        burst_bytes: 1KiB")
	for _, key := range []string{"max_connections", "per_ip", "bytes_per_second", "burst_bytes"} {
		want := "listeners[0].chain[1] (ratelimit): " + key + ": only applies to stream listeners"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v\nwant a line with %q", err, want)
		}
	}
}
