// Package engine is FlareDB's storage engine: a set of SQLite databases (one
// per project, each its own file) that is the state machine of one
// hashicorp/raft group. Concurrent writes are group
// committed (one Raft entry, one SQLite transaction, one savepoint per
// command); reads run on read-only connections at a chosen consistency. It
// knows nothing of HTTP: the transport maps its typed errors to status codes
// and forwards to the leader whose address NotLeaderError carries.
//
// Layout under the data dir:
//
//	raft.db          raft log and stable store (bbolt, raft-boltdb/v2)
//	snapshots/       raft snapshots: each a tar of VACUUM INTO copies
//	CURRENT          names the live generation directory
//	gen-N/           the databases (WAL mode), one file per project plus
//	                 _platform.sqlite, each with the engine's _flaredb_ tables
//	tmp/             snapshot copies in flight, emptied on open
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Server is a voting member: its Raft id and Raft address.
type Server struct {
	ID   string
	Addr string
}

// Config configures a Node. Zero durations and counts take the defaults
// documented on each field.
type Config struct {
	DataDir string
	NodeID  string
	// RaftBind is the TCP address the Raft transport listens on
	// ("127.0.0.1:0" picks a port). RaftAdvertise, if set, is the address
	// peers dial instead.
	RaftBind      string
	RaftAdvertise string
	// HTTPAddr is replicated whenever this node becomes leader, so followers
	// can forward requests to it (NotLeaderError.LeaderHTTP).
	HTTPAddr string

	// Bootstrap starts a new cluster of Servers (this node alone if empty)
	// when the data dir holds no Raft state; otherwise it is ignored. A node
	// that neither bootstraps nor has state waits to be added with AddVoter.
	Bootstrap bool
	Servers   []Server

	// Rewrite, if set, is applied on the leader to every write statement
	// before replication: the hook that makes non-deterministic SQL
	// deterministic (or refuses it). Its error is returned from Write as is.
	Rewrite func(Statement) (Statement, error)

	// LeaderWait bounds how long a request waits for an election before
	// ErrNoLeader (default 5s).
	LeaderWait time.Duration
	// MaxBatch caps the commands in one Raft entry (default 1024).
	MaxBatch int

	// Raft timing; defaults are hashicorp/raft's (1s, 1s, 500ms).
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// Log compaction: snapshot when SnapshotThreshold entries accumulated
	// since the last one (default 8192), checked every SnapshotInterval
	// (default 30s), keeping TrailingLogs entries (default 4096) so slightly
	// lagging followers catch up from the log rather than a snapshot.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// SnapshotRetain is how many snapshots to keep on disk (default 2).
	SnapshotRetain int

	Logger *slog.Logger
	// RaftLogOutput receives hashicorp/raft's own log at RaftLogLevel
	// (defaults: stderr, "warn").
	RaftLogOutput io.Writer
	RaftLogLevel  string
}

func (c *Config) defaults() error {
	if c.DataDir == "" || c.NodeID == "" || c.RaftBind == "" {
		return errors.New("engine: DataDir, NodeID and RaftBind are required")
	}
	def := raft.DefaultConfig()
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.LeaderWait, 5*time.Second)
	set(&c.HeartbeatTimeout, def.HeartbeatTimeout)
	set(&c.ElectionTimeout, def.ElectionTimeout)
	set(&c.LeaderLeaseTimeout, def.LeaderLeaseTimeout)
	set(&c.SnapshotInterval, 30*time.Second)
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1024
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 4096
	}
	if c.SnapshotRetain <= 0 {
		c.SnapshotRetain = 2
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RaftLogOutput == nil {
		c.RaftLogOutput = os.Stderr
	}
	if c.RaftLogLevel == "" {
		c.RaftLogLevel = "warn"
	}
	return nil
}

