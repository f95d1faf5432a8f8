package ratelimit

import (
	"errors"
	"math"

	"golang.org/x/time/rate"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/decode"
)

// Validate checks the options on their own; ValidateNetwork checks them
// against the listener's network. Every problem is reported, each naming
// its option.
func (h *Handler) Validate() error {
	var errs []error
	add := func(key, msg string) { errs = append(errs, &decode.FieldError{Key: key, Msg: msg}) }

	checkRate(add, "connections_per_second", h.ConnectionsPerSecond)
	checkRate(add, "packets_per_second", h.PacketsPerSecond)
	if h.ConnectionsPerSecond > 0 && h.PacketsPerSecond > 0 {
		add("packets_per_second", "set connections_per_second (tcp, unix) or packets_per_second (udp), not both")
	}
	checkBurst(add, "burst", h.Burst, h.ConnectionsPerSecond > 0 || h.PacketsPerSecond > 0,
		"connections_per_second or packets_per_second")
	if h.MaxConnections < 0 {
		add("max_connections", "must not be negative (0 or omitted: no limit)")
	}
	if p := h.PerIP; p != nil {
		checkRate(add, "per_ip.connections_per_second", p.ConnectionsPerSecond)
		checkBurst(add, "per_ip.burst", p.Burst, p.ConnectionsPerSecond > 0, "per_ip.connections_per_second")
		if p.MaxConnections < 0 {
			add("per_ip.max_connections", "must not be negative (0 or omitted: no limit)")
		}
		if p.MaxEntries < 0 {
			add("per_ip.max_entries", "must not be negative (0 or omitted: the default, 65536)")
		}
		if p.ConnectionsPerSecond == 0 && p.MaxConnections == 0 {
			add("per_ip", "set connections_per_second or max_connections")
		}
	}
	if h.BurstBytes != nil {
		switch {
		case *h.BurstBytes == 0:
			add("burst_bytes", "must be > 0 (omit it for one second's worth of bytes_per_second)")
		case h.BytesPerSecond == 0:
			add("burst_bytes", "has no effect without bytes_per_second")
		}
	}
	if len(errs) == 0 && !h.limitsAnything() {
		add("", "no limit set: use connections_per_second, max_connections, per_ip, bytes_per_second or packets_per_second")
	}
	return errors.Join(errs...)
}

func checkRate(add func(key, msg string), key string, v float64) {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		add(key, "must be a finite number")
	case v < 0:
		add(key, "must not be negative")
	}
}

// checkBurst refuses an explicit burst of 0 or less, and a burst without
// the rate it belongs to (named by rateKeys).
func checkBurst(add func(key, msg string), key string, burst *int, rateSet bool, rateKeys string) {
	if burst == nil {
		return
	}
	switch {
	case *burst <= 0:
		add(key, "must be > 0 (omit it for one second's worth of "+rateKeys+")")
	case !rateSet:
		add(key, "has no effect without "+rateKeys)
	}
}

func (h *Handler) limitsAnything() bool {
	return h.ConnectionsPerSecond > 0 || h.MaxConnections > 0 || h.PerIP != nil ||
		h.BytesPerSecond > 0 || h.PacketsPerSecond > 0
}

// ValidateNetwork refuses options of the other kind of listener: a UDP
// listener has no connections, and a stream listener no packets.
func (h *Handler) ValidateNetwork(network string) error {
	var errs []error
	add := func(key, msg string) { errs = append(errs, &decode.FieldError{Key: key, Msg: msg}) }
	if !config.IsDatagram(network) {
		if h.PacketsPerSecond > 0 {
			add("packets_per_second", "only applies to udp listeners (on "+network+" use connections_per_second)")
		}
		return errors.Join(errs...)
	}
	streamOnly := []struct {
		key string
		set bool
	}{
		{"connections_per_second", h.ConnectionsPerSecond > 0},
		{"max_connections", h.MaxConnections > 0},
		{"per_ip", h.PerIP != nil},
		{"bytes_per_second", h.BytesPerSecond > 0},
		{"burst_bytes", h.BurstBytes != nil},
	}
	for _, o := range streamOnly {
		if o.set {
			add(o.key, "only applies to stream listeners (tcp, unix); on "+network+" use packets_per_second")
		}
	}
	return errors.Join(errs...)
}

// resolve fills in the defaults of valid options.
func (h *Handler) resolve() limits {
	var l limits
	l.shared.rate = rate.Limit(h.ConnectionsPerSecond)
	l.shared.burst = burstOr(h.Burst, h.ConnectionsPerSecond)
	l.shared.max = int64(h.MaxConnections)
	l.shared.pktRate = rate.Limit(h.PacketsPerSecond)
	l.shared.pktBurst = burstOr(h.Burst, h.PacketsPerSecond)
	if p := h.PerIP; p != nil {
		l.shared.perIP = true
		l.shared.ipRate = rate.Limit(p.ConnectionsPerSecond)
		l.shared.ipBurst = burstOr(p.Burst, p.ConnectionsPerSecond)
		l.shared.ipMax = p.MaxConnections
		l.shared.ipEntries = p.MaxEntries
		if l.shared.ipEntries == 0 {
			l.shared.ipEntries = DefaultMaxEntries
		}
	}
	if h.BytesPerSecond > 0 {
		l.bytesRate = rate.Limit(h.BytesPerSecond)
		burst := h.BytesPerSecond
		if h.BurstBytes != nil {
			burst = *h.BurstBytes
		}
		l.bytesBurst = int(min(burst, math.MaxInt32))
	}
	return l
}

// burstOr is the explicit burst, else one second's worth of r (at least 1):
// a client may open that many connections at once before the rate applies.
func burstOr(burst *int, r float64) int {
	if r == 0 {
		return 0
	}
	if burst != nil {
		return *burst
	}
	return int(max(1, math.Ceil(min(r, math.MaxInt32))))
}
