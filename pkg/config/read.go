package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxSize is the largest config file sluice reads. Real configs are a few
// KiB; the cap keeps a mistaken path (a log file, a device) from costing
// gigabytes of memory.
const MaxSize = 4 << 20

// Errors of a config file that is not one sluice will read.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrTooLarge   = errors.New("config file too large")
	// ErrEmpty is a file with nothing in it but comments and whitespace.
	ErrEmpty = errors.New("config file is empty")
)

// readError marks a failure while reading an opened file: an I/O error
// that a later attempt may not meet.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// readFile reads the config at path, refusing anything but a regular file
// of at most MaxSize bytes. The file is opened non-blocking, so that a FIFO
// at the path does not block the open (and with it the reload, SIGTERM's
// drain and sluice validate); a symlink to a regular file is fine, as
// Kubernetes ConfigMaps are mounted that way.
func readFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &readError{err}
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w (%s)", ErrNotRegular, kindOf(fi.Mode()))
	}
	if fi.Size() > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, fi.Size())
	}
	// The file may grow between the stat and the read: read one byte
	// past the cap to tell.
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, &readError{err}
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxSize)
	}
	return data, nil
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a regular file"
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
	var re *readError
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