// Node is one replica. All methods are safe for concurrent use.
type Node struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	trans *raft.NetworkTransport
	bolt  *raftboltdb.BoltStore
	fsm   *fsm
	st    *store

	queue chan struct{} // wakes the commit loop
	qmu   sync.Mutex
	q     []*pending

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open starts a node from cfg. The database and Raft state in cfg.DataDir
// are reused; a node restarts with its database instead of replaying it.
func Open(cfg Config) (_ *Node, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	hlog := hclog.New(&hclog.LoggerOptions{
		Name: "raft", Level: hclog.LevelFromString(cfg.RaftLogLevel), Output: cfg.RaftLogOutput,
	}).With("node", cfg.NodeID)
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.NodeID), queue: make(chan struct{}, 1), stop: make(chan struct{})}
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()

	n.bolt, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	closers = append(closers, n.bolt.Close)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, hlog)
	if err != nil {
		return nil, err
	}
	hasState, err := raft.HasExistingState(n.bolt, n.bolt, snaps)
	if err != nil {
		return nil, err
	}
	n.st, err = openStore(cfg.DataDir, !hasState)
	if err != nil {
		return nil, err
	}
	closers = append(closers, n.st.close)
	if err := n.catchUpFromSnapshot(snaps); err != nil {
		return nil, err
	}
	idx := n.st.platform().index
	n.fsm = &fsm{st: n.st, log: n.log, dbIndex: idx, failedCh: make(chan struct{})}
	n.fsm.prog.advance(idx, 0)

	var adv net.Addr
	if cfg.RaftAdvertise != "" {
		if adv, err = net.ResolveTCPAddr("tcp", cfg.RaftAdvertise); err != nil {
			return nil, fmt.Errorf("raft advertise address: %w", err)
		}
	}
	n.trans, err = raft.NewTCPTransportWithLogger(cfg.RaftBind, adv, 3, 10*time.Second, hlog)
	if err != nil {
		return nil, fmt.Errorf("raft transport: %w", err)
	}
	closers = append(closers, n.trans.Close)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hlog
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	// The database survives restarts and knows its own applied index, so
	// raft must not wipe it with the latest snapshot on start
	// (catchUpFromSnapshot did that only where the database was behind).
	rc.NoSnapshotRestoreOnStart = true
	n.raft, err = raft.NewRaft(rc, n.fsm, n.bolt, n.bolt, snaps, n.trans)
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() error { return n.raft.Shutdown().Error() })

	if cfg.Bootstrap && !hasState {
		servers := cfg.Servers
		if len(servers) == 0 {
			servers = []Server{{ID: cfg.NodeID, Addr: string(n.trans.LocalAddr())}}
		}
		var conf raft.Configuration
		for _, s := range servers {
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Addr)})
		}
		if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	n.wg.Add(3)
	go n.commitLoop()
	go n.announceLoop()
	go func() {
		defer n.wg.Done()
		select {
		case <-n.fsm.failedCh:
			n.raft.Shutdown() // a replica that cannot apply must not vote or lead
		case <-n.stop:
		}
	}()
	return n, nil
}

// catchUpFromSnapshot installs the newest snapshot when the databases are
// older than it (a crash lost their tail, or they were never written): the
// log only holds entries after the snapshot.
func (n *Node) catchUpFromSnapshot(snaps *raft.FileSnapshotStore) error {
	metas, err := snaps.List()
	if err != nil || len(metas) == 0 {
		return err
	}
	idx := n.st.platform().index
	if idx >= metas[0].Index {
		return nil
	}
	_, rc, err := snaps.Open(metas[0].ID)
	if err != nil {
		return err
	}
	defer rc.Close()
	n.log.Info("databases behind the latest snapshot: restoring it", "db_index", idx, "snapshot_index", metas[0].Index)
	return n.st.restore(rc)
}

// Close stops the node without leaving the cluster (as a crash would, but
// with the database closed cleanly). Pending writes fail with ErrClosed.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		err := n.raft.Shutdown().Error()
		n.wg.Wait()
		n.closeErr = errors.Join(err, n.trans.Close(), n.bolt.Close(), n.st.close())
	})
	return n.closeErr
}

// ID is this node's Raft id.
func (n *Node) ID() string { return n.cfg.NodeID }

