// Package upgrade replaces the running sluice binary without a restart:
// the binary at the path the process was started with is started again,
// inherits every listening socket (through github.com/cloudflare/tableflip),
// and once it says it is ready this process stops accepting, drains and
// exits. If the new process fails before it is ready, nothing changes
// here.
package upgrade

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudflare/tableflip"
	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/listener"
)

// Timeout is how long a new process has to become ready (every listener
// served) before the upgrade counts as failed and it is killed. It stays
// under the admin endpoint's write timeout, so POST /upgrade always answers.
const Timeout = 20 * time.Second

// Errors an upgrade is refused with; the running process goes on as if
// nothing had been asked.
var (
	ErrBusy     = errors.New("an upgrade is already in progress")
	ErrDraining = errors.New("the previous process still drains its connections; upgrade again once it has exited")
	ErrDone     = errors.New("this process has already handed over to a new one")
	ErrStopping = errors.New("sluice is shutting down")
)

// Sockets is what holds listening sockets to hand over: the supervisor and
// the admin endpoint.
type Sockets interface {
	Offer(*listener.Offer) error
}

// Upgrader runs upgrades for one process. Make it with New before
// anything binds.
type Upgrader struct {
	log     hclog.Logger
	tf      *tableflip.Upgrader
	path    string
	sources []Sockets
	// onHandOver: see OnHandOver.
	onHandOver []func()

	ready atomic.Bool // Ready returned

	mu      sync.Mutex // one attempt at a time
	running bool
	newPID  int
	done    chan struct{}
}

// New prepares upgrades and, when this process was started by one, makes
// the sockets it inherited the first ones ListenStream and ListenPacket
// take. It must run before anything binds.
//
// The new binary is found at the path this process was started with,
// made absolute now: /proc/self/exe would name the replaced file's inode
// once a package manager renamed a new one over it, and a relative
// os.Args[0] would depend on the working directory.
func New(log hclog.Logger) (*Upgrader, error) {
	path, err := startPath()
	if err != nil {
		return nil, err
	}
	// tableflip starts os.Args[0]; make it the absolute path.
	os.Args[0] = path
	tf, err := tableflip.New(tableflip.Options{UpgradeTimeout: Timeout})
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	listener.UseHandover(tf.Fds)
	return &Upgrader{log: log, tf: tf, path: path, done: make(chan struct{})}, nil
}

func startPath() (string, error) {
	p, err := exec.LookPath(os.Args[0])
	if err != nil {
		return "", fmt.Errorf("upgrade: finding the binary %q: %w", os.Args[0], err)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("upgrade: %w", err)
	}
	return abs, nil
}

// AddSockets adds a holder of sockets to hand over.
func (u *Upgrader) AddSockets(s Sockets) { u.sources = append(u.sources, s) }

// OnHandOver adds f to what runs as soon as the new process is ready,
// before Upgrade returns: what must stop answering here before anyone is
// told the upgrade is done (the admin endpoint, so that the next /status
// is the new process's).
func (u *Upgrader) OnHandOver(f func()) { u.onHandOver = append(u.onHandOver, f) }

// Path is the binary an upgrade starts.
func (u *Upgrader) Path() string { return u.path }

// Upgraded reports whether an upgrade started this process.
func (u *Upgrader) Upgraded() bool { return u.tf.HasParent() }

// Ready says that this process serves every listener: the process that
// started it (if any) may stop, and from now on an upgrade may start.
func (u *Upgrader) Ready() error {
	if err := u.tf.Ready(); err != nil {
		return fmt.Errorf("upgrade: telling the previous process we are ready: %w", err)
	}
	u.ready.Store(true)
	return nil
}

// notReady is tableflip's answer to an upgrade asked before this process
// was ready.
const notReady = "process is not ready yet"

