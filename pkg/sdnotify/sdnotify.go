// Package sdnotify tells systemd what sluice is doing (sd_notify(3)), so
// that a Type=notify unit is "active" only once every listener is bound,
// "reloading" while a config is applied, and "deactivating" while it
// drains. Without $NOTIFY_SOCKET (sluice not started by systemd) every
// call does nothing.
package sdnotify

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/hashicorp/go-hclog"
)

// Notifier sends the notifications. Its zero value is not usable: make it
// with New.
type Notifier struct {
	log hclog.Logger
	// stopping is set by Stopping: a reload that ends during the drain
	// (reloads run beside the signal loop) must not say READY=1 again.
	stopping atomic.Bool
}

// New returns a Notifier that logs, at warn, a notification that could
// not be sent: systemd would then time the unit out, and the log is where
// an operator finds out why.
func New(log hclog.Logger) *Notifier {
	return &Notifier{log: log}
}

// Ready says that startup (or a reload) finished; status is a line for
// `systemctl status`.
func (n *Notifier) Ready(status string) {
	n.send(daemon.SdNotifyReady + "\n" + statusLine(status))
}

// Reloading says that a reload began. MONOTONIC_USEC lets systemd (since
// v253) tell this reload from an earlier one; older versions ignore it.
func (n *Notifier) Reloading() {
	n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// Stopping says that shutdown began: systemd shows the unit as
// deactivating while open connections drain.
func (n *Notifier) Stopping(status string) {
	n.stopping.Store(true)
	n.send(daemon.SdNotifyStopping + "\n" + statusLine(status))
}

// ReloadBegin and ReloadEnd make a Notifier a reload.Hook, so that every
// trigger (SIGHUP, the file watcher, the admin endpoint) is reported the
// same way. A failed reload keeps the running config, so the service is
// ready again either way; the status line says how it went.
func (n *Notifier) ReloadBegin(string) {
	if !n.stopping.Load() {
		n.Reloading()
	}
}

// ReloadEnd: see ReloadBegin.
func (n *Notifier) ReloadEnd(trigger string, err error) {
	if n.stopping.Load() {
		return
	}
	if err != nil {
		n.Ready("config reload failed (" + trigger + "); the previous config is still running: " + err.Error())
		return
	}
	n.Ready("config reloaded (" + trigger + ")")
}

// MainPID hands the service over to pid, the process an upgrade started:
// systemd then watches it as the unit's main process (and signals it on
// reload and stop) while this one drains and exits.
func (n *Notifier) MainPID(pid int, status string) {
	n.send(fmt.Sprintf("MAINPID=%d\n", pid) + statusLine(status))
}

func (n *Notifier) send(state string) {
	// The environment is kept: a later message must still find the
	// socket, and so must the process an upgrade starts.
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("cannot notify systemd", "error", err)
	}
}

// statusLine makes status one STATUS= line: the protocol is newline
// separated, so a multi-line error would otherwise be cut short.
func statusLine(status string) string {
	if status == "" {
		return ""
	}
	return "STATUS=" + strings.ReplaceAll(strings.TrimSpace(status), "\n", "; ") + "\n"
}
