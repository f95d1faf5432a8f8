package main

import (
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/admin"
	"github.com/sluice-dev/sluice/pkg/logging"
	"github.com/sluice-dev/sluice/pkg/sdnotify"
	"github.com/sluice-dev/sluice/pkg/supervisor"
	"github.com/sluice-dev/sluice/pkg/upgrade"
)

// upgrades owns the goroutines SIGUSR2 starts: an upgrade waits for the
// new process to be ready, which the signal loop must not do, since a
// SIGTERM meanwhile must still be heard. Each ends when its attempt does
// (bounded by upgrade.Timeout, or at once after Upgrader.Stop).
type upgrades struct{ wg sync.WaitGroup }

func (u *upgrades) start(upg *upgrade.Upgrader) {
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		// Upgrade logs its outcome; a second one while this runs is refused.
		_, _ = upg.Upgrade("signal")
	}()
}

func (u *upgrades) wait() { u.wg.Wait() }

// handOver ends this process after a successful upgrade: systemd is told
// the new main pid, the admin endpoint stops answering here (the new
// process serves its address, so /status is always the new one's), and
// every listener stops accepting and drains for up to
// shutdown.drain_timeout, exactly as on SIGTERM. Nothing is unlinked: the
// new process serves the same Unix socket files.
func handOver(log hclog.Logger, notify *sdnotify.Notifier, upg *upgrade.Upgrader, stopWatch func(),
	adm *admin.Admin, sup *supervisor.Supervisor, sigs <-chan os.Signal, out *logging.Output) error {
	pid := upg.NewPID()
	if pid > 0 {
		notify.MainPID(pid, fmt.Sprintf("upgraded: pid %d serves, pid %d drains", pid, os.Getpid()))
	}
	stopWatch()
	_ = adm.Close()
	log.Info("handed over to the new process; draining", "new_pid", pid)
	return shutdown(log, sup, sigs, out)
}
