package chain

// Datagram counts and reply observers: what a middleware that watches a
// flow (log) needs beyond byte counts. Kept apart from flow.go, whose
// Reply and AddIn only call in here.

// PacketsIn is the number of datagrams received from the client so far.
func (f *Flow) PacketsIn() int64 { return f.packetsIn.Load() }

// PacketsOut is the number of datagrams Reply has sent to the client so
// far (empty ones included).
func (f *Flow) PacketsOut() int64 { return f.packetsOut.Load() }

// OnReply registers fn to see every datagram Reply sends to the client
// from now on, after it was sent: the datagram counterpart of wrapping a
// stream connection's Write, for a middleware that logs what goes out.
// fn runs on whichever goroutine calls Reply (the read loop, a proxy's
// relay), so it must be safe for that and must not block; b is only
// valid during the call.
func (f *Flow) OnReply(fn func(b []byte)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var hooks []func([]byte)
	if old := f.replyHooks.Load(); old != nil {
		hooks = append(hooks, *old...)
	}
	hooks = append(hooks, fn)
	f.replyHooks.Store(&hooks)
}

// sent counts a datagram Reply sent and shows it to the OnReply functions.
func (f *Flow) sent(b []byte) {
	f.packetsOut.Add(1)
	if hooks := f.replyHooks.Load(); hooks != nil {
		for _, fn := range *hooks {
			fn(b)
		}
	}
}
