package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrQMPClosed is returned by commands on a QMP connection that has gone away
// (QEMU exited, or the handle was closed).
var ErrQMPClosed = errors.New("qmp: connection closed")

// QMPError is an error reply from QEMU ({"error": {"class", "desc"}}); callers
// match on Class rather than on the text.
type QMPError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *QMPError) Error() string { return "qmp: " + e.Class + ": " + e.Desc }

// Event is an asynchronous QMP event (SHUTDOWN, POWERDOWN, RESET, STOP, ...).
// Data is kept raw because every event has its own shape.
type Event struct {
	Name string
	Data json.RawMessage
	Time time.Time
}

// qmpMessage is the union of everything QEMU sends after the greeting.
type qmpMessage struct {
	ID        *uint64         `json:"id"`
	Return    json.RawMessage `json:"return"`
	Error     *QMPError       `json:"error"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp *struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
}

type qmpReply struct {
	ret json.RawMessage
	err error
}

// qmpClient speaks QMP over one unix socket. One reader goroutine owns the
// read side and routes replies by id, so commands from many goroutines and
// events that arrive between a command and its reply never get mixed up.
type qmpClient struct {
	conn net.Conn

	writeMu sync.Mutex // one JSON line at a time on the wire

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan qmpReply
	subs    map[chan Event]struct{}
	closed  bool
	readErr error

	done chan struct{} // closed when the reader goroutine has returned
}

// dialQMP connects to a QMP socket, reads the greeting and leaves capability
// negotiation mode, so the returned client accepts commands.
func dialQMP(ctx context.Context, path string) (*qmpClient, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	// QEMU serves one QMP client at a time: a second one waits in the listen
	// backlog without a greeting, so the handshake honours ctx.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	stop()
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("qmp greeting: %w", ctx.Err())
		}
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	var greeting struct {
		QMP *json.RawMessage `json:"QMP"`
	}
	if err := json.Unmarshal(line, &greeting); err != nil || greeting.QMP == nil {
		conn.Close()
		return nil, fmt.Errorf("qmp: unexpected greeting %q", line)
	}
	_ = conn.SetReadDeadline(time.Time{})
	c := &qmpClient{
		conn:    conn,
		pending: make(map[uint64]chan qmpReply),
		subs:    make(map[chan Event]struct{}),
		done:    make(chan struct{}),
	}
	go c.readLoop(r)
	if err := c.execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		c.close()
		return nil, fmt.Errorf("qmp_capabilities: %w", err)
	}
	return c, nil
}

func (c *qmpClient) readLoop(r *bufio.Reader) {
	defer close(c.done)
	var err error
	for {
		var line []byte
		line, err = r.ReadBytes('\n')
		if err != nil {
			break
		}
		var m qmpMessage
		if jerr := json.Unmarshal(line, &m); jerr != nil {
			continue // QEMU only sends JSON; skip anything garbled rather than wedge
		}
		switch {
		case m.Event != "":
			ev := Event{Name: m.Event, Data: m.Data}
			if m.Timestamp != nil {
				ev.Time = time.Unix(m.Timestamp.Seconds, m.Timestamp.Microseconds*1000)
			}
			c.publish(ev)
		case m.ID != nil:
			c.mu.Lock()
			ch := c.pending[*m.ID]
			delete(c.pending, *m.ID)
			c.mu.Unlock()
			if ch == nil {
				continue // reply to a command whose caller gave up
			}
			if m.Error != nil {
				ch <- qmpReply{err: m.Error}
			} else {
				ch <- qmpReply{ret: m.Return}
			}
		}
	}
	c.mu.Lock()
	c.closed = true
	c.readErr = err
	for id, ch := range c.pending {
		ch <- qmpReply{err: fmt.Errorf("%w: %v", ErrQMPClosed, err)}
		delete(c.pending, id)
	}
	for ch := range c.subs {
		close(ch)
		delete(c.subs, ch)
	}
	c.mu.Unlock()
}

// publish hands an event to every subscriber without blocking the reader:
// a subscriber that does not keep up loses events rather than stalling replies.
func (c *qmpClient) publish(ev Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// subscribe returns a channel of the events that arrive from now on; it is
// closed when the connection ends or cancel is called.
func (c *qmpClient) subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 64)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	c.subs[ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, ok := c.subs[ch]; ok {
			delete(c.subs, ch)
			close(ch)
		}
	}
}

// execute runs one QMP command and, if out is not nil, decodes its "return"
// value into it. It is safe for concurrent use.
func (c *qmpClient) execute(ctx context.Context, cmd string, args any, out any) error {
	ch := make(chan qmpReply, 1)
	c.mu.Lock()
	if c.closed {
		err := c.readErr
		c.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrQMPClosed, err)
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()

	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        uint64 `json:"id"`
	}{cmd, args, id}
	b, err := json.Marshal(req)
	if err != nil {
		c.forget(id)
		return err
	}
	b = append(b, '\n')
	c.writeMu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetWriteDeadline(dl)
	}
	_, err = c.conn.Write(b)
	_ = c.conn.SetWriteDeadline(time.Time{})
	c.writeMu.Unlock()
	if err != nil {
		c.forget(id)
		return fmt.Errorf("%w: %v", ErrQMPClosed, err)
	}
	select {
	case rep := <-ch:
		if rep.err != nil {
			return rep.err
		}
		if out != nil {
			return json.Unmarshal(rep.ret, out)
		}
		return nil
	case <-ctx.Done():
		c.forget(id)
		return ctx.Err()
	}
}

func (c *qmpClient) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// close drops the connection and waits for the reader to finish.
func (c *qmpClient) close() error {
	err := c.conn.Close()
	<-c.done
	return err
}
