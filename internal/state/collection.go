package state

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
)

// Item is a stored value with its etcd revisions; ModRevision is what an
// Update must name to win its compare-and-swap.
type Item[T any] struct {
	ID             string
	Value          T
	CreateRevision int64
	ModRevision    int64
}

// Page is one page of a List.
type Page[T any] struct {
	Items         []Item[T]
	NextPageToken string
}

// Collection is a typed set of JSON values under one key prefix, e.g.
// /photon/prismnet/vpcs/. Kind names the resource in NOT_FOUND errors.
type Collection[T any] struct {
	cli    *clientv3.Client
	prefix string
	kind   string
}

// NewCollection returns the collection of kind stored under prefix (which
// should end in "/").
func NewCollection[T any](cli *clientv3.Client, prefix, kind string) *Collection[T] {
	return &Collection[T]{cli: cli, prefix: prefix, kind: kind}
}

// Key is the etcd key of id.
func (c *Collection[T]) Key(id string) string { return c.prefix + id }

func (c *Collection[T]) decode(id string, kv []byte, create, mod int64) (Item[T], error) {
	it := Item[T]{ID: id, CreateRevision: create, ModRevision: mod}
	if err := json.Unmarshal(kv, &it.Value); err != nil {
		return it, apierr.Wrap(apierr.CodeInternal, err, "stored %s %q is corrupt", c.kind, id)
	}
	return it, nil
}

// Get returns id, or NOT_FOUND.
func (c *Collection[T]) Get(ctx context.Context, id string) (Item[T], error) {
	return c.get(ctx, id)
}

// GetLocal is Get served by the member the client talks to, without a
// round of the consensus (serializable): for values that never change once
// written (an owner, an org id), where "missing" is confirmed with Get.
func (c *Collection[T]) GetLocal(ctx context.Context, id string) (Item[T], error) {
	it, err := c.get(ctx, id, clientv3.WithSerializable())
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return c.get(ctx, id)
	}
	return it, err
}

func (c *Collection[T]) get(ctx context.Context, id string, opts ...clientv3.OpOption) (Item[T], error) {
	if err := ctx.Err(); err != nil {
		return Item[T]{}, FromEtcd(err)
	}
	resp, err := c.cli.Get(ctx, c.Key(id), opts...)
	if err != nil {
		return Item[T]{}, FromEtcd(err)
	}
	if len(resp.Kvs) == 0 {
		return Item[T]{}, apierr.NotFound(c.kind, id)
	}
	kv := resp.Kvs[0]
	return c.decode(id, kv.Value, kv.CreateRevision, kv.ModRevision)
}

// Create stores v as id if id does not exist yet, else ALREADY_EXISTS.
func (c *Collection[T]) Create(ctx context.Context, id string, v T) (Item[T], error) {
	op, err := c.CreateOp(id, v)
	if err != nil {
		return Item[T]{}, err
	}
	rev, err := Commit(ctx, c.cli, op)
	if err != nil {
		return Item[T]{}, err
	}
	return Item[T]{ID: id, Value: v, CreateRevision: rev, ModRevision: rev}, nil
}

// Update replaces id with v if its mod revision is still modRevision, else
// CONFLICT (or NOT_FOUND if it is gone).
func (c *Collection[T]) Update(ctx context.Context, id string, v T, modRevision int64) (Item[T], error) {
	op, err := c.UpdateOp(id, v, modRevision)
	if err != nil {
		return Item[T]{}, err
	}
	rev, err := Commit(ctx, c.cli, op)
	if err != nil {
		return Item[T]{}, err
	}
	return Item[T]{ID: id, Value: v, ModRevision: rev}, nil
}

// Delete removes id if its mod revision is modRevision (any revision when
// 0); NOT_FOUND if absent, CONFLICT if changed.
func (c *Collection[T]) Delete(ctx context.Context, id string, modRevision int64) error {
	_, err := Commit(ctx, c.cli, c.DeleteOp(id, modRevision))
	return err
}

// List returns up to limit items whose IDs start with idPrefix, in key
// order, continuing after pageToken.
func (c *Collection[T]) List(ctx context.Context, idPrefix string, limit int, pageToken string) (Page[T], error) {
	start, err := DecodePageToken(pageToken, c.prefix+idPrefix)
	if err != nil {
		return Page[T]{}, err
	}
	keys, next, _, err := listRange(ctx, c.cli, c.prefix+idPrefix, start, limit)
	if err != nil {
		return Page[T]{}, err
	}
	page := Page[T]{NextPageToken: next}
	for _, kv := range keys {
		it, err := c.decode(strings.TrimPrefix(string(kv.Key), c.prefix), kv.Value, kv.CreateRevision, kv.ModRevision)
		if err != nil {
			return Page[T]{}, err
		}
		page.Items = append(page.Items, it)
	}
	return page, nil
}

