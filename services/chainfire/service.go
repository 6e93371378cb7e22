package chainfire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/state"
)

// Limits of the KV API.
const (
	MaxKeyBytes  = 1024
	MaxListLimit = 1000
	DefListLimit = 100
	// MaxTTLSeconds is etcd's own lease ceiling.
	MaxTTLSeconds = 9_000_000_000
)

// memberMetaPrefix keeps the node_id of members added through the API until
// they start and publish their name.
const memberMetaPrefix = "/photon/chainfire/members/"

// Service is ChainFire's domain logic over an etcd client and the local
// etcd server; it knows nothing of HTTP.
type Service struct {
	cli *clientv3.Client
	srv *etcdserver.EtcdServer
	cfg Config
}

// NewService returns the service of a started etcd server.
func NewService(cli *clientv3.Client, srv *etcdserver.EtcdServer, cfg Config) *Service {
	return &Service{cli: cli, srv: srv, cfg: cfg}
}

// Consistency chooses how a read is served.
type Consistency string

// Read consistencies.
const (
	// Linearizable reads go through Raft (ReadIndex): they see every write
	// acknowledged before them, and need quorum.
	Linearizable Consistency = "linearizable"
	// Serializable reads answer from this member's state, possibly stale,
	// without quorum.
	Serializable Consistency = "serializable"
)

// ParseConsistency reads a consistency ("" is linearizable).
func ParseConsistency(s string) (Consistency, error) {
	switch Consistency(s) {
	case "", Linearizable:
		return Linearizable, nil
	case Serializable:
		return Serializable, nil
	}
	return "", apierr.Validation("consistency", apierr.Enum, "consistency must be linearizable or serializable")
}

func (c Consistency) opts() []clientv3.OpOption {
	if c == Serializable {
		return []clientv3.OpOption{clientv3.WithSerializable()}
	}
	return nil
}

// ValidateKey checks a key the API accepts.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return apierr.Validation("key", apierr.Required, "key is required")
	case len(key) > MaxKeyBytes:
		return apierr.Validation("key", apierr.MaxLength, "key is %d bytes; the limit is %d", len(key), MaxKeyBytes)
	case !utf8.ValidString(key):
		return apierr.Validation("key", apierr.Format, "key must be valid UTF-8")
	}
	return nil
}

// validatePrefix checks a key prefix ("" is every key).
func validatePrefix(prefix string) error {
	switch {
	case len(prefix) > MaxKeyBytes:
		return apierr.Validation("prefix", apierr.MaxLength, "prefix is %d bytes; the limit is %d", len(prefix), MaxKeyBytes)
	case !utf8.ValidString(prefix):
		return apierr.Validation("prefix", apierr.Format, "prefix must be valid UTF-8")
	}
	return nil
}

func toKV(kv *mvccpb.KeyValue) KeyValue {
	return KeyValue{Key: string(kv.Key), Value: string(kv.Value), CreateRevision: kv.CreateRevision,
		ModRevision: kv.ModRevision, Version: kv.Version, LeaseID: kv.Lease}
}

// Get returns key, or NOT_FOUND.
func (s *Service) Get(ctx context.Context, key string, c Consistency) (KeyValue, error) {
	if err := ValidateKey(key); err != nil {
		return KeyValue{}, err
	}
	resp, err := s.cli.Get(ctx, key, c.opts()...)
	if err != nil {
		return KeyValue{}, state.FromEtcd(err)
	}
	if len(resp.Kvs) == 0 {
		return KeyValue{}, apierr.NotFound("key", key)
	}
	return toKV(resp.Kvs[0]), nil
}

