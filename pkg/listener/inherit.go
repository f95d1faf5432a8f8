package listener

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/activation"
)

// Sockets handed over by systemd socket activation, by name
// (FileDescriptorName= in the .socket unit). They are process-wide state
// by nature: systemd passes them once, at exec.
//
// The files are kept open for the life of the process and a listener
// made from one gets its own duplicate descriptor. Closing that listener
// (a reload removed it, or shutdown) therefore never closes the socket
// itself, which systemd holds too, and a later reload that adds the
// listener back serves the same socket again. An inherited Unix socket
// is never unlinked: its file belongs to the .socket unit.
var inherited struct {
	mu    sync.Mutex
	files map[string][]*os.File
}

// InheritSystemd takes the sockets systemd passed ($LISTEN_FDS and
// $LISTEN_FDNAMES, for this $LISTEN_PID) and returns their names. From
// then on ListenStream and ListenPacket use the socket named like the
// Spec instead of binding one. The variables are unset, so that a second
// call takes nothing and no child process would see them.
func InheritSystemd() []string {
	return Inherit(activation.Files(true))
}

// Inherit makes files (already open sockets, named by their Name) the
// inherited sockets; InheritSystemd is the usual way to call it.
func Inherit(files []*os.File) []string {
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	if inherited.files == nil {
		inherited.files = make(map[string][]*os.File)
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		inherited.files[f.Name()] = append(inherited.files[f.Name()], f)
		names = append(names, f.Name())
	}
	return names
}

// inheritedListener returns a listener on the inherited socket for s, or
// nil when none is named s.Name. A socket of that name that is not the
// one s describes is an error rather than a reason to bind another: the
// .socket unit and the config disagree, and serving both would hide it.
// systemd names every socket of one unit alike, so a name may hold
// several sockets; the one on s's address is taken.
func inheritedListener(s Spec) (net.Listener, error) {
	files := inheritedFiles(s.Name)
	if len(files) == 0 {
		return nil, nil
	}
	var found []string
	for _, f := range files {
		ln, err := net.FileListener(f) // a duplicate descriptor; f stays open
		if err != nil {
			found = append(found, "a non-stream socket")
			continue
		}
		if sameAddr(s, ln.Addr()) {
			return ln, nil
		}
		found = append(found, ln.Addr().Network()+" "+ln.Addr().String())
		_ = ln.Close()
	}
	return nil, mismatch(s, found)
}

// inheritedPacketConn is inheritedListener for datagram sockets.
func inheritedPacketConn(s Spec) (net.PacketConn, error) {
	files := inheritedFiles(s.Name)
	if len(files) == 0 {
		return nil, nil
	}
	var found []string
	for _, f := range files {
		pc, err := net.FilePacketConn(f)
		if err != nil {
			found = append(found, "a non-datagram socket")
			continue
		}
		if sameAddr(s, pc.LocalAddr()) {
			return pc, nil
		}
		found = append(found, pc.LocalAddr().Network()+" "+pc.LocalAddr().String())
		_ = pc.Close()
	}
	return nil, mismatch(s, found)
}

func inheritedFiles(name string) []*os.File {
	if name == "" {
		return nil
	}
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	return inherited.files[name]
}

func mismatch(s Spec, found []string) error {
	return fmt.Errorf("listen %s %s: %w: systemd passed %q on %s (the .socket unit's address and the listener's must agree)",
		s.Network, s.Address, ErrInheritedMismatch, s.Name, strings.Join(found, ", "))
}

// ErrInheritedMismatch means a socket systemd passed under the
// listener's name is not on the listener's network and address.
var ErrInheritedMismatch = errors.New("inherited socket does not match the config")

// sameAddr reports whether a, an inherited socket's address, is what s
// asks for. Port 0 in s matches any port; an unspecified IP (0.0.0.0, ::,
// or none) matches an unspecified one of either family, since systemd
// binds ListenStream=7000 as dual-stack [::]:7000.
func sameAddr(s Spec, a net.Addr) bool {
	switch got := a.(type) {
	case *net.UnixAddr:
		if s.Network != "unix" || got.Net != "unix" { // not unixgram, unixpacket
			return false
		}
		want := s.Address
		if !strings.HasPrefix(want, "@") { // abstract sockets have no path
			if abs, err := filepath.Abs(want); err == nil {
				want = abs
			}
		}
		return got.Name == want
	case *net.TCPAddr:
		if !slices.Contains([]string{"tcp", "tcp4", "tcp6"}, s.Network) {
			return false
		}
		want, err := net.ResolveTCPAddr(s.Network, s.Address)
		return err == nil && sameIPPort(want.IP, want.Port, got.IP, got.Port)
	case *net.UDPAddr:
		if !slices.Contains([]string{"udp", "udp4", "udp6"}, s.Network) {
			return false
		}
		want, err := net.ResolveUDPAddr(s.Network, s.Address)
		return err == nil && sameIPPort(want.IP, want.Port, got.IP, got.Port)
	}
	return false
}

func sameIPPort(wantIP net.IP, wantPort int, ip net.IP, port int) bool {
	if wantPort != 0 && wantPort != port {
		return false
	}
	if wantIP == nil || wantIP.IsUnspecified() {
		return ip == nil || ip.IsUnspecified()
	}
	return wantIP.Equal(ip)
}
