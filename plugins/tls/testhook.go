package tlsterm

import (
	"fmt"
	"os"
)

// UseFiles makes the handler read certificate, key and CA files from
// files instead of the disk, until restore is called. It is for tests
// that load documentation examples naming the paths an operator would
// use (/etc/sluice/tls/...); a path not in files is read from the disk.
// Not safe while handlers load.
func UseFiles(files map[string][]byte) (restore func()) {
	readFile = func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("%w (not among the test's files either)", err)
		}
		return b, nil
	}
	return func() { readFile = os.ReadFile }
}
