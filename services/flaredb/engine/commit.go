package engine

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// maxBatchBytes keeps one Raft entry (and the snapshot-free catch-up of a
// follower) to a sane size however many callers are queued.
const maxBatchBytes = 8 << 20

// pending is one queued command and where its caller waits.
type pending struct {
	ctx  context.Context
	data []byte
	done chan struct{}
	res  []Result
	err  error
}

func (p *pending) finish(res []Result, err error) {
	p.res, p.err = res, err
	close(p.done)
}

// Write replicates cmd and applies it to database cmd.DB as one
// transaction (creating the database on its first write). It must run on the
// leader (otherwise *NotLeaderError, or ErrNoLeader after LeaderWait). On
// success there is one Result per statement. A *SQLError fails only this
// command, never others batched with it. If ctx ends first, the command may
// still be applied.
func (n *Node) Write(ctx context.Context, cmd Command) ([]Result, error) {
	if err := n.leaderOnly(ctx); err != nil {
		return nil, err
	}
	if n.cfg.Rewrite != nil {
		stmts := make([]Statement, len(cmd.Statements))
		for i, s := range cmd.Statements {
			r, err := n.cfg.Rewrite(s)
			if err != nil {
				return nil, err
			}
			stmts[i] = r
		}
		cmd = Command{DB: cmd.DB, Statements: stmts}
	}
	return n.write(ctx, cmd, false)
}

// write replicates cmd; sys marks the engine's own statements (KV), which
// skip the user policy and the Rewrite hook.
func (n *Node) write(ctx context.Context, cmd Command, sys bool) ([]Result, error) {
	if err := n.leaderOnly(ctx); err != nil {
		return nil, err
	}
	data, err := encodeCommand(cmd, sys)
	if err != nil {
		return nil, err
	}
	p := &pending{ctx: ctx, data: data, done: make(chan struct{})}
	if err := n.enqueue(p); err != nil {
		return nil, err
	}
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Exec is Write for a single statement.
func (n *Node) Exec(ctx context.Context, db string, st Statement) (Result, error) {
	res, err := n.Write(ctx, Command{DB: db, Statements: []Statement{st}})
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

func (n *Node) enqueue(p *pending) error {
	n.qmu.Lock()
	select {
	case <-n.stop:
		n.qmu.Unlock()
		return ErrClosed
	default:
	}
	n.q = append(n.q, p)
	n.qmu.Unlock()
	select {
	case n.queue <- struct{}{}:
	default:
	}
	return nil
}

// take removes the next batch from the queue, dropping commands whose
// callers gave up before they were replicated.
func (n *Node) take() []*pending {
	n.qmu.Lock()
	defer n.qmu.Unlock()
	var batch []*pending
	size, i := 0, 0
	for ; i < len(n.q) && len(batch) < n.cfg.MaxBatch; i++ {
		p := n.q[i]
		if p.ctx.Err() != nil {
			p.finish(nil, p.ctx.Err())
			continue
		}
		if len(batch) > 0 && size+len(p.data) > maxBatchBytes {
			break
		}
		size += len(p.data)
		batch = append(batch, p)
	}
	n.q = append([]*pending(nil), n.q[i:]...)
	return batch
}

// commitLoop is the group commit: while one entry is being replicated, new
// commands queue up, and the next entry takes all of them. There is no
// timer, so a lone write is never delayed and throughput grows with the
// number of concurrent writers.
func (n *Node) commitLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			n.qmu.Lock()
			q := n.q
			n.q = nil
			n.qmu.Unlock()
			for _, p := range q {
				p.finish(nil, ErrClosed)
			}
			return
		case <-n.queue:
		}
		for batch := n.take(); len(batch) > 0; batch = n.take() {
			n.commit(batch)
		}
	}
}

func (n *Node) commit(batch []*pending) {
	cmds := make([][]byte, len(batch))
	for i, p := range batch {
		cmds[i] = p.data
	}
	f := n.raft.Apply(encodeBatch(cmds), n.cfg.LeaderWait)
	if err := f.Error(); err != nil {
		err = n.raftErr(err)
		for _, p := range batch {
			p.finish(nil, err)
		}
		return
	}
	switch r := f.Response().(type) {
	case *applyResult:
		for i, p := range batch {
			p.finish(r.cmds[i].results, r.cmds[i].err)
		}
	case error:
		for _, p := range batch {
			p.finish(nil, r)
		}
	default:
		for _, p := range batch {
			p.finish(nil, errors.New("engine: entry applied without a result"))
		}
	}
}

// announceLoop publishes this node's addresses each time it becomes leader.
// That entry is also the leader's first command of its term: once applied,
// the leader's commit index covers every earlier entry, which linearizable
// reads rely on.
func (n *Node) announceLoop() {
	defer n.wg.Done()
	data, _ := json.Marshal(wireCmd{Node: &nodeInfo{ID: n.cfg.NodeID, RaftAddr: n.RaftAddr(), HTTPAddr: n.cfg.HTTPAddr}})
	for {
		select {
		case <-n.stop:
			return
		case leader := <-n.raft.LeaderCh():
			if !leader {
				continue
			}
		}
		for n.raft.State() == raft.Leader {
			term := n.raft.CurrentTerm()
			if _, t := n.fsm.prog.get(); t >= term {
				break
			}
			p := &pending{ctx: context.Background(), data: data, done: make(chan struct{})}
			if n.enqueue(p) != nil {
				return
			}
			select {
			case <-p.done:
			case <-n.stop:
				return
			}
			if p.err == nil {
				break
			}
			n.log.Warn("leader could not publish its address", "err", p.err)
			select {
			case <-n.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}
