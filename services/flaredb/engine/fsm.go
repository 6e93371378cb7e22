package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// fsm applies committed entries to SQLite. The DB records the index of the
// last entry it holds (in the same transaction as the entry), so a restarted
// node keeps its database and skips what the log replays.
type fsm struct {
	st  *sqlStore
	log *slog.Logger

	dbIndex uint64 // FSM goroutine only
	prog    progress

	entries  atomic.Uint64 // command entries applied (batches)
	commands atomic.Uint64 // commands applied, summed over batches
	restores atomic.Uint64 // snapshots installed

	failMu   sync.Mutex
	failed   error
	failedCh chan struct{} // closed on the first failure
}

var (
	_ raft.FSM                = (*fsm)(nil)
	_ raft.ConfigurationStore = (*fsm)(nil)
)

// applyResult is what Apply returns to the leader's future.
type applyResult struct {
	cmds []cmdResult
}

func (f *fsm) Apply(l *raft.Log) any {
	if l.Index <= f.dbIndex {
		f.prog.advance(l.Index, l.Term)
		return nil // already in the database: a replay after restart
	}
	if err := f.failure(); err != nil {
		return err
	}
	cmds, err := decodeBatch(l.Data)
	if err != nil {
		// Only the leader encodes, so every replica fails the same way.
		f.log.Error("undecodable log entry", "index", l.Index, "err", err)
		f.prog.advance(l.Index, l.Term)
		return fmt.Errorf("decode entry %d: %w", l.Index, err)
	}
	res, err := f.st.applyBatch(l.Index, cmds)
	if err != nil {
		f.fail(fmt.Errorf("%w: entry %d: %w", ErrNodeFailed, l.Index, err))
		return f.failure()
	}
	f.dbIndex = l.Index
	f.entries.Add(1)
	f.commands.Add(uint64(len(cmds)))
	f.prog.advance(l.Index, l.Term)
	return &applyResult{cmds: res}
}

// StoreConfiguration lets the applied index cover membership entries, which
// the read path waits on like any other committed entry.
func (f *fsm) StoreConfiguration(index uint64, _ raft.Configuration) {
	f.prog.advance(index, 0)
}

func (f *fsm) fail(err error) {
	f.failMu.Lock()
	first := f.failed == nil
	if first {
		f.failed = err
	}
	f.failMu.Unlock()
	if first {
		f.log.Error("replica stopping: cannot apply the log", "err", err)
		close(f.failedCh)
	}
}

func (f *fsm) failure() error {
	f.failMu.Lock()
	defer f.failMu.Unlock()
	return f.failed
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.failure(); err != nil {
		return nil, err
	}
	p, err := f.st.vacuumInto()
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return &fileSnapshot{path: p}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp := f.st.tempPath("restore")
	if err := writeFileSync(tmp, rc); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	if err := f.st.replace(tmp); err != nil {
		os.Remove(tmp)
		f.fail(fmt.Errorf("%w: restore: %w", ErrNodeFailed, err))
		return err
	}
	idx, err := f.st.metaIndex()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	f.dbIndex = idx
	f.restores.Add(1)
	f.prog.advance(idx, 0)
	return nil
}

func writeFileSync(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// fileSnapshot is a VACUUM INTO copy waiting to be streamed to the sink.
type fileSnapshot struct{ path string }

func (s *fileSnapshot) Persist(sink raft.SnapshotSink) error {
	f, err := os.Open(s.path)
	if err != nil {
		sink.Cancel()
		return err
	}
	defer f.Close()
	if _, err := io.Copy(sink, f); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fileSnapshot) Release() { os.Remove(s.path) }

// progress is the highest log index (and term) this replica has applied,
// with a way to wait for it to reach a given index.
type progress struct {
	mu    sync.Mutex
	index uint64
	term  uint64
	ch    chan struct{}
}

func (p *progress) advance(index, term uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if index <= p.index && term <= p.term {
		return
	}
	p.index = max(p.index, index)
	p.term = max(p.term, term)
	if p.ch != nil {
		close(p.ch)
		p.ch = nil
	}
}

func (p *progress) get() (index, term uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.index, p.term
}

func (p *progress) wait(ctx context.Context, index uint64) error {
	return p.until(ctx, func() bool { return p.index >= index })
}

// waitTerm waits until an entry of term (or later) has been applied.
func (p *progress) waitTerm(ctx context.Context, term uint64) error {
	return p.until(ctx, func() bool { return p.term >= term })
}

// until waits until done (called under p.mu) holds, woken by each advance.
func (p *progress) until(ctx context.Context, done func() bool) error {
	for {
		p.mu.Lock()
		if done() {
			p.mu.Unlock()
			return nil
		}
		if p.ch == nil {
			p.ch = make(chan struct{})
		}
		ch := p.ch
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
