// Package logging builds sluice's root hclog logger from the log section
// of the config and applies log changes on reload, level and format alike,
// to the root logger and to every logger derived from it.
package logging

import (
	"io"
	stdlog "log"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/config"
)

// TimeFormat is the timestamp layout of every log line.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// New returns the root logger for cfg, writing to w. Apply later changes
// its level and format, and those of every logger derived from it through
// Named, ResetNamed or With, at once. When w is an Output, the lines it
// had to drop are reported through the logger once it writes again.
func New(cfg config.Log, w io.Writer) hclog.Logger {
	r := &root{opts: hclog.LoggerOptions{
		Name:       "sluice",
		Level:      hclog.LevelFromString(cfg.Level),
		JSONFormat: cfg.Format == "json",
		Output:     w,
		// One lock for every base logger ever built on w, so that a
		// line written in the old format and one in the new never
		// interleave.
		Mutex:           new(sync.Mutex),
		TimeFormat:      TimeFormat,
		Color:           hclog.ColorOff,
		IncludeLocation: false,
	}}
	r.base.Store(&base{Logger: hclog.New(&r.opts), json: r.opts.JSONFormat})
	l := &Logger{root: r}
	if o, ok := w.(*Output); ok {
		o.onLoss(func(n uint64) {
			l.Warn("log lines dropped: the log output took none while they came", "lines", n)
		})
	}
	return l
}

// Apply changes the level and the format of log and of every logger
// derived from it. A logger that New did not make only gets the level.
func Apply(log hclog.Logger, cfg config.Log) {
	if l, ok := log.(*Logger); ok {
		l.root.apply(hclog.LevelFromString(cfg.Level), cfg.Format == "json")
		return
	}
	log.SetLevel(hclog.LevelFromString(cfg.Level))
}

// root is what all loggers of one New share: the hclog logger everything
// is derived from now. A format change replaces it; the level is shared
// by hclog between a logger and its sub-loggers, so SetLevel on the
// current base reaches all of them.
type root struct {
	mu   sync.Mutex // serializes changes of base and level
	opts hclog.LoggerOptions
	base atomic.Pointer[base]
}

// base is one hclog root logger; its pointer identity is the version that
// derived loggers compare against to tell that they are stale.
type base struct {
	hclog.Logger
	json bool
}

func (r *root) apply(level hclog.Level, json bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.base.Load()
	if cur.json == json {
		cur.SetLevel(level)
		return
	}
	opts := r.opts
	opts.Level = level
	opts.JSONFormat = json
	r.base.Store(&base{Logger: hclog.New(&opts), json: json})
}

func (r *root) setLevel(level hclog.Level) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.base.Load().SetLevel(level)
}

// Logger is an hclog.Logger whose format can change under it. A derived
// logger remembers how it was derived (a name, a reset name or implied
// args) and rebuilds its hclog logger from the current base the first
// time it is used after a change; until then each call costs two atomic
// loads more than a plain hclog logger.
type Logger struct {
	root   *root
	parent *Logger // nil for the root logger
	derive func(hclog.Logger) hclog.Logger
	built  atomic.Pointer[built]
}

// built is a derived logger's hclog logger and the base it came from.
type built struct {
	from *base
	log  hclog.Logger
}

var _ hclog.Logger = (*Logger)(nil)

// current returns the hclog logger to write through now.
func (l *Logger) current() hclog.Logger { return l.at(l.root.base.Load()) }

// at returns l's hclog logger derived from b. Two goroutines may rebuild
// at once after a change; both build the same thing and either may win.
func (l *Logger) at(b *base) hclog.Logger {
	if l.parent == nil {
		return b.Logger
	}
	if c := l.built.Load(); c != nil && c.from == b {
		return c.log
	}
	hl := l.derive(l.parent.at(b))
	l.built.Store(&built{from: b, log: hl})
	return hl
}

func (l *Logger) child(derive func(hclog.Logger) hclog.Logger) *Logger {
	return &Logger{root: l.root, parent: l, derive: derive}
}

// Log emits a message at level.
func (l *Logger) Log(level hclog.Level, msg string, args ...any) {
	l.current().Log(level, msg, args...)
}

// Trace emits a message at trace level.
func (l *Logger) Trace(msg string, args ...any) { l.current().Trace(msg, args...) }

// Debug emits a message at debug level.
func (l *Logger) Debug(msg string, args ...any) { l.current().Debug(msg, args...) }

// Info emits a message at info level.
func (l *Logger) Info(msg string, args ...any) { l.current().Info(msg, args...) }

// Warn emits a message at warn level.
func (l *Logger) Warn(msg string, args ...any) { l.current().Warn(msg, args...) }

// Error emits a message at error level.
func (l *Logger) Error(msg string, args ...any) { l.current().Error(msg, args...) }

// IsTrace reports whether trace messages are emitted.
func (l *Logger) IsTrace() bool { return l.current().IsTrace() }

// IsDebug reports whether debug messages are emitted.
func (l *Logger) IsDebug() bool { return l.current().IsDebug() }

// IsInfo reports whether info messages are emitted.
func (l *Logger) IsInfo() bool { return l.current().IsInfo() }

// IsWarn reports whether warn messages are emitted.
func (l *Logger) IsWarn() bool { return l.current().IsWarn() }

// IsError reports whether error messages are emitted.
func (l *Logger) IsError() bool { return l.current().IsError() }

// ImpliedArgs returns the key/value pairs added by With.
func (l *Logger) ImpliedArgs() []any { return l.current().ImpliedArgs() }

// Name returns the logger's name.
func (l *Logger) Name() string { return l.current().Name() }

// With returns a logger that adds args to every message.
func (l *Logger) With(args ...any) hclog.Logger {
	return l.child(func(p hclog.Logger) hclog.Logger { return p.With(args...) })
}

// Named returns a logger whose name has name appended.
func (l *Logger) Named(name string) hclog.Logger {
	return l.child(func(p hclog.Logger) hclog.Logger { return p.Named(name) })
}

// ResetNamed returns a logger named name, whatever l's name.
func (l *Logger) ResetNamed(name string) hclog.Logger {
	return l.child(func(p hclog.Logger) hclog.Logger { return p.ResetNamed(name) })
}

// SetLevel changes the level of every logger of this root, as hclog does
// for sub-loggers that share their parent's level.
func (l *Logger) SetLevel(level hclog.Level) { l.root.setLevel(level) }

// GetLevel returns the current level.
func (l *Logger) GetLevel() hclog.Level { return l.current().GetLevel() }

// StandardLogger returns a standard library logger writing through l.
func (l *Logger) StandardLogger(opts *hclog.StandardLoggerOptions) *stdlog.Logger {
	return stdlog.New(l.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer whose lines are logged through l in the
// format of the moment (an http.Server's ErrorLog, say, follows a change
// of format like every other logger).
func (l *Logger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	if opts == nil {
		opts = &hclog.StandardLoggerOptions{}
	}
	return stdWriter{l: l, opts: opts}
}

type stdWriter struct {
	l    *Logger
	opts *hclog.StandardLoggerOptions
}

func (w stdWriter) Write(p []byte) (int, error) {
	return w.l.current().StandardWriter(w.opts).Write(p)
}