// Put stores req.Value at key: unconditionally, or as a compare-and-swap
// when PrevRevision is set, and under a lease when TTLSeconds is set.
func (s *Service) Put(ctx context.Context, key string, req PutRequest) (PutResult, error) {
	if err := ValidateKey(key); err != nil {
		return PutResult{}, err
	}
	if req.Value == nil {
		return PutResult{}, apierr.Validation("value", apierr.Required, "value is required")
	}
	if req.PrevRevision != nil && *req.PrevRevision < 0 {
		return PutResult{}, apierr.Validation("prev_revision", apierr.Range, "prev_revision must be >= 0")
	}
	if req.TTLSeconds != nil && (*req.TTLSeconds < 1 || *req.TTLSeconds > MaxTTLSeconds) {
		return PutResult{}, apierr.Validation("ttl_seconds", apierr.Range, "ttl_seconds must be from 1 to %d", int64(MaxTTLSeconds))
	}
	var opts []clientv3.OpOption
	var lease clientv3.LeaseID
	if req.TTLSeconds != nil {
		l, err := s.cli.Grant(ctx, *req.TTLSeconds)
		if err != nil {
			return PutResult{}, state.FromEtcd(err)
		}
		lease = l.ID
		opts = append(opts, clientv3.WithLease(lease))
	}
	opts = append(opts, clientv3.WithPrevKV())
	var (
		rev  int64
		prev *mvccpb.KeyValue
		err  error
	)
	if req.PrevRevision == nil {
		// An unconditional put is a plain Put: a transaction would cost
		// about 15% of put throughput for nothing.
		var resp *clientv3.PutResponse
		if resp, err = s.cli.Put(ctx, key, *req.Value, opts...); err == nil {
			rev, prev = resp.Header.Revision, resp.PrevKv
		} else {
			err = state.FromEtcd(err)
		}
	} else {
		rev, prev, err = s.casPut(ctx, key, *req.Value, *req.PrevRevision, opts)
	}
	if err != nil {
		if lease != 0 {
			// The put did not happen (or may not have): do not leave the
			// lease behind. If the put did land, its key expires with it.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_, _ = s.cli.Revoke(rctx, lease)
			cancel()
		}
		return PutResult{}, err
	}
	out := PutResult{KeyValue: KeyValue{Key: key, Value: *req.Value, CreateRevision: rev, ModRevision: rev, Version: 1, LeaseID: int64(lease)}, Created: true}
	if prev != nil {
		out.CreateRevision, out.Version, out.Created = prev.CreateRevision, prev.Version+1, false
	}
	if req.TTLSeconds != nil {
		out.TTLSeconds = *req.TTLSeconds
	}
	return out, nil
}

// casPut puts value at key only if the key's mod revision is prevRevision
// (0: only if absent), returning the write's revision and the previous pair;
// a lost compare is CONFLICT naming the current revision.
func (s *Service) casPut(ctx context.Context, key, value string, prevRevision int64, opts []clientv3.OpOption) (int64, *mvccpb.KeyValue, error) {
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", prevRevision)).
		Then(clientv3.OpPut(key, value, opts...)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return 0, nil, state.FromEtcd(err)
	}
	if !resp.Succeeded {
		var cur int64
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			cur = kvs[0].ModRevision
		}
		return 0, nil, &apierr.Error{Code: apierr.CodeConflict,
			Message: fmt.Sprintf("key %q is at revision %d, not prev_revision %d", key, cur, prevRevision),
			Details: map[string]any{"key": key, "current_revision": cur, "prev_revision": prevRevision}}
	}
	return resp.Header.Revision, resp.Responses[0].GetResponsePut().PrevKv, nil
}