// KeyValue is a raw stored pair with its revisions.
type KeyValue struct {
	Key            []byte
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Lease          int64
}

// ListRaw returns up to limit raw pairs under prefix in key order after
// pageToken, the token for the next page ("" when none) and the store
// revision read. ChainFire's REST list uses it directly.
func ListRaw(ctx context.Context, cli *clientv3.Client, prefix string, limit int, pageToken string, opts ...clientv3.OpOption) ([]KeyValue, string, int64, error) {
	start, err := DecodePageToken(pageToken, prefix)
	if err != nil {
		return nil, "", 0, err
	}
	return listRange(ctx, cli, prefix, start, limit, opts...)
}

func listRange(ctx context.Context, cli *clientv3.Client, prefix, start string, limit int, opts ...clientv3.OpOption) ([]KeyValue, string, int64, error) {
	end := clientv3.GetPrefixRangeEnd(prefix)
	if prefix == "" {
		end = "\x00" // etcd: from start to the end of the keyspace
	}
	if start == "" {
		start = prefix
		if start == "" {
			start = "\x00" // etcd rejects an empty key
		}
	}
	opts = append(opts, clientv3.WithRange(end), clientv3.WithLimit(int64(limit)),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err := ctx.Err(); err != nil {
		return nil, "", 0, FromEtcd(err)
	}
	resp, err := cli.Get(ctx, start, opts...)
	if err != nil {
		return nil, "", 0, FromEtcd(err)
	}
	out := make([]KeyValue, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, KeyValue{Key: kv.Key, Value: kv.Value, CreateRevision: kv.CreateRevision,
			ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease})
	}
	next := ""
	if resp.More && len(out) > 0 {
		next = EncodePageToken(string(out[len(out)-1].Key) + "\x00")
	}
	return out, next, resp.Header.Revision, nil
}

// EncodePageToken makes an opaque token for the key a next page starts at.
func EncodePageToken(startKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(startKey))
}

// DecodePageToken returns the start key of token, which must lie under
// prefix (a token from another listing is a VALIDATION_ERROR).
func DecodePageToken(token, prefix string) (string, error) {
	if token == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || !strings.HasPrefix(string(b), prefix) {
		return "", apierr.Validation("page_token", apierr.Format, "page_token is not a token from this listing")
	}
	return string(b), nil
}

// Op is one step of a multi-key transaction: the compares that must hold
// and the operation to apply.
type Op struct {
	cmps     []clientv3.Cmp
	op       clientv3.Op
	checkKey string
	// holds evaluates cmps against the key's revisions as the else branch
	// read them, to tell which step of a failed transaction failed.
	holds  func(create, mod int64) bool
	onFail func(cur *clientv3.GetResponse) error
	// For steps over a range: what the else branch reads instead of
	// checkKey, and how to tell from it whether the step's compare held.
	elseOp    *clientv3.Op
	holdsResp func(cur *clientv3.GetResponse) bool
}

// CreateOp is Create as a transaction step.
func (c *Collection[T]) CreateOp(id string, v T) (Op, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Op{}, apierr.Wrap(apierr.CodeInternal, err, "encoding %s", c.kind)
	}
	key := c.Key(id)
	return Op{
		cmps:     []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
		op:       clientv3.OpPut(key, string(b)),
		checkKey: key,
		holds:    func(create, _ int64) bool { return create == 0 },
		onFail: func(*clientv3.GetResponse) error {
			return &apierr.Error{Code: apierr.CodeAlreadyExists, Message: fmt.Sprintf("%s %q already exists", c.kind, id),
				Details: map[string]any{"kind": c.kind, "id": id}}
		},
	}, nil
}

// UpdateOp is Update as a transaction step.
func (c *Collection[T]) UpdateOp(id string, v T, modRevision int64) (Op, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Op{}, apierr.Wrap(apierr.CodeInternal, err, "encoding %s", c.kind)
	}
	key := c.Key(id)
	return Op{
		// The key must exist as well as be unchanged: a missing key's mod
		// revision compares as 0, so revision 0 alone would create it.
		cmps: []clientv3.Cmp{
			clientv3.Compare(clientv3.CreateRevision(key), ">", 0),
			clientv3.Compare(clientv3.ModRevision(key), "=", modRevision),
		},
		op:       clientv3.OpPut(key, string(b)),
		checkKey: key,
		holds:    func(create, mod int64) bool { return create > 0 && mod == modRevision },
		onFail:   c.casFailure(id, modRevision),
	}, nil
}

