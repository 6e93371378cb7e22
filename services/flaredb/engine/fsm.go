package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// fsm applies committed entries to the databases. Each database records
// the index of the last entry it holds, in the same transaction as the
// entry, so a restarted node keeps its databases and skips what the log
// replays; the platform database's index, written last for every entry, is
// the node's.
type fsm struct {
	st  *store
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
	_ raft.BatchingFSM        = (*fsm)(nil)
	_ raft.ConfigurationStore = (*fsm)(nil)
)

// applyResult is what Apply returns to the leader's future.
type applyResult struct {
	cmds []cmdResult
}

// Apply applies one entry (raft calls ApplyBatch instead; Apply remains
// for the FSM interface and is the same for a batch of one).
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies the entries raft committed together: every command in
// them goes into one transaction per database, so the per-entry cost of a
// commit is paid once for the group. The response to each command entry
// is its commands' results.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	last := logs[len(logs)-1]
	defer f.prog.advance(last.Index, last.Term)
	if err := f.failure(); err != nil {
		for i := range out {
			out[i] = err
		}
		return out
	}
	var cmds []wireCmd
	var entryOf []uint64 // each command's entry index
	type span struct{ log, from, to int }
	var spans []span
	for i, l := range logs {
		if l.Type != raft.LogCommand || l.Index <= f.dbIndex {
			continue // membership, or already in the databases (a replay)
		}
		batch, err := decodeBatch(l.Data)
		if err != nil {
			// Only the leader encodes, so every replica fails the same way.
			f.log.Error("undecodable log entry", "index", l.Index, "err", err)
			out[i] = fmt.Errorf("decode entry %d: %w", l.Index, err)
			continue
		}
		spans = append(spans, span{i, len(cmds), len(cmds) + len(batch)})
		cmds = append(cmds, batch...)
		for range batch {
			entryOf = append(entryOf, l.Index)
		}
	}
	if len(spans) == 0 {
		return out
	}
	index := logs[spans[len(spans)-1].log].Index
	res, err := f.applyBatch(index, cmds, entryOf)
	if err != nil {
		f.fail(fmt.Errorf("%w: entries to %d: %w", ErrNodeFailed, index, err))
		for _, sp := range spans {
			out[sp.log] = f.failure()
		}
		return out
	}
	f.dbIndex = index
	f.entries.Add(uint64(len(spans)))
	f.commands.Add(uint64(len(cmds)))
	for _, sp := range spans {
		out[sp.log] = &applyResult{cmds: res[sp.from:sp.to]}
	}
	return out
}

// applyBatch applies commands (from entries up to index; entryOf gives
// each one's): one transaction per database they touch, the platform
// database's last (it records index even when untouched). A database
// takes only the commands of entries after the last one it holds — after
// a crash between two databases' commits, the replay may group entries
// differently. A returned error is a local failure.
func (f *fsm) applyBatch(index uint64, cmds []wireCmd, entryOf []uint64) ([]cmdResult, error) {
	var order []string
	byDB := map[string][]int{}
	for i, c := range cmds {
		db := c.DB
		if c.Node != nil {
			db = PlatformDB
		}
		if _, ok := byDB[db]; !ok && db != PlatformDB {
			order = append(order, db)
		}
		byDB[db] = append(byDB[db], i)
	}
	order = append(order, PlatformDB)
	out := make([]cmdResult, len(cmds))
	for _, name := range order {
		d, created, err := f.st.forWrite(name)
		if err != nil {
			return nil, err
		}
		if d.index >= index {
			continue
		}
		var pos []int
		for _, i := range byDB[name] {
			if entryOf[i] > d.index {
				pos = append(pos, i)
			}
		}
		if err := d.apply(index, cmds, pos, out); err != nil {
			return nil, fmt.Errorf("database %q: %w", name, err)
		}
		if created && name != PlatformDB {
			empty, err := d.empty()
			if err == nil && empty {
				err = f.st.drop(d)
			}
			if err != nil {
				return nil, fmt.Errorf("database %q: %w", name, err)
			}
		}
	}
	return out, nil
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
	dir, err := f.st.snapshot()
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return &dirSnapshot{dir: dir}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.st.restore(rc); err != nil {
		if errors.Is(err, errSwap) {
			// The live databases are closed: this replica can no
			// longer apply, and must stop rather than diverge.
			f.fail(fmt.Errorf("%w: restore: %w", ErrNodeFailed, err))
		}
		return err
	}
	f.dbIndex = f.st.platform().index
	f.restores.Add(1)
	f.prog.advance(f.dbIndex, 0)
	return nil
}

// dirSnapshot is a directory of database copies waiting to be streamed.
type dirSnapshot struct{ dir string }

func (s *dirSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, s.dir); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *dirSnapshot) Release() { os.RemoveAll(s.dir) }

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