// askUpgrade asks tableflip for the upgrade. tableflip learns that this
// process is ready in a loop of its own, which may take a request that
// came at the same moment first and refuse it: once Ready returned, such
// a refusal is asked again, for up to a second, rather than failing an
// upgrade signalled right after the start.
func (u *Upgrader) askUpgrade() error {
	err := u.tf.Upgrade()
	deadline := time.Now().Add(time.Second)
	for err != nil && err.Error() == notReady && u.ready.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		err = u.tf.Upgrade()
	}
	return err
}

// Done is closed once a new process took over: this one must stop
// accepting, drain and exit.
func (u *Upgrader) Done() <-chan struct{} { return u.done }

// NewPID is the new process's pid once Done is closed.
func (u *Upgrader) NewPID() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.newPID
}

// Stop refuses every later upgrade and ends one in progress (its new
// process is killed): this process is shutting down.
func (u *Upgrader) Stop() { u.tf.Stop() }

// Upgrade starts the binary at Path with every listening socket and
// waits until it is ready, then returns its pid; Done is closed then. On
// any failure the new process is gone, this one keeps serving, and the
// failure is logged at error as "upgrade failed".
func (u *Upgrader) Upgrade(trigger string) (int, error) {
	u.mu.Lock()
	switch {
	case u.running:
		u.mu.Unlock()
		return 0, u.refuse(trigger, ErrBusy)
	case u.newPID != 0:
		u.mu.Unlock()
		return 0, u.refuse(trigger, fmt.Errorf("%w (pid %d)", ErrDone, u.newPID))
	}
	u.running = true
	u.mu.Unlock()

	start := time.Now()
	pid, err := u.upgrade(trigger)
	// Not running any more before the outcome is logged: whoever reads
	// the line may ask again at once.
	u.mu.Lock()
	u.running = false
	u.mu.Unlock()
	switch {
	case err == nil:
		u.log.Info("upgrade: new process ready; draining", "trigger", trigger, "pid", pid,
			"duration", time.Since(start).Round(time.Millisecond))
		return pid, nil
	case errors.Is(err, ErrDraining), errors.Is(err, ErrStopping), errors.Is(err, ErrBusy):
		return 0, u.refuse(trigger, err)
	}
	return 0, u.fail(trigger, err)
}

// upgrade offers every socket, starts the new process and waits for it to
// be ready; then this process hands over.
func (u *Upgrader) upgrade(trigger string) (int, error) {
	u.log.Info("upgrade started", "trigger", trigger, "binary", u.path)
	offer := listener.NewOffer(u.tf.Fds)
	for _, s := range u.sources {
		if err := s.Offer(offer); err != nil {
			offer.Withdraw()
			return 0, err
		}
	}
	if err := u.askUpgrade(); err != nil {
		offer.Withdraw()
		switch msg := err.Error(); {
		case msg == notReady:
			return 0, fmt.Errorf("this process is still starting (%w); ask again once it is ready", err)
		case strings.Contains(msg, "parent hasn't exited"):
			return 0, fmt.Errorf("%w (pid %d)", ErrDraining, os.Getppid())
		case msg == "terminating":
			return 0, ErrStopping
		case strings.Contains(msg, "upgrade in progress"):
			return 0, ErrBusy
		}
		return 0, fmt.Errorf("new process: %w (its own log lines say why)", err)
	}
	// From here on the sockets are the new process's too: closing ours
	// must not remove a Unix socket file it serves.
	listener.KeepSocketFiles()
	for _, f := range u.onHandOver {
		f()
	}
	pid := childPID()
	u.mu.Lock()
	u.newPID = pid
	u.mu.Unlock()
	close(u.done)
	return pid, nil
}

func (u *Upgrader) refuse(trigger string, err error) error {
	u.log.Warn("upgrade refused", "trigger", trigger, "error", err)
	return err
}

func (u *Upgrader) fail(trigger string, err error) error {
	u.log.Error("upgrade failed", "trigger", trigger, "error", err)
	return fmt.Errorf("upgrade failed: %w", err)
}

// childPID finds the new process: tableflip does not say which pid it
// started, and it is our only child once ready (failed attempts were
// waited for). -1 if /proc does not tell.
func childPID() int {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				return pid
			}
		}
	}
	return -1
}