// DeleteOp is Delete as a transaction step.
func (c *Collection[T]) DeleteOp(id string, modRevision int64) Op {
	key := c.Key(id)
	cmp := clientv3.Compare(clientv3.ModRevision(key), "=", modRevision)
	holds := func(_, mod int64) bool { return mod == modRevision }
	if modRevision == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(key), ">", 0)
		holds = func(create, _ int64) bool { return create > 0 }
	}
	return Op{cmps: []clientv3.Cmp{cmp}, op: clientv3.OpDelete(key), checkKey: key, holds: holds, onFail: c.casFailure(id, modRevision)}
}

func (c *Collection[T]) casFailure(id string, want int64) func(*clientv3.GetResponse) error {
	return func(cur *clientv3.GetResponse) error {
		if cur == nil || len(cur.Kvs) == 0 {
			return apierr.NotFound(c.kind, id)
		}
		return &apierr.Error{Code: apierr.CodeConflict,
			Message: fmt.Sprintf("%s %q was changed concurrently (revision %d, expected %d); re-read and retry", c.kind, id, cur.Kvs[0].ModRevision, want),
			Details: map[string]any{"kind": c.kind, "id": id, "current_revision": cur.Kvs[0].ModRevision}}
	}
}

// Commit applies ops atomically: all or none. When a compare fails it
// returns the typed error of the first failing step (ALREADY_EXISTS,
// CONFLICT or NOT_FOUND). It returns the revision of the write.
func Commit(ctx context.Context, cli *clientv3.Client, ops ...Op) (int64, error) {
	var cmps []clientv3.Cmp
	thens := make([]clientv3.Op, len(ops))
	elses := make([]clientv3.Op, len(ops))
	for i, o := range ops {
		cmps = append(cmps, o.cmps...)
		thens[i], elses[i] = o.op, clientv3.OpGet(o.checkKey)
		if o.elseOp != nil {
			elses[i] = *o.elseOp
		}
	}
	// The in-process client may serve a request whose context has already
	// ended; an abandoned request must not happen at all.
	if err := ctx.Err(); err != nil {
		return 0, FromEtcd(err)
	}
	resp, err := cli.Txn(ctx).If(cmps...).Then(thens...).Else(elses...).Commit()
	if err != nil {
		return 0, FromEtcd(err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	// Find the first step whose compare fails against what the else branch read.
	for i, o := range ops {
		cur := (*clientv3.GetResponse)(resp.Responses[i].GetResponseRange())
		if o.holdsResp != nil {
			if !o.holdsResp(cur) {
				return 0, o.onFail(cur)
			}
			continue
		}
		var create, mod int64
		if len(cur.Kvs) > 0 {
			create, mod = cur.Kvs[0].CreateRevision, cur.Kvs[0].ModRevision
		}
		if !o.holds(create, mod) {
			return 0, o.onFail(cur)
		}
	}
	return 0, apierr.New(apierr.CodeConflict, "transaction lost a race; retry")
}

// PutOp writes v as id whatever is there (a marker or an index entry),
// attached to lease when lease is not 0.
func (c *Collection[T]) PutOp(id string, v T, lease clientv3.LeaseID) (Op, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Op{}, apierr.Wrap(apierr.CodeInternal, err, "encoding %s", c.kind)
	}
	key := c.Key(id)
	var opts []clientv3.OpOption
	if lease != 0 {
		opts = append(opts, clientv3.WithLease(lease))
	}
	return Op{op: clientv3.OpPut(key, string(b), opts...), checkKey: key, holds: func(int64, int64) bool { return true }}, nil
}

// DeleteAnyOp removes id if present, and is no error if it is not.
func (c *Collection[T]) DeleteAnyOp(id string) Op {
	key := c.Key(id)
	return Op{op: clientv3.OpDelete(key), checkKey: key, holds: func(int64, int64) bool { return true }}
}

// ExistsOp writes nothing; it makes the transaction fail with NOT_FOUND
// unless id exists (a parent a new child refers to).
func (c *Collection[T]) ExistsOp(id string) Op {
	key := c.Key(id)
	return Op{
		cmps:     []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), ">", 0)},
		op:       clientv3.OpGet(key, clientv3.WithCountOnly()),
		checkKey: key,
		holds:    func(create, _ int64) bool { return create > 0 },
		onFail:   func(*clientv3.GetResponse) error { return apierr.NotFound(c.kind, id) },
	}
}

// NoneUnderOp writes nothing; it makes the transaction fail with err unless
// no key exists under prefix (e.g. an org's project index, to refuse
// deleting an org that still has projects).
func NoneUnderOp(prefix string, err error) Op {
	count := clientv3.OpGet(prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	return Op{
		cmps:      []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(prefix), "=", 0).WithPrefix()},
		op:        count,
		checkKey:  prefix,
		elseOp:    &count,
		holdsResp: func(cur *clientv3.GetResponse) bool { return cur.Count == 0 },
		onFail:    func(*clientv3.GetResponse) error { return err },
	}
}
