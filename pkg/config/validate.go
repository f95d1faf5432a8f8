package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/pkg/listener"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// LogLevels are the levels sluice logs at, lowest first: the values of
// log.level and of the log handler's level option.
var LogLevels = []string{"trace", "debug", "info", "warn", "error"}

var (
	formats  = []string{"text", "json"}
	networks = []string{"tcp", "tcp4", "tcp6", "unix", "udp", "udp4", "udp6"}
	nameRE   = regexp.MustCompile(`^[a-z0-9_-]+$`)
)

// Validate checks a decoded config and returns every problem found, each
// naming its key path. Handler options are checked by building each
// handler through the registry, which binds nothing.
func Validate(cfg *Config) Errors {
	v := &validator{file: cfg.Path}
	v.oneOf("log.level", cfg.Log.Level, LogLevels)
	v.oneOf("log.format", cfg.Log.Format, formats)
	if cfg.Admin.Address != "" {
		if err := checkHostPort(cfg.Admin.Address); err != nil {
			v.add("admin.address", "%v", err)
		}
	}
	if cfg.Shutdown.DrainTimeout < 0 {
		v.add("shutdown.drain_timeout", "must not be negative")
	}
	if cfg.Reload.DrainTimeout < 0 {
		v.add("reload.drain_timeout", "must not be negative")
	}

	names := map[string]int{}
	sockets := map[string]int{}
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		key := fmt.Sprintf("listeners[%d]", i)
		v.listener(key, l)
		if l.Name != "" {
			if j, dup := names[l.Name]; dup {
				v.add(key+".name", "duplicate listener name %q (also listeners[%d])", l.Name, j)
			} else {
				names[l.Name] = i
			}
		}
		if l.Address != "" && !l.AnyPort() {
			sk := l.SocketKey()
			if j, dup := sockets[sk]; dup {
				v.add(key+".address", "duplicate address %q (also listeners[%d])", l.Address, j)
			} else {
				sockets[sk] = i
			}
		}
	}
	return v.errs
}

type validator struct {
	file string
	errs Errors
}

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) oneOf(key, val string, allowed []string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(key, "invalid value %q (allowed: %s)", val, strings.Join(allowed, ", "))
}

func (v *validator) listener(key string, l *Listener) {
	switch {
	case l.Name == "":
		v.add(key+".name", "required")
	case !nameRE.MatchString(l.Name):
		v.add(key+".name", "invalid name %q: use lowercase letters, digits, '-' and '_'", l.Name)
	}
	if l.Network == "" {
		v.add(key+".network", "required (one of: %s)", strings.Join(networks, ", "))
	} else {
		v.oneOf(key+".network", l.Network, networks)
	}
	v.address(key, l)
	if l.IdleTimeout < 0 {
		v.add(key+".idle_timeout", "must not be negative")
	}
	if ka := l.TCPKeepAlive; ka != nil {
		switch {
		case !strings.HasPrefix(l.Network, "tcp"):
			v.add(key+".tcp_keepalive", "only applies to tcp listeners")
		default:
			if msg := listener.CheckKeepAlive(*ka); msg != "" {
				v.add(key+".tcp_keepalive", "%s", msg)
			}
		}
	}
	if l.Socket.Mode != "" {
		if l.Network != "unix" {
			v.add(key+".socket", "only applies to unix listeners")
		} else if m, err := ParseMode(l.Socket.Mode); err != nil {
			v.add(key+".socket.mode", "%v", err)
		} else if m&0o222 == 0 {
			// connect(2) on a Unix socket needs write permission on it.
			v.add(key+".socket.mode", "mode %q lets no one connect: a client needs write permission on the socket, e.g. \"0660\"", l.Socket.Mode)
		}
	}
	v.chain(key, l)
}

func (v *validator) address(key string, l *Listener) {
	if l.Address == "" {
		v.add(key+".address", "required")
		return
	}
	switch {
	case l.Network == "unix":
		if len(l.Address) > listener.MaxUnixPath {
			v.add(key+".address", "socket path is %d bytes long; the kernel accepts at most %d", len(l.Address), listener.MaxUnixPath)
		}
	case strings.HasPrefix(l.Network, "tcp"), strings.HasPrefix(l.Network, "udp"):
		if err := checkHostPort(l.Address); err != nil {
			v.add(key+".address", "%v", err)
		}
	}
}

func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port, e.g. 127.0.0.1:7000", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil {
		if _, lerr := net.LookupPort("tcp", port); lerr != nil {
			return fmt.Errorf("invalid port %q in address %q", port, addr)
		}
	} else if n > 65535 {
		return fmt.Errorf("invalid port %q in address %q", port, addr)
	}
	return nil
}

// ParseMode reads an octal permission string such as "0660".
func ParseMode(s string) (uint32, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("invalid mode %q: want octal permission bits, e.g. \"0660\"", s)
	}
	return uint32(m), nil
}

// chain checks the listener's chain (registry.ValidateChain): every
// handler exists and accepts its options, chains nested in a handler's
// options included, and exactly the last one is terminal.
func (v *validator) chain(key string, l *Listener) {
	network := l.Network
	if !slices.Contains(networks, network) {
		network = "" // reported above; the options are checked on their own
	}
	for _, err := range registry.ValidateChain(network, l.Chain) {
		var pe *registry.PathError
		if errors.As(err, &pe) {
			v.add(key+"."+pe.Key, "%s", pe.Msg)
			continue
		}
		v.add(key+".chain", "%v", err)
	}
}
