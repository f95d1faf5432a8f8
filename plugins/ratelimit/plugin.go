// Package ratelimit is the ratelimit handler: a middleware that turns away
// connections over a listener's rate or concurrency limits, overall and per
// source address, slows down the bytes a client sends, and on UDP
// listeners drops the datagrams over a source address's packet rate.
//
// The stream side lives in handler.go (admission) and throttle.go (bytes
// per second), the datagram side in packet.go; both keep their limiter
// state in state.go (shared across reloads) and iptable.go (the bounded
// per-address table).
package ratelimit

import (
	"io"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/sluice-dev/sluice/pkg/bytesize"
	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// Name is the handler's name in a chain.
const Name = "ratelimit"

func init() {
	registry.Register(Name, func() any { return new(Handler) })
}

// Handler is the ratelimit handler. Its exported fields are its options;
// zero means "no limit" for each of them. Burst fields are pointers so that
// an omitted burst (which gets a default) can be told from "burst: 0"
// (which is an error).
type Handler struct {
	// ConnectionsPerSecond and Burst bound new connections on the
	// listener (a token bucket). Burst defaults to one second's worth.
	ConnectionsPerSecond float64 `mapstructure:"connections_per_second"`
	Burst                *int    `mapstructure:"burst"`
	// MaxConnections bounds concurrent connections on the listener.
	MaxConnections int `mapstructure:"max_connections"`
	// PerIP applies limits to each source address.
	PerIP *PerIP `mapstructure:"per_ip"`
	// BytesPerSecond and BurstBytes slow down what each connection reads
	// from its client. BurstBytes defaults to one second's worth.
	BytesPerSecond bytesize.Size  `mapstructure:"bytes_per_second"`
	BurstBytes     *bytesize.Size `mapstructure:"burst_bytes"`
	// PacketsPerSecond (with Burst) bounds the datagrams each source
	// address may send to a UDP listener; the excess is dropped. On a
	// stream listener it is an error.
	PacketsPerSecond float64 `mapstructure:"packets_per_second"`

	// Runtime state, set by Provision and read-only afterwards: the
	// connections of a retiring chain may still use it after Close.
	limits    limits
	shared    *chain.Shared
	key       stateKey
	state     *state
	log       hclog.Logger
	rejected  [numReasons]prometheus.Counter
	closeOnce sync.Once
}

// PerIP holds the limits applied to each source address.
type PerIP struct {
	ConnectionsPerSecond float64 `mapstructure:"connections_per_second"`
	Burst                *int    `mapstructure:"burst"`
	MaxConnections       int     `mapstructure:"max_connections"`
	// MaxEntries caps how many addresses are tracked at once
	// (DefaultMaxEntries when omitted).
	MaxEntries int `mapstructure:"max_entries"`
}

// DefaultMaxEntries is the per-address table's default cap. An entry
// costs about 300 bytes (measured with a rate set), so a full default
// table stays near 18 MiB.
const DefaultMaxEntries = 65536

// limits is the options with defaults filled in: what the runtime uses.
type limits struct {
	shared     sharedLimits
	bytesRate  rate.Limit // 0: reads are not slowed down
	bytesBurst int
}

// sharedLimits is the part of the options that shapes the state shared by
// a listener's connections. It is comparable, and equal values on the same
// listener share one state across reloads (see state.go).
type sharedLimits struct {
	rate      rate.Limit // 0: no listener-wide rate
	burst     int
	max       int64 // 0: no listener-wide cap
	perIP     bool
	ipRate    rate.Limit // 0: no per-address rate
	ipBurst   int
	ipMax     int // 0: no per-address cap
	ipEntries int
	pktRate   rate.Limit // 0: no packets_per_second (stream listeners)
	pktBurst  int
}

var (
	_ chain.StreamMiddleware = (*Handler)(nil)
	_ chain.PacketMiddleware = (*Handler)(nil)
	_ chain.Validator        = (*Handler)(nil)
	_ chain.NetworkValidator = (*Handler)(nil)
	_ chain.Provisioner      = (*Handler)(nil)
	_ io.Closer              = (*Handler)(nil)
)
