package chain

// MaxSplice is the most one splice call should move, and the size asked
// for the pipes of GetPipe.
const MaxSplice = maxSplice

// Pipe is a pooled pipe for a caller that calls splice(2) by itself (an
// event loop, which cannot use a Splicer: its waits park a goroutine).
// Its ends are non-blocking.
type Pipe struct{ p *pipe }

// GetPipe takes a pipe from the pool, or reports false when none could be
// made (out of descriptors).
func GetPipe() (Pipe, bool) {
	p, _ := pipePool.Get().(*pipe)
	return Pipe{p}, p != nil
}

// FDs returns the pipe's read and write ends.
func (p Pipe) FDs() (r, w int) { return p.p.r, p.p.w }

// Put gives an empty pipe back to the pool.
func (p Pipe) Put() { pipePool.Put(p.p) }

// Close closes a pipe that still holds bytes (they are lost anyway).
func (p Pipe) Close() { p.p.close() }
