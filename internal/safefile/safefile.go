// Package safefile reads the files a config names (the config itself,
// certificates, keys, CA bundles, password files) so that a wrong path
// cannot hang or exhaust a running sluice: only a regular file is read (a
// symlink to one is fine, as Kubernetes mounts ConfigMaps and Secrets),
// it is opened non-blocking so that a FIFO at the path does not block the
// open, and no more than a limit is read, so that /dev/zero or a log file
// costs nothing.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxPEM is the largest certificate, key or CA bundle file read: a full
// system bundle is a few hundred KiB.
const MaxPEM = 4 << 20

// Errors of a file that is not one sluice reads.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrTooLarge   = errors.New("too large")
)

// ReadError marks a failure while reading a file that opened and is a
// regular file: an I/O error that a later attempt may not meet.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// Read reads the regular file at path, of at most limit bytes. Its errors
// wrap ErrNotRegular (saying what the path is instead), ErrTooLarge (with
// the size), a *ReadError, or are the open's *fs.PathError; only the
// last names the path (ReadFile names it in all).
func Read(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &ReadError{err}
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w (%s)", ErrNotRegular, Kind(fi.Mode()))
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, fi.Size())
	}
	// The file may grow between the stat and the read: read one byte
	// past the limit to tell.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &ReadError{err}
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return data, nil
}

// ReadFile is Read with the path in every error, as os.ReadFile's are.
func ReadFile(path string, limit int64) ([]byte, error) {
	b, err := Read(path, limit)
	var pe *fs.PathError
	if err != nil && !errors.As(err, &pe) {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return b, err
}

// ReadPEM is ReadFile for a certificate, key or CA bundle.
func ReadPEM(path string) ([]byte, error) { return ReadFile(path, MaxPEM) }

// Kind says what a file that is not a regular one is, in an operator's
// words.
func Kind(m fs.FileMode) string {
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
