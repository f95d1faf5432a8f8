package proxy

import "github.com/sluice-dev/sluice/internal/safefile"

// readPEM reads a certificate, key or CA file: a regular file of at most
// safefile.MaxPEM bytes (a symlink to one is fine, as ConfigMaps are
// mounted), opened so that a FIFO at the path cannot hang a load, `sluice
// validate` or a handshake.
func readPEM(path string) ([]byte, error) { return safefile.ReadFile(path, safefile.MaxPEM) }
