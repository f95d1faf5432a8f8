// Package logging builds sluice's root hclog logger from the log section
// of the config and applies log changes on reload.
package logging

import (
	"io"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/config"
)

// New returns the root logger for cfg, writing to w.
func New(cfg config.Log, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:            "sluice",
		Level:           hclog.LevelFromString(cfg.Level),
		JSONFormat:      cfg.Format == "json",
		Output:          w,
		TimeFormat:      "2006-01-02T15:04:05.000Z07:00",
		Color:           hclog.ColorOff,
		IncludeLocation: false,
	})
}

// Apply changes the level of log and of every logger derived from it.
func Apply(log hclog.Logger, cfg config.Log) {
	log.SetLevel(hclog.LevelFromString(cfg.Level))
}
