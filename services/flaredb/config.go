package flaredb

import (
	"time"

	"github.com/photoncloud/photon/internal/rest"
)

// Config configures one FlareDB node.
type Config struct {
	HTTPAddr string // REST API (the seed's 8082)
	// HTTPAdvertise is the address other nodes forward to when this one
	// leads (default: HTTPAddr, with a wildcard host made loopback).
	HTTPAdvertise string
	// RaftAddr is the Raft transport's listen address (the seed's gRPC
	// port, 50052); RaftAdvertise, if set, is what peers dial.
	RaftAddr      string
	RaftAdvertise string
	DataDir       string
	NodeID        string
	// Bootstrap starts a new group with this node alone when DataDir holds
	// no Raft state. Join is an existing member's REST URL: a node without
	// state asks it (it forwards to the leader) to be added as a voter,
	// with JoinToken as its bearer token when the cluster enforces auth.
	Bootstrap bool
	Join      string
	JoinToken string

	Version        string
	RequestTimeout time.Duration // bound on each request (default 10s)
	MaxBodyBytes   int64         // request body limit (default 4 MiB)
	LeaderWait     time.Duration // how long a request waits for a leader (default 5s)

	// Raft timing and log compaction (engine defaults when zero).
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	SnapshotThreshold  uint64
	TrailingLogs       uint64
	SnapshotInterval   time.Duration
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8082"
	}
	if c.RaftAddr == "" {
		c.RaftAddr = "127.0.0.1:50052"
	}
	if c.NodeID == "" {
		c.NodeID = "flaredb-1"
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 4 << 20
	}
	if c.MaxBodyBytes < 0 {
		c.MaxBodyBytes = rest.DefaultMaxBody
	}
	if c.LeaderWait == 0 {
		c.LeaderWait = 5 * time.Second
	}
}
