package chain

import "errors"

// ErrRejected is wrapped by the error a middleware returns when it turned a
// connection away on purpose (a rate or connection limit). The handler that
// rejected has closed the connection and logged why; the supervisor does
// not log it again, so that a flood of rejections costs one debug line each.
var ErrRejected = errors.New("connection rejected")