// Delete removes key (only at PrevRevision when set); NOT_FOUND if absent.
func (s *Service) Delete(ctx context.Context, key string, req DeleteRequest) (DeleteResult, error) {
	if err := ValidateKey(key); err != nil {
		return DeleteResult{}, err
	}
	cmp := clientv3.Compare(clientv3.CreateRevision(key), ">", 0)
	if req.PrevRevision != nil {
		if *req.PrevRevision < 1 {
			return DeleteResult{}, apierr.Validation("prev_revision", apierr.Range, "prev_revision must be >= 1")
		}
		cmp = clientv3.Compare(clientv3.ModRevision(key), "=", *req.PrevRevision)
	}
	resp, err := s.cli.Txn(ctx).If(cmp).Then(clientv3.OpDelete(key, clientv3.WithPrevKV())).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return DeleteResult{}, state.FromEtcd(err)
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return DeleteResult{}, apierr.NotFound("key", key)
		}
		return DeleteResult{}, &apierr.Error{Code: apierr.CodeConflict,
			Message: fmt.Sprintf("key %q is at revision %d, not prev_revision %d", key, kvs[0].ModRevision, *req.PrevRevision),
			Details: map[string]any{"key": key, "current_revision": kvs[0].ModRevision, "prev_revision": *req.PrevRevision}}
	}
	out := DeleteResult{Key: key, Deleted: true, Revision: resp.Header.Revision}
	if prev := resp.Responses[0].GetResponseDeleteRange().PrevKvs; len(prev) > 0 {
		out.PrevValue = string(prev[0].Value)
	}
	return out, nil
}

// List returns a page of the keys starting with prefix, sorted by key.
func (s *Service) List(ctx context.Context, prefix string, limit int, pageToken string, c Consistency) (ListResult, error) {
	if err := validatePrefix(prefix); err != nil {
		return ListResult{}, err
	}
	kvs, next, rev, err := state.ListRaw(ctx, s.cli, prefix, limit, pageToken, c.opts()...)
	if err != nil {
		return ListResult{}, err
	}
	out := ListResult{Items: make([]KeyValue, 0, len(kvs)), NextPageToken: next, Revision: rev}
	for _, kv := range kvs {
		out.Items = append(out.Items, KeyValue{Key: string(kv.Key), Value: string(kv.Value), CreateRevision: kv.CreateRevision,
			ModRevision: kv.ModRevision, Version: kv.Version, LeaseID: kv.Lease})
	}
	return out, nil
}

// Watch streams changes to keys with prefix (or exactly key when exact),
// starting after revision fromRevision (0: from now).
func (s *Service) Watch(ctx context.Context, prefix string, exact bool, fromRevision int64) (clientv3.WatchChan, error) {
	if exact {
		if err := ValidateKey(prefix); err != nil {
			return nil, err
		}
	} else if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	var opts []clientv3.OpOption
	if !exact {
		opts = append(opts, clientv3.WithPrefix())
		if prefix == "" {
			opts = []clientv3.OpOption{clientv3.WithFromKey()}
			prefix = "\x00"
		}
	}
	if fromRevision > 0 {
		opts = append(opts, clientv3.WithRev(fromRevision))
	}
	opts = append(opts, clientv3.WithCreatedNotify())
	return s.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, opts...), nil
}

// Status is this member's view of the cluster, answered without quorum.
func (s *Service) Status() ClusterStatus {
	id := s.srv.MemberID()
	lead := s.srv.Leader()
	st := ClusterStatus{
		NodeID:       s.cfg.NodeID,
		ClusterID:    s.srv.Cluster().ID().String(),
		MemberID:     id.String(),
		Term:         s.srv.Term(),
		IsLeader:     lead == id,
		CommitIndex:  s.srv.CommittedIndex(),
		AppliedIndex: s.srv.AppliedIndex(),
	}
	self := s.srv.Cluster().Member(id)
	switch {
	case self == nil:
		st.Role = "removed" // no longer a member of the cluster
	case st.IsLeader:
		st.Role = "leader"
	case self.IsLearner:
		st.Role = "learner"
	case lead == 0:
		st.Role = "candidate"
	default:
		st.Role = "follower"
	}
	for _, m := range s.srv.Cluster().Members() {
		mem := newMember(uint64(m.ID), m.Name, m.PeerURLs, m.ClientURLs, m.IsLearner, uint64(lead))
		if mem.IsLeader {
			st.LeaderID = mem.NodeID
		}
		st.Members = append(st.Members, mem)
	}
	sortMembers(st.Members)
	return st
}

