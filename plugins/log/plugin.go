// Package log is the log handler: a middleware that writes one record per
// connection (UDP: per flow) when it closes, and, with payload: true, the
// data itself at trace level.
//
// The stream side lives in handler.go and payload.go, the datagram side in
// packet.go.
package log

import (
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/decode"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// Name is the handler's name in a chain.
const Name = "log"

func init() {
	registry.Register(Name, func() any { return new(Handler) })
}

// DefaultLevel is the level of the per-connection record when the level
// option is omitted.
const DefaultLevel = "info"

// Handler is the log handler. Its exported fields are its options.
type Handler struct {
	// Level is the level of the per-connection record.
	Level string `mapstructure:"level"`
	// Payload also logs the data read and written, at trace level,
	// PayloadLimit bytes of each read or write at most.
	Payload bool `mapstructure:"payload"`
	// SkipEmpty writes no record for a connection (UDP: flow) that
	// carried no byte either way and ended cleanly or by its peer's close
	// or reset: a load balancer's health check, a port scan. One that a
	// handler refused or that failed otherwise keeps its record.
	SkipEmpty bool `mapstructure:"skip_empty"`

	level hclog.Level
	log   hclog.Logger
}

var (
	_ chain.StreamMiddleware = (*Handler)(nil)
	_ chain.PacketMiddleware = (*Handler)(nil)
	_ chain.Validator        = (*Handler)(nil)
	_ chain.Provisioner      = (*Handler)(nil)
)

// Validate checks the level.
func (h *Handler) Validate() error {
	if h.Level != "" && !slices.Contains(config.LogLevels, h.Level) {
		return &decode.FieldError{Key: "level", Msg: "invalid value \"" + h.Level + "\" (allowed: " + strings.Join(config.LogLevels, ", ") + ")"}
	}
	return nil
}

// Provision fills the default level and keeps the listener's logger, whose
// level follows log.level on every reload.
func (h *Handler) Provision(pc chain.ProvisionContext) error {
	if h.Level == "" {
		h.Level = DefaultLevel
	}
	h.level = hclog.LevelFromString(h.Level) // checked by Validate
	h.log = pc.Logger
	return nil
}
