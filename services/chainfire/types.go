package chainfire

// KeyValue is a stored key as the REST API shows it.
type KeyValue struct {
	Key            string `json:"key"`
	Value          string `json:"value"`
	CreateRevision int64  `json:"create_revision"`
	ModRevision    int64  `json:"mod_revision"`
	Version        int64  `json:"version"`
	// LeaseID is set for keys put with a TTL.
	LeaseID int64 `json:"lease_id,omitempty"`
}

// PutRequest is the body of POST /api/v1/kv/{key}/put.
type PutRequest struct {
	Value *string `json:"value"`
	// PrevRevision makes the put a compare-and-swap: it succeeds only if the
	// key's mod_revision is this (0: only if the key does not exist).
	PrevRevision *int64 `json:"prev_revision"`
	// TTLSeconds attaches the key to a lease that expires after this long.
	TTLSeconds *int64 `json:"ttl_seconds"`
}

// PutResult is the answer to a put.
type PutResult struct {
	KeyValue
	// TTLSeconds echoes the lease TTL of a put with ttl_seconds.
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
	// Created is true when the key did not exist before.
	Created bool `json:"created"`
}

// DeleteRequest is the optional body of POST /api/v1/kv/{key}/delete.
type DeleteRequest struct {
	PrevRevision *int64 `json:"prev_revision"`
}

// DeleteResult is the answer to a delete.
type DeleteResult struct {
	Key      string `json:"key"`
	Deleted  bool   `json:"deleted"`
	Revision int64  `json:"revision"`
	// PrevValue is the value the key held.
	PrevValue string `json:"prev_value"`
}

// ListResult is a page of GET /api/v1/kv?prefix=….
type ListResult struct {
	Items         []KeyValue `json:"items"`
	NextPageToken string     `json:"next_page_token,omitempty"`
	Revision      int64      `json:"revision"`
}

// Member is one member of the Raft cluster.
type Member struct {
	NodeID     uint64   `json:"node_id"`
	MemberID   string   `json:"member_id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peer_urls"`
	ClientURLs []string `json:"client_urls"`
	IsLearner  bool     `json:"is_learner"`
	IsLeader   bool     `json:"is_leader"`
	// Started is false for a member that was added but has not joined yet.
	Started bool `json:"started"`
}

// ClusterStatus is this node's view of the cluster; it needs no quorum.
type ClusterStatus struct {
	NodeID       uint64   `json:"node_id"`
	ClusterID    string   `json:"cluster_id"`
	MemberID     string   `json:"member_id"`
	Term         uint64   `json:"term"`
	Role         string   `json:"role"`
	IsLeader     bool     `json:"is_leader"`
	LeaderID     uint64   `json:"leader_id"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	Members      []Member `json:"members"`
}

// AddMemberRequest is the body of POST /api/v1/cluster/members.
type AddMemberRequest struct {
	NodeID *uint64 `json:"node_id"`
	// Address is the new member's Raft peer address, host:port (or a URL).
	Address string `json:"address"`
}

// AddMemberResult says how to start the new member.
type AddMemberResult struct {
	Member Member `json:"member"`
	// InitialCluster and InitialClusterState are the flags the new node
	// must be started with.
	InitialCluster      string `json:"initial_cluster"`
	InitialClusterState string `json:"initial_cluster_state"`
}

// MemberList is the body of GET /api/v1/cluster/members.
type MemberList struct {
	Members []Member `json:"members"`
}

// WatchEvent is one Server-Sent Event of GET /api/v1/watch.
type WatchEvent struct {
	Type           string `json:"type"`
	Key            string `json:"key"`
	Value          string `json:"value,omitempty"`
	CreateRevision int64  `json:"create_revision,omitempty"`
	ModRevision    int64  `json:"mod_revision"`
	Version        int64  `json:"version,omitempty"`
}