// newMember is a member as the API shows it, from either etcd's local
// membership view or a MemberList answer. A member that has not started has
// no name yet, and no client URLs ([] rather than null).
func newMember(id uint64, name string, peerURLs, clientURLs []string, learner bool, lead uint64) Member {
	if clientURLs == nil {
		clientURLs = []string{}
	}
	return Member{NodeID: nodeIDOf(name), MemberID: strconv.FormatUint(id, 16), Name: name, PeerURLs: peerURLs,
		ClientURLs: clientURLs, IsLearner: learner, IsLeader: id == lead, Started: name != ""}
}

func sortMembers(ms []Member) {
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].NodeID != ms[j].NodeID {
			return ms[i].NodeID < ms[j].NodeID
		}
		return ms[i].MemberID < ms[j].MemberID
	})
}

// Members lists the cluster's members (a linearizable read: needs quorum).
func (s *Service) Members(ctx context.Context) ([]Member, error) {
	resp, err := s.cli.MemberList(ctx)
	if err != nil {
		return nil, state.FromEtcd(err)
	}
	pending, err := s.pendingNodeIDs(ctx)
	if err != nil {
		return nil, err
	}
	lead := uint64(s.srv.Leader())
	out := make([]Member, 0, len(resp.Members))
	for _, m := range resp.Members {
		mem := newMember(m.ID, m.Name, m.PeerURLs, m.ClientURLs, m.IsLearner, lead)
		if mem.NodeID == 0 {
			mem.NodeID = pending[mem.MemberID]
		}
		out = append(out, mem)
	}
	sortMembers(out)
	return out, nil
}

func (s *Service) pendingNodeIDs(ctx context.Context) (map[string]uint64, error) {
	resp, err := s.cli.Get(ctx, memberMetaPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, state.FromEtcd(err)
	}
	out := map[string]uint64{}
	for _, kv := range resp.Kvs {
		if id, err := strconv.ParseUint(string(kv.Value), 10, 64); err == nil {
			out[strings.TrimPrefix(string(kv.Key), memberMetaPrefix)] = id
		}
	}
	return out, nil
}

// AddMember adds node req.NodeID at peer address req.Address as a learner:
// it does not count towards quorum until it has caught up and the leader
// promotes it, so adding a member that never starts cannot cost the cluster
// its quorum (etcd's recommended way to grow).
func (s *Service) AddMember(ctx context.Context, req AddMemberRequest) (AddMemberResult, error) {
	if req.NodeID == nil {
		return AddMemberResult{}, apierr.Validation("node_id", apierr.Required, "node_id is required")
	}
	if *req.NodeID < 1 {
		return AddMemberResult{}, apierr.Validation("node_id", apierr.Range, "node_id must be >= 1")
	}
	peerURL, err := peerURLOf(req.Address)
	if err != nil {
		return AddMemberResult{}, err
	}
	members, err := s.Members(ctx)
	if err != nil {
		return AddMemberResult{}, err
	}
	for _, m := range members {
		if m.NodeID == *req.NodeID {
			return AddMemberResult{}, &apierr.Error{Code: apierr.CodeAlreadyExists,
				Message: fmt.Sprintf("node %d is already a member", *req.NodeID), Details: map[string]any{"node_id": *req.NodeID}}
		}
		for _, u := range m.PeerURLs {
			if u == peerURL {
				return AddMemberResult{}, &apierr.Error{Code: apierr.CodeAlreadyExists,
					Message: fmt.Sprintf("peer address %s is already node %d's", req.Address, m.NodeID), Details: map[string]any{"address": req.Address}}
			}
		}
	}
	resp, err := s.cli.MemberAddAsLearner(ctx, []string{peerURL})
	if err != nil {
		if errors.Is(err, rpctypes.ErrGRPCPeerURLExist) || errors.Is(err, rpctypes.ErrPeerURLExist) {
			return AddMemberResult{}, apierr.Wrap(apierr.CodeAlreadyExists, err, "peer address %s is already a member's", req.Address)
		}
		if errors.Is(err, rpctypes.ErrGRPCTooManyLearners) || errors.Is(err, rpctypes.ErrTooManyLearners) {
			return AddMemberResult{}, apierr.Wrap(apierr.CodeFailedPrecondition, err, "another member is still catching up as a learner; start it (or remove it) first")
		}
		return AddMemberResult{}, state.FromEtcd(err)
	}
	memberID := fmt.Sprintf("%x", resp.Member.ID)
	if _, err := s.cli.Put(ctx, memberMetaPrefix+memberID, fmt.Sprint(*req.NodeID)); err != nil {
		return AddMemberResult{}, state.FromEtcd(err)
	}
	var parts []string
	for _, m := range resp.Members {
		name := m.Name
		if m.ID == resp.Member.ID {
			name = MemberName(*req.NodeID)
		}
		if name == "" {
			continue // another member that has not started: it cannot be named yet
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, name+"="+u)
		}
	}
	sort.Strings(parts)
	return AddMemberResult{
		Member: Member{NodeID: *req.NodeID, MemberID: memberID, Name: MemberName(*req.NodeID),
			PeerURLs: resp.Member.PeerURLs, ClientURLs: []string{}, IsLearner: true},
		InitialCluster:      strings.Join(parts, ","),
		InitialClusterState: "existing",
	}, nil
}