// RaftAddr is the address peers reach this node's Raft transport at.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// IsLeader reports whether this node currently believes it leads.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's id and Raft address, empty if unknown.
func (n *Node) Leader() (id, raftAddr string) {
	addr, sid := n.raft.LeaderWithID()
	return string(sid), string(addr)
}

// WaitLeader blocks until some node is known to lead, and returns its id.
func (n *Node) WaitLeader(ctx context.Context) (string, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if id, _ := n.Leader(); id != "" {
			return id, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
		case <-n.stop:
			return "", ErrClosed
		case <-t.C:
		}
	}
}

// AddVoter adds a voting member; call it on the leader. Adding a server
// already present with the same address is a no-op.
func (n *Node) AddVoter(ctx context.Context, id, raftAddr string) error {
	if err := n.leaderOnly(ctx); err != nil {
		return err
	}
	return n.membership(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeoutOf(ctx)))
}

// RemoveServer removes a member; call it on the leader.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if err := n.leaderOnly(ctx); err != nil {
		return err
	}
	return n.membership(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx)))
}

// Servers lists the current members.
func (n *Node) Servers() ([]Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Addr: string(s.Address)})
	}
	return out, nil
}

func (n *Node) membership(ctx context.Context, f raft.IndexFuture) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return n.raftErr(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 0
}

// Snapshot takes a snapshot now and compacts the log, as the thresholds
// would eventually.
func (n *Node) Snapshot() error {
	err := n.raft.Snapshot().Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return err
}

// Stats are counters for metrics and tests.
type Stats struct {
	AppliedIndex   uint64 // last log index this replica applied
	AppliedEntries uint64 // write entries (batches) applied since Open
	AppliedCmds    uint64 // write commands applied since Open
	Restores       uint64 // snapshots installed since Open
	LastLogIndex   uint64
	FirstLogIndex  uint64 // grows as the log is compacted
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	idx, _ := n.fsm.prog.get()
	first, _ := n.bolt.FirstIndex()
	return Stats{
		AppliedIndex:   idx,
		AppliedEntries: n.fsm.entries.Load(),
		AppliedCmds:    n.fsm.commands.Load(),
		Restores:       n.fsm.restores.Load(),
		LastLogIndex:   n.raft.LastIndex(),
		FirstLogIndex:  first,
	}
}

// leaderOnly waits (up to LeaderWait) for a leader and fails unless it is us.
func (n *Node) leaderOnly(ctx context.Context) error {
	if n.raft.State() == raft.Leader {
		return nil
	}
	deadline := time.Now().Add(n.cfg.LeaderWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for {
		switch n.raft.State() {
		case raft.Leader:
			return nil
		case raft.Shutdown:
			return ErrClosed
		}
		if id, addr := n.Leader(); id != "" && id != n.cfg.NodeID {
			return n.notLeader(id, addr)
		}
		if time.Now().After(deadline) {
			return ErrNoLeader
		}
		select {
		case <-n.stop:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (n *Node) notLeader(id, addr string) error {
	e := &NotLeaderError{LeaderID: id, LeaderAddr: addr}
	if id != "" {
		e.LeaderHTTP, _ = n.NodeHTTPAddr(context.Background(), id)
	}
	return e
}

// raftErr maps raft's errors to the engine's.
func (n *Node) raftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		id, addr := n.Leader()
		return n.notLeader(id, addr)
	case errors.Is(err, raft.ErrLeadershipLost):
		return ErrIndeterminate
	case errors.Is(err, raft.ErrRaftShutdown):
		if ferr := n.fsm.failure(); ferr != nil {
			return ferr
		}
		return ErrClosed
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", ErrNoLeader, err)
	}
	return err
}

// Status is the node's view of the group.
type Status struct {
	Role         string // "leader", "follower", "candidate" or "shutdown"
	LeaderID     string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
}

// Status returns the node's view of the group.
func (n *Node) Status() Status {
	id, _ := n.Leader()
	applied, _ := n.fsm.prog.get()
	return Status{Role: strings.ToLower(n.raft.State().String()), LeaderID: id,
		Term: n.raft.CurrentTerm(), CommitIndex: n.raft.CommitIndex(), AppliedIndex: applied}
}
