// Package saves writes a file the ways operators' tools do: an editor's
// rename-save, sed -i, a truncate-and-write in place, a Kubernetes
// ConfigMap's symlink swap. The reload tests use it to show that the
// config watcher sees each of them.
package saves

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Style is one way of saving.
type Style func(path string, data []byte) error

// seq makes the temporary and version names unique.
var seq atomic.Uint64

// Rename writes a temporary file beside path and renames it over path,
// as sed -i and most editors do. A symlink at path is replaced by the
// file.
func Rename(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp%d", path, seq.Add(1))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Vim moves path away to a backup, writes a new file at path and removes
// the backup, as vim does with its default backupcopy=auto on a file with
// one link.
func Vim(path string, data []byte) error {
	backup := path + "~"
	if err := os.Rename(path, backup); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	return os.Remove(backup)
}

// InPlace truncates path and writes data into it, following a symlink at
// path to its target, as "cat > file" or an editor with backupcopy=yes.
func InPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// Symlink saves the way the kubelet updates a mounted ConfigMap: data is
// written into a new version directory "..vN" beside path, a "..data"
// symlink is pointed at it by an atomic rename, and path itself is (made)
// a symlink to "..data/<name>". The previous version directory is
// removed, as the kubelet does.
func Symlink(path string, data []byte) error {
	dir, name := filepath.Split(path)
	version := fmt.Sprintf("..v%d", seq.Add(1))
	if err := os.Mkdir(filepath.Join(dir, version), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, version, name), data, 0o644); err != nil {
		return err
	}
	dataLink := filepath.Join(dir, "..data")
	old, _ := os.Readlink(dataLink)
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(version, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dataLink); err != nil {
		return err
	}
	want := filepath.Join("..data", name)
	if cur, err := os.Readlink(path); err != nil || cur != want {
		ltmp := fmt.Sprintf("%s.lnk%d", path, seq.Add(1))
		if err := os.Symlink(want, ltmp); err != nil {
			return err
		}
		if err := os.Rename(ltmp, path); err != nil {
			return err
		}
	}
	if old != "" {
		return os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}
