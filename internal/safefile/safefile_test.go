package safefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "a.pem")
	if err := os.WriteFile(regular, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pem")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{regular, link} {
		if b, err := Read(p, 10); err != nil || string(b) != "0123456789" {
			t.Errorf("%s: %q, %v", p, b, err)
		}
	}
	for _, tc := range []struct {
		path, want string
		is         error
	}{
		{fifo, "not a regular file (a named pipe)", ErrNotRegular},
		{"/dev/zero", "not a regular file (a character device)", ErrNotRegular},
		{dir, "not a regular file (a directory)", ErrNotRegular},
		{regular + ".missing", "no such file or directory", fs.ErrNotExist},
	} {
		// A FIFO's open would block until a writer came: the test
		// fails rather than hangs if it is not opened non-blocking.
		done := make(chan error, 1)
		go func() { _, err := Read(tc.path, 1<<20); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v; want %q", tc.path, err, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still reading after 10s", tc.path)
		}
	}
	if _, err := Read(regular, 9); !errors.Is(err, ErrTooLarge) || err.Error() != "too large: 10 bytes" {
		t.Errorf("over the limit: %v", err)
	}
	// ReadFile names the path, once.
	if _, err := ReadFile(fifo, 10); err == nil || err.Error() != fifo+": not a regular file (a named pipe)" {
		t.Errorf("ReadFile: %v", err)
	}
	if _, err := ReadFile(regular+".missing", 10); err == nil || strings.Count(err.Error(), regular) != 1 {
		t.Errorf("ReadFile of a missing file: %v", err)
	}
}
