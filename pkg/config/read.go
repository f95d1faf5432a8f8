package config

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/sluice-dev/sluice/internal/safefile"
)

// MaxSize is the largest config file sluice reads. Real configs are a few
// KiB; the cap keeps a mistaken path (a log file, a device) from costing
// gigabytes of memory.
const MaxSize = 4 << 20

// Errors of a config file that is not one sluice will read.
var (
	ErrNotRegular = safefile.ErrNotRegular
	// ErrTooLarge is a file over MaxSize; its message says "config file
	// too large".
	ErrTooLarge = safefile.ErrTooLarge
	// ErrEmpty is a file with nothing in it but comments and whitespace.
	ErrEmpty = errors.New("config file is empty")
)

// readFile reads the config at path: a regular file (a symlink to one is
// fine, as Kubernetes ConfigMaps are mounted that way) of at most MaxSize
// bytes, opened so that a FIFO at the path does not block the reload,
// SIGTERM's drain or sluice validate (internal/safefile).
func readFile(path string) ([]byte, error) {
	data, err := safefile.Read(path, MaxSize)
	if errors.Is(err, ErrTooLarge) {
		return nil, fmt.Errorf("config file %w", err)
	}
	return data, err
}

// CheckSize refuses a config document of n bytes from a source other
// than a file (etcd), over MaxSize as a file that size is; what names it
// in the message ("config document").
func CheckSize(path, what string, n int) error {
	if n <= MaxSize {
		return nil
	}
	err := fmt.Errorf("%s %w: %d bytes", what, ErrTooLarge, n)
	return Errors{{File: path, Msg: readMessage(err), Err: err}}
}

// readMessage says why the file could not be read, in an operator's words.
func readMessage(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "cannot read config: file does not exist"
	case errors.Is(err, fs.ErrPermission):
		return "cannot read config: permission denied"
	case errors.Is(err, ErrNotRegular):
		return "cannot read config: " + err.Error() + "; sluice reads only regular files (a symlink to one is fine)"
	case errors.Is(err, ErrTooLarge):
		return fmt.Sprintf("cannot read config: %v; the limit is 4 MiB", err)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "cannot read config: " + pe.Err.Error()
	}
	return "cannot read config: " + err.Error()
}

// Transient reports whether a failed load or reload may succeed when
// tried again with the same file: descriptors or memory ran short, or a
// read failed midway. The watcher retries those.
func Transient(err error) bool {
	var re *safefile.ReadError
	if errors.As(err, &re) {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.EAGAIN, syscall.ENOMEM, syscall.ENOBUFS, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
