package tlsterm

import "github.com/sluice-dev/sluice/internal/safefile"

// UseFiles makes the handler read certificate, key and CA files through
// read instead of from the disk, until restore is called. It is for tests
// that load documentation examples naming the paths an operator would
// use (/etc/sluice/tls/...). Not safe while handlers load.
func UseFiles(read func(name string) ([]byte, error)) (restore func()) {
	readFile = read
	return func() { readFile = safefile.ReadPEM }
}