// RemoveMember removes node nodeID from the cluster.
func (s *Service) RemoveMember(ctx context.Context, nodeID uint64) (Member, error) {
	members, err := s.Members(ctx)
	if err != nil {
		return Member{}, err
	}
	for _, m := range members {
		if m.NodeID != nodeID {
			continue
		}
		id, err := strconv.ParseUint(m.MemberID, 16, 64)
		if err != nil {
			return Member{}, apierr.Wrap(apierr.CodeInternal, err, "member id %q", m.MemberID)
		}
		if _, err := s.cli.MemberRemove(ctx, id); err != nil {
			if errors.Is(err, rpctypes.ErrGRPCUnhealthy) || errors.Is(err, rpctypes.ErrUnhealthy) {
				return Member{}, apierr.Wrap(apierr.CodeFailedPrecondition, err, "removing node %d would leave the cluster without quorum", nodeID)
			}
			return Member{}, state.FromEtcd(err)
		}
		_, _ = s.cli.Delete(ctx, memberMetaPrefix+m.MemberID)
		return m, nil
	}
	return Member{}, apierr.NotFound("member", fmt.Sprint(nodeID))
}

// peerURLOf accepts "host:port" or "http(s)://host:port".
func peerURLOf(addr string) (string, error) {
	if addr == "" {
		return "", apierr.Validation("address", apierr.Required, "address is required")
	}
	raw := addr
	if !strings.Contains(addr, "://") {
		raw = "http://" + addr
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" || u.Port() == "" {
		return "", apierr.Validation("address", apierr.Format, "address must be host:port (the new member's Raft peer address)")
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return "", apierr.Validation("address", apierr.Format, "address must be host:port (the new member's Raft peer address)")
	}
	return u.Scheme + "://" + u.Host, nil
}

// promoteLearners runs on every node; when this node leads, it promotes
// each learner that has caught up (etcd refuses learners that have not).
func (s *Service) promoteLearners(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.srv.Leader() != s.srv.MemberID() {
			continue
		}
		for _, m := range s.srv.Cluster().Members() {
			if !m.IsLearner {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := s.cli.MemberPromote(pctx, uint64(m.ID))
			cancel()
			if err == nil {
				slog.Info("chainfire: promoted learner to voting member", "member", m.ID.String(), "name", m.Name)
			}
		}
	}
}

// Healthy reports whether this member knows a leader.
func (s *Service) Healthy(context.Context) error {
	select {
	case <-s.srv.StopNotify():
		return apierr.New(apierr.CodeUnavailable, "the etcd member has stopped")
	default:
	}
	if s.srv.Cluster().Member(s.srv.MemberID()) == nil {
		return apierr.New(apierr.CodeUnavailable, "this node is no longer a member of the cluster")
	}
	if s.srv.Leader() == 0 {
		return apierr.New(apierr.CodeUnavailable, "no Raft leader")
	}
	return nil
}
