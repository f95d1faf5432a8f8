package etcdsource

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrConflict is a compare-and-swap publish that found the key at
// another revision than the one given: someone else published first.
var ErrConflict = errors.New("revision conflict")

// ConflictError says where the key is now.
type ConflictError struct {
	Key       string
	Want, Got int64 // Got is 0 when the key does not exist
}

func (e *ConflictError) Error() string {
	now := fmt.Sprintf("is at revision %d", e.Got)
	if e.Got == 0 {
		now = "does not exist"
	}
	want := fmt.Sprintf("not at revision %d", e.Want)
	if e.Want == 0 {
		want = "while --if-revision 0 wants it not to exist"
	}
	return fmt.Sprintf("%s: etcd key %s %s, %s: someone published since; read the key again and retry", ErrConflict, e.Key, now, want)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// Publish writes data to the key in one transaction and returns the new
// revision. With ifRevision set, the write happens only while the key's
// ModRevision is *ifRevision (0: the key must not exist), so that two
// operators cannot overwrite each other's change unseen.
func Publish(ctx context.Context, cli *clientv3.Client, key string, data []byte, ifRevision *int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	txn := cli.Txn(ctx)
	if ifRevision != nil {
		txn = txn.If(clientv3.Compare(clientv3.ModRevision(key), "=", *ifRevision))
	}
	resp, err := txn.Then(clientv3.OpPut(key, string(data))).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("%w within %v: %w", ErrUnreachable, Timeout, err)
		}
		return 0, fmt.Errorf("etcd put %s: %w", key, err)
	}
	if !resp.Succeeded {
		ce := &ConflictError{Key: key, Want: *ifRevision}
		if rs := resp.Responses; len(rs) > 0 {
			if kvs := rs[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
				ce.Got = kvs[0].ModRevision
			}
		}
		return 0, ce
	}
	return resp.Header.Revision, nil
}
