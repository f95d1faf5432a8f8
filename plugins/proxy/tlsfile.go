package proxy

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// maxPEM is the largest certificate, key or CA bundle file read: a full
// system bundle is a few hundred KiB; the cap keeps a mistaken path (a
// log file, a device) from costing gigabytes.
const maxPEM = 4 << 20

// readPEM reads a certificate, key or CA file, refusing anything but a
// regular file of at most maxPEM bytes (a symlink to one is fine, as
// ConfigMaps are mounted). It opens non-blocking, so that a FIFO at the
// path cannot hang a load, `sluice validate` or a handshake.
func readPEM(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPEM+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxPEM {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxPEM)
	}
	return b, nil
}
