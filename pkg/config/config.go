// Package config is sluice's typed configuration: loading a file with a
// fresh viper instance each time, applying defaults and SLUICE_*
// environment overrides, and validating everything with errors that name
// the file and the key path.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/sluice-dev/sluice/pkg/listener"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// Defaults, as documented in docs/configuration.md.
const (
	DefaultLogLevel     = "info"
	DefaultLogFormat    = "text"
	DefaultDrainTimeout = 30 * time.Second
)

// Config is one loaded and validated configuration file.
type Config struct {
	Log       Log        `mapstructure:"log" json:"log"`
	Admin     Admin      `mapstructure:"admin" json:"admin"`
	Shutdown  Shutdown   `mapstructure:"shutdown" json:"shutdown"`
	Reload    Reload     `mapstructure:"reload" json:"reload"`
	Listeners []Listener `mapstructure:"listeners" json:"listeners"`

	// Path is the file this config was read from.
	Path string `mapstructure:"-" json:"-"`
	// Hash is the sha256 of the parsed config (after defaults and
	// environment overrides), hex encoded: two files that mean the same
	// thing hash the same, so a reload of an unchanged config does nothing.
	Hash string `mapstructure:"-" json:"-"`
	// LoadedAt is when the file was read.
	LoadedAt time.Time `mapstructure:"-" json:"-"`
}

// Log is the log section.
type Log struct {
	Level  string `mapstructure:"level" json:"level"`
	Format string `mapstructure:"format" json:"format"`
}

// Admin is the admin endpoint section.
type Admin struct {
	Address string `mapstructure:"address" json:"address"`
}

// Shutdown is the shutdown section.
type Shutdown struct {
	DrainTimeout time.Duration `mapstructure:"drain_timeout" json:"drain_timeout"`
}

// Reload is the reload section.
type Reload struct {
	// DrainTimeout bounds how long connections started before a reload
	// keep their old chain (or their removed listener); 0, the default,
	// lets them run until they end, so that a reload never cuts one.
	DrainTimeout time.Duration `mapstructure:"drain_timeout" json:"drain_timeout"`
}

// Listener is one entry of listeners. Its name is its identity across
// reloads.
type Listener struct {
	Name        string        `mapstructure:"name" json:"name"`
	Network     string        `mapstructure:"network" json:"network"`
	Address     string        `mapstructure:"address" json:"address"`
	IdleTimeout time.Duration `mapstructure:"idle_timeout" json:"idle_timeout"`
	// TCPKeepAlive is the keepalive of accepted TCP connections: the
	// first probe after this much silence, then one as often; 0 turns
	// it off, nil means listener.DefaultKeepAlive (see KeepAlive).
	TCPKeepAlive *time.Duration `mapstructure:"tcp_keepalive" json:"tcp_keepalive,omitempty"`
	Socket       Socket         `mapstructure:"socket" json:"socket"`
	Chain        []Handler      `mapstructure:"chain" json:"chain"`
}

// KeepAlive is the listener's tcp_keepalive, its default filled in.
func (l *Listener) KeepAlive() time.Duration {
	if l.TCPKeepAlive == nil {
		return listener.DefaultKeepAlive
	}
	return *l.TCPKeepAlive
}

// Socket holds the Unix socket file options.
type Socket struct {
	// Mode is the octal permission string, e.g. "0660"; "" keeps the
	// default (0666 minus umask).
	Mode string `mapstructure:"mode" json:"mode,omitempty"`
}

// Handler is one chain entry: the handler's name and its options, which
// the handler decodes itself. It is registry.Spec, the one shape of a
// chain entry, so that a chain nested in a handler's options (a route's)
// is read, checked and built as a listener's is.
type Handler = registry.Spec

// IsStream reports whether the listener carries streams (TCP, Unix).
func (l *Listener) IsStream() bool { return !IsDatagram(l.Network) }

// IsDatagram reports whether network is a UDP network.
func IsDatagram(network string) bool {
	return network == "udp" || network == "udp4" || network == "udp6"
}

// SocketKey identifies the socket a listener binds: two listeners with the
// same key conflict, and a reload that keeps a listener's key keeps its
// socket open.
func (l *Listener) SocketKey() string {
	switch l.Network {
	case "tcp", "tcp4", "tcp6":
		return "tcp " + l.Address
	case "udp", "udp4", "udp6":
		return "udp " + l.Address
	}
	return l.Network + " " + l.Address
}

// BindKey identifies the exact socket a listener binds: a reload that
// keeps it (whatever else changes, the name included) keeps the socket.
// Port 0 asks the kernel for any free port, so such listeners never share
// a socket; their key includes the name instead.
func (l *Listener) BindKey() string {
	if l.AnyPort() {
		return l.Network + " " + l.Address + " " + l.Name
	}
	return l.Network + " " + l.Address
}

// AnyPort reports whether the listener asks for a kernel-chosen port.
func (l *Listener) AnyPort() bool {
	if l.Network == "unix" {
		return false
	}
	_, port, err := net.SplitHostPort(l.Address)
	return err == nil && port == "0"
}

// Hash identifies the listener's whole configuration.
func (l *Listener) Hash() string { return hashJSON(l) }

func hashJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Everything in a Config came from YAML, JSON or TOML and should
		// marshal; should it not, a printed form still tells configs apart.
		b = []byte(fmt.Sprintf("%#v", v))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
