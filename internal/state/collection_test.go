package state_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/state"
	"github.com/photoncloud/photon/internal/testutil"
)

// vpc is a typical stored resource.
type vpc struct {
	Name string `json:"name"`
	CIDR string `json:"cidr"`
	Size int    `json:"size"`
}

// mustGet reads id and fails the test on any error.
func mustGet[T any](t *testing.T, c *state.Collection[T], id string) state.Item[T] {
	t.Helper()
	it, err := c.Get(testutil.Context(t), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return it
}

// wantMissing fails unless id is NOT_FOUND.
func wantMissing[T any](t *testing.T, c *state.Collection[T], id string) {
	t.Helper()
	_, err := c.Get(testutil.Context(t), id)
	testutil.WantCode(t, err, apierr.CodeNotFound)
}

// rawCount counts the keys under prefix straight from etcd, bypassing the
// code under test, to prove what a failed operation did not write.
func rawCount(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(testutil.Context(t), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("raw count: %v", err)
	}
	return resp.Count
}

// TestCollectionCRUD covers the compare-and-swap contract on a real
// ChainFire node: creates never overwrite, updates and deletes win only
// against the revision they name, and a losing write changes nothing.
func TestCollectionCRUD(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	newColl := func(t *testing.T) *state.Collection[vpc] {
		return state.NewCollection[vpc](cli, "/test/crud/"+t.Name()+"/", "vpc")
	}

	t.Run("create then get", func(t *testing.T) {
		c := newColl(t)
		created, err := c.Create(testutil.Context(t), "v1", vpc{Name: "one", CIDR: "10.0.0.0/16", Size: 3})
		if err != nil {
			t.Fatal(err)
		}
		if created.ID != "v1" || created.CreateRevision <= 0 || created.ModRevision != created.CreateRevision {
			t.Errorf("created = %+v", created)
		}
		got := mustGet(t, c, "v1")
		if got.Value != (vpc{Name: "one", CIDR: "10.0.0.0/16", Size: 3}) || got.ID != "v1" ||
			got.CreateRevision != created.CreateRevision || got.ModRevision != created.ModRevision {
			t.Errorf("got %+v, created %+v", got, created)
		}
		if c.Key("v1") != "/test/crud/"+t.Name()+"/v1" {
			t.Errorf("Key = %q", c.Key("v1"))
		}
	})
	t.Run("create twice", func(t *testing.T) {
		c := newColl(t)
		first, err := c.Create(testutil.Context(t), "v1", vpc{Name: "first"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Create(testutil.Context(t), "v1", vpc{Name: "second"})
		e := testutil.WantCode(t, err, apierr.CodeAlreadyExists)
		if e.Details["id"] != "v1" || e.Details["kind"] != "vpc" || apierr.HTTPStatus(e.Code) != 409 {
			t.Errorf("err = %+v", e)
		}
		if got := mustGet(t, c, "v1"); got.Value.Name != "first" || got.ModRevision != first.ModRevision {
			t.Errorf("the losing create changed the item: %+v", got)
		}
	})
	t.Run("get missing", func(t *testing.T) {
		c := newColl(t)
		_, err := c.Get(testutil.Context(t), "nope")
		e := testutil.WantCode(t, err, apierr.CodeNotFound)
		if e.Details["id"] != "nope" || e.Details["kind"] != "vpc" || !strings.Contains(e.Message, `vpc "nope"`) {
			t.Errorf("err = %+v", e)
		}
	})
	t.Run("update", func(t *testing.T) {
		c := newColl(t)
		created, _ := c.Create(testutil.Context(t), "v1", vpc{Name: "a"})
		upd, err := c.Update(testutil.Context(t), "v1", vpc{Name: "b"}, created.ModRevision)
		if err != nil {
			t.Fatal(err)
		}
		if upd.ModRevision <= created.ModRevision || upd.Value.Name != "b" {
			t.Errorf("updated = %+v", upd)
		}
		got := mustGet(t, c, "v1")
		if got.Value.Name != "b" || got.ModRevision != upd.ModRevision || got.CreateRevision != created.CreateRevision {
			t.Errorf("after update got %+v", got)
		}
		// The new revision is the one to name next.
		if _, err := c.Update(testutil.Context(t), "v1", vpc{Name: "c"}, upd.ModRevision); err != nil {
			t.Errorf("second update with the fresh revision: %v", err)
		}
	})
	t.Run("update stale revision", func(t *testing.T) {
		c := newColl(t)
		created, _ := c.Create(testutil.Context(t), "v1", vpc{Name: "a"})
		upd, err := c.Update(testutil.Context(t), "v1", vpc{Name: "b"}, created.ModRevision)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Update(testutil.Context(t), "v1", vpc{Name: "stale"}, created.ModRevision)
		e := testutil.WantCode(t, err, apierr.CodeConflict)
		if cur, ok := e.Details["current_revision"].(int64); !ok || cur != upd.ModRevision {
			t.Errorf("details.current_revision = %#v, want int64 %d", e.Details["current_revision"], upd.ModRevision)
		}
		if e.Details["id"] != "v1" {
			t.Errorf("details = %v", e.Details)
		}
		if got := mustGet(t, c, "v1"); got.Value.Name != "b" || got.ModRevision != upd.ModRevision {
			t.Errorf("the conflicting update changed the item: %+v", got)
		}
	})
	t.Run("update revision zero of existing", func(t *testing.T) {
		c := newColl(t)
		created, _ := c.Create(testutil.Context(t), "v1", vpc{Name: "a"})
		_, err := c.Update(testutil.Context(t), "v1", vpc{Name: "b"}, 0)
		testutil.WantCode(t, err, apierr.CodeConflict)
		if got := mustGet(t, c, "v1"); got.Value.Name != "a" || got.ModRevision != created.ModRevision {
			t.Errorf("changed: %+v", got)
		}
	})
	t.Run("update missing", func(t *testing.T) {
		c := newColl(t)
		// A revision from some other key, and revision 0: neither may
		// resurrect a missing item (Update replaces; only Create creates).
		other, _ := c.Create(testutil.Context(t), "other", vpc{})
		for _, rev := range []int64{other.ModRevision, 0, 1 << 40, -1} {
			_, err := c.Update(testutil.Context(t), "gone", vpc{Name: "x"}, rev)
			e := testutil.WantCode(t, err, apierr.CodeNotFound)
			if e.Details["id"] != "gone" {
				t.Errorf("rev %d: details %v", rev, e.Details)
			}
			wantMissing(t, c, "gone")
		}
	})
	t.Run("update deleted", func(t *testing.T) {
		c := newColl(t)
		created, _ := c.Create(testutil.Context(t), "v1", vpc{Name: "a"})
		if err := c.Delete(testutil.Context(t), "v1", created.ModRevision); err != nil {
			t.Fatal(err)
		}
		_, err := c.Update(testutil.Context(t), "v1", vpc{Name: "b"}, created.ModRevision)
		testutil.WantCode(t, err, apierr.CodeNotFound)
		wantMissing(t, c, "v1")
	})
	t.Run("delete", func(t *testing.T) {
		c := newColl(t)
		tests := []struct {
			name    string
			exists  bool
			rev     func(created int64) int64
			wantErr apierr.Code // "" means deleted
		}{
			{"any revision", true, func(int64) int64 { return 0 }, ""},
			{"right revision", true, func(c int64) int64 { return c }, ""},
			{"stale revision", true, func(c int64) int64 { return c - 1 }, apierr.CodeConflict},
			{"future revision", true, func(c int64) int64 { return c + 1000 }, apierr.CodeConflict},
			{"missing, any revision", false, func(int64) int64 { return 0 }, apierr.CodeNotFound},
			{"missing, some revision", false, func(int64) int64 { return 5 }, apierr.CodeNotFound},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				id := fmt.Sprintf("d%d", i)
				var created int64
				if tc.exists {
					it, err := c.Create(testutil.Context(t), id, vpc{Name: id})
					if err != nil {
						t.Fatal(err)
					}
					created = it.ModRevision
				}
				err := c.Delete(testutil.Context(t), id, tc.rev(created))
				if tc.wantErr == "" {
					if err != nil {
						t.Fatalf("Delete: %v", err)
					}
					wantMissing(t, c, id)
					return
				}
				e := testutil.WantCode(t, err, tc.wantErr)
				if tc.wantErr == apierr.CodeConflict {
					if e.Details["current_revision"] != created {
						t.Errorf("current_revision %v, want %d", e.Details["current_revision"], created)
					}
					if got := mustGet(t, c, id); got.ModRevision != created {
						t.Errorf("a conflicting delete changed the item: %+v", got)
					}
				}
			})
		}
	})
	t.Run("recreate after delete", func(t *testing.T) {
		c := newColl(t)
		first, _ := c.Create(testutil.Context(t), "v1", vpc{Name: "a"})
		if err := c.Delete(testutil.Context(t), "v1", 0); err != nil {
			t.Fatal(err)
		}
		second, err := c.Create(testutil.Context(t), "v1", vpc{Name: "b"})
		if err != nil {
			t.Fatalf("create after delete: %v", err)
		}
		if second.CreateRevision <= first.CreateRevision {
			t.Errorf("revisions went backwards: %+v then %+v", first, second)
		}
		// The old revision must not delete the new incarnation.
		err = c.Delete(testutil.Context(t), "v1", first.ModRevision)
		testutil.WantCode(t, err, apierr.CodeConflict)
	})
	t.Run("corrupt value", func(t *testing.T) {
		c := newColl(t)
		if _, err := cli.Put(testutil.Context(t), c.Key("bad"), "{not json"); err != nil {
			t.Fatal(err)
		}
		_, err := c.Get(testutil.Context(t), "bad")
		e := testutil.WantCode(t, err, apierr.CodeInternal)
		if !strings.Contains(e.Message, "corrupt") || e.Err == nil {
			t.Errorf("err = %+v", e)
		}
		_, err = c.List(testutil.Context(t), "", 10, "")
		testutil.WantCode(t, err, apierr.CodeInternal)
	})
	t.Run("cancelled context", func(t *testing.T) {
		c := newColl(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Get(ctx, "x")
		testutil.WantCode(t, err, apierr.CodeUnavailable)
		_, err = c.Create(ctx, "x", vpc{})
		testutil.WantCode(t, err, apierr.CodeUnavailable)
		wantMissing(t, c, "x")
	})
	t.Run("too large", func(t *testing.T) {
		// Over the store's request limit (1.5 MiB): the in-process client
		// has no gRPC framing, so this is etcd's own size check.
		c := newColl(t)
		_, err := c.Create(testutil.Context(t), "huge", vpc{Name: strings.Repeat("x", 1700<<10)})
		testutil.WantCode(t, err, apierr.CodePayloadTooLarge)
		wantMissing(t, c, "huge")
	})
	t.Run("expired deadline", func(t *testing.T) {
		c := newColl(t)
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		_, err := c.List(ctx, "", 5, "")
		testutil.WantCode(t, err, apierr.CodeUnavailable)
	})
}

// listAll walks every page of a listing and fails on a page larger than
// limit or an empty page with a token (a client would loop on it).
func listAll[T any](t *testing.T, c *state.Collection[T], idPrefix string, limit int) (ids []string, pages int) {
	t.Helper()
	token := ""
	for {
		page, err := c.List(testutil.Context(t), idPrefix, limit, token)
		if err != nil {
			t.Fatalf("List page %d: %v", pages, err)
		}
		pages++
		if limit > 0 && len(page.Items) > limit {
			t.Fatalf("page %d has %d items, limit %d", pages, len(page.Items), limit)
		}
		if len(page.Items) == 0 && page.NextPageToken != "" {
			t.Fatalf("page %d is empty but has a next token", pages)
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
			if it.CreateRevision <= 0 || it.ModRevision < it.CreateRevision {
				t.Errorf("item %s has revisions %d/%d", it.ID, it.CreateRevision, it.ModRevision)
			}
		}
		if page.NextPageToken == "" {
			return ids, pages
		}
		if pages > 1000 {
			t.Fatal("listing does not end")
		}
		token = page.NextPageToken
	}
}

// TestList checks pagination walks every item once, in key order, for
// several page sizes, and that page tokens are bound to their listing: a
// token replayed against another prefix must not leak other keys.
func TestList(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	c := state.NewCollection[vpc](cli, "/test/list/items/", "vpc")
	var want []string
	for i := range 25 {
		want = append(want, fmt.Sprintf("item-%02d", i))
	}
	// Create in random order: the listing's order must come from the keys.
	for _, i := range rand.Perm(len(want)) {
		if _, err := c.Create(testutil.Context(t), want[i], vpc{Name: want[i], Size: i}); err != nil {
			t.Fatal(err)
		}
	}
	// Neighbours that share the string prefix but not the collection.
	for _, k := range []string{"/test/list/items", "/test/list/items0", "/test/list/itemsX/a", "/test/list/a"} {
		if _, err := cli.Put(testutil.Context(t), k, `{"name":"intruder"}`); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		limit, pages int
	}{{7, 4}, {1, 25}, {5, 5}, {24, 2}, {25, 1}, {26, 1}, {100, 1}, {0, 1}} {
		t.Run(fmt.Sprintf("limit %d", tc.limit), func(t *testing.T) {
			got, pages := listAll(t, c, "", tc.limit)
			if !slices.Equal(got, want) {
				t.Errorf("listed %v\nwant   %v", got, want)
			}
			if pages != tc.pages {
				t.Errorf("%d pages, want %d", pages, tc.pages)
			}
		})
	}
	t.Run("values decoded", func(t *testing.T) {
		page, err := c.List(testutil.Context(t), "item-1", 3, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 3 || page.Items[0].ID != "item-10" || page.Items[0].Value != (vpc{Name: "item-10", Size: 10}) {
			t.Errorf("page = %+v", page)
		}
	})
	t.Run("id prefix", func(t *testing.T) {
		got, _ := listAll(t, c, "item-1", 4)
		if want := want[10:20]; !slices.Equal(got, want) {
			t.Errorf("listed %v, want %v", got, want)
		}
		if got, pages := listAll(t, c, "zzz", 4); len(got) != 0 || pages != 1 {
			t.Errorf("unmatched prefix listed %v in %d pages", got, pages)
		}
	})
	t.Run("items added between pages", func(t *testing.T) {
		d := state.NewCollection[vpc](cli, "/test/list/growing/", "vpc")
		for _, id := range []string{"b", "d", "f"} {
			if _, err := d.Create(testutil.Context(t), id, vpc{}); err != nil {
				t.Fatal(err)
			}
		}
		p1, err := d.List(testutil.Context(t), "", 2, "")
		if err != nil || len(p1.Items) != 2 {
			t.Fatalf("page 1 = %+v, %v", p1, err)
		}
		// One key before the cursor, one after: only the later one shows up,
		// and nothing already seen repeats.
		for _, id := range []string{"a", "e"} {
			if _, err := d.Create(testutil.Context(t), id, vpc{}); err != nil {
				t.Fatal(err)
			}
		}
		p2, err := d.List(testutil.Context(t), "", 2, p1.NextPageToken)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range p2.Items {
			ids = append(ids, it.ID)
		}
		if !slices.Equal(ids, []string{"e", "f"}) {
			t.Errorf("page 2 = %v, want [e f]", ids)
		}
	})

	first, err := c.List(testutil.Context(t), "item-0", 2, "")
	if err != nil || first.NextPageToken == "" {
		t.Fatalf("first page %+v, %v", first, err)
	}
	other := state.NewCollection[vpc](cli, "/test/list/other/", "vpc")
	for _, tc := range []struct {
		name  string
		coll  *state.Collection[vpc]
		idPfx string
		token string
	}{
		{"token from another collection", other, "", first.NextPageToken},
		{"token from another id prefix", c, "item-1", first.NextPageToken},
		{"token for a key outside the collection", c, "", state.EncodePageToken("/test/list/a")},
		{"token for the neighbour prefix", c, "", state.EncodePageToken("/test/list/items0")},
		{"garbage", c, "", "!!not*base64!!"},
		{"padded base64", c, "", first.NextPageToken + "=="},
		{"standard base64 alphabet", c, "", "/+/+"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.coll.List(testutil.Context(t), tc.idPfx, 2, tc.token)
			e := testutil.WantCode(t, err, apierr.CodeValidation)
			if e.Details["field"] != "page_token" {
				t.Errorf("details %v, want field page_token", e.Details)
			}
		})
	}
}

// TestListRaw checks the raw listing ChainFire's REST API uses: it returns
// pairs with their revisions and the store revision, and over the whole
// keyspace (prefix "") its tokens still work.
func TestListRaw(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	put, err := cli.Put(testutil.Context(t), "/raw/a", "1")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"/raw/b", "/raw/c", "/zzz"} {
		if _, err := cli.Put(testutil.Context(t), k, "x"); err != nil {
			t.Fatal(err)
		}
	}
	kvs, next, rev, err := state.ListRaw(testutil.Context(t), cli, "/raw/", 2, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != 2 || string(kvs[0].Key) != "/raw/a" || string(kvs[0].Value) != "1" ||
		kvs[0].ModRevision != put.Header.Revision || kvs[0].Version != 1 || next == "" || rev < put.Header.Revision+3 {
		t.Fatalf("ListRaw = %+v, %q, %d", kvs, next, rev)
	}
	kvs, next, _, err = state.ListRaw(testutil.Context(t), cli, "/raw/", 2, next)
	if err != nil || len(kvs) != 1 || string(kvs[0].Key) != "/raw/c" || next != "" {
		t.Fatalf("page 2 = %+v, %q, %v", kvs, next, err)
	}
	// Whole keyspace in pages of one: every key once, in order.
	var all []string
	token := ""
	for i := 0; i < 100; i++ {
		kvs, next, _, err := state.ListRaw(testutil.Context(t), cli, "", 1, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			all = append(all, string(kv.Key))
		}
		if next == "" {
			break
		}
		token = next
	}
	// The node's own registry entry is part of the keyspace too.
	want := []string{"/photon/registry/chainfire/node-1", "/raw/a", "/raw/b", "/raw/c", "/zzz"}
	if !slices.Equal(all, want) {
		t.Errorf("whole keyspace = %v, want %v", all, want)
	}
	_, _, _, err = state.ListRaw(testutil.Context(t), cli, "/raw/", 2, "%%%")
	testutil.WantCode(t, err, apierr.CodeValidation)
}

// TestCommit checks multi-key transactions are all-or-nothing and report the
// typed error of the first step that fails, so a handler creating a VPC and
// its default subnet never leaves half of them behind.
func TestCommit(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	vpcs := state.NewCollection[vpc](cli, "/test/commit/vpcs/", "vpc")
	subnets := state.NewCollection[vpc](cli, "/test/commit/subnets/", "subnet")
	existing, err := vpcs.Create(testutil.Context(t), "existing", vpc{Name: "old"})
	if err != nil {
		t.Fatal(err)
	}
	doomed, err := subnets.Create(testutil.Context(t), "doomed", vpc{Name: "doomed"})
	if err != nil {
		t.Fatal(err)
	}
	mustOp := func(op state.Op, err error) state.Op {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return op
	}

	tests := []struct {
		name string
		ops  func() []state.Op
		want apierr.Code
	}{
		{"create of existing among good ops", func() []state.Op {
			return []state.Op{
				mustOp(vpcs.CreateOp("new1", vpc{Name: "n"})),
				mustOp(vpcs.CreateOp("existing", vpc{Name: "clobber"})),
				mustOp(subnets.CreateOp("s1", vpc{})),
			}
		}, apierr.CodeAlreadyExists},
		{"stale update among good ops", func() []state.Op {
			return []state.Op{
				mustOp(vpcs.CreateOp("new2", vpc{})),
				mustOp(vpcs.UpdateOp("existing", vpc{Name: "clobber"}, existing.ModRevision-1)),
				subnets.DeleteOp("doomed", 0),
			}
		}, apierr.CodeConflict},
		{"update of missing", func() []state.Op {
			return []state.Op{
				mustOp(vpcs.UpdateOp("existing", vpc{Name: "clobber"}, existing.ModRevision)),
				mustOp(vpcs.UpdateOp("missing", vpc{}, 0)),
			}
		}, apierr.CodeNotFound},
		{"delete of missing", func() []state.Op {
			return []state.Op{subnets.DeleteOp("doomed", doomed.ModRevision), subnets.DeleteOp("missing", 0)}
		}, apierr.CodeNotFound},
		{"first failing step wins", func() []state.Op {
			return []state.Op{
				mustOp(vpcs.UpdateOp("existing", vpc{}, 1)),
				mustOp(subnets.CreateOp("doomed", vpc{})),
			}
		}, apierr.CodeConflict},
		{"first failing step wins, create first", func() []state.Op {
			return []state.Op{
				mustOp(subnets.CreateOp("doomed", vpc{})),
				mustOp(vpcs.UpdateOp("existing", vpc{}, 1)),
			}
		}, apierr.CodeAlreadyExists},
		{"first failing step wins, other order", func() []state.Op {
			return []state.Op{
				subnets.DeleteOp("missing", 0),
				mustOp(vpcs.UpdateOp("existing", vpc{}, 1)),
			}
		}, apierr.CodeNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, err := cli.Get(testutil.Context(t), "/test/commit/", clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			_, err = state.Commit(testutil.Context(t), cli, tc.ops()...)
			testutil.WantCode(t, err, tc.want)
			after, err := cli.Get(testutil.Context(t), "/test/commit/", clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			// Nothing changed: same keys, same mod revisions, same store revision.
			if after.Header.Revision != before.Header.Revision || len(after.Kvs) != len(before.Kvs) {
				t.Fatalf("a failed commit wrote: revision %d -> %d, %d -> %d keys",
					before.Header.Revision, after.Header.Revision, len(before.Kvs), len(after.Kvs))
			}
			for i := range after.Kvs {
				if string(after.Kvs[i].Key) != string(before.Kvs[i].Key) || after.Kvs[i].ModRevision != before.Kvs[i].ModRevision {
					t.Errorf("key %s changed", after.Kvs[i].Key)
				}
			}
		})
	}

	t.Run("all succeed at one revision", func(t *testing.T) {
		rev, err := state.Commit(testutil.Context(t), cli,
			mustOp(vpcs.CreateOp("v-new", vpc{Name: "new"})),
			mustOp(vpcs.UpdateOp("existing", vpc{Name: "updated"}, existing.ModRevision)),
			mustOp(subnets.CreateOp("s-new", vpc{Name: "sub"})),
			subnets.DeleteOp("doomed", doomed.ModRevision),
		)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range []state.Item[vpc]{mustGet(t, vpcs, "v-new"), mustGet(t, vpcs, "existing"), mustGet(t, subnets, "s-new")} {
			if it.ModRevision != rev {
				t.Errorf("%s at revision %d, commit at %d", it.ID, it.ModRevision, rev)
			}
		}
		if got := mustGet(t, vpcs, "existing"); got.Value.Name != "updated" {
			t.Errorf("existing = %+v", got)
		}
		wantMissing(t, subnets, "doomed")
	})
	t.Run("no ops", func(t *testing.T) {
		if rev, err := state.Commit(testutil.Context(t), cli); err != nil || rev <= 0 {
			t.Errorf("empty commit = %d, %v", rev, err)
		}
	})
	t.Run("unencodable value", func(t *testing.T) {
		bad := state.NewCollection[chan int](cli, "/test/commit/bad/", "bad")
		_, err := bad.CreateOp("x", make(chan int))
		testutil.WantCode(t, err, apierr.CodeInternal)
		_, err = bad.Create(testutil.Context(t), "x", make(chan int))
		testutil.WantCode(t, err, apierr.CodeInternal)
		_, err = bad.Update(testutil.Context(t), "x", make(chan int), 1)
		testutil.WantCode(t, err, apierr.CodeInternal)
		if n := rawCount(t, cli, "/test/commit/bad/"); n != 0 {
			t.Errorf("%d keys written", n)
		}
	})
}

// TestConcurrentUpdates races many writers naming the same revision, as
// concurrent API calls do after reading the same item: exactly one may win
// and every other must get CONFLICT, or lost updates go unnoticed.
func TestConcurrentUpdates(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	c := state.NewCollection[vpc](cli, "/test/race/", "vpc")
	for round := range 3 {
		id := fmt.Sprintf("v%d", round)
		created, err := c.Create(testutil.Context(t), id, vpc{Name: "start"})
		if err != nil {
			t.Fatal(err)
		}
		const writers = 16
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []state.Item[vpc]
			codes   = map[apierr.Code]int{}
			ready   = make(chan struct{})
		)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-ready
				it, err := c.Update(context.Background(), id, vpc{Name: fmt.Sprintf("writer-%d", w), Size: w}, created.ModRevision)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					winners = append(winners, it)
				} else {
					codes[apierr.CodeOf(err)]++
				}
			}()
		}
		close(ready)
		wg.Wait()
		if len(winners) != 1 || codes[apierr.CodeConflict] != writers-1 {
			t.Fatalf("round %d: %d winners, errors %v; want 1 winner and %d CONFLICTs", round, len(winners), codes, writers-1)
		}
		got := mustGet(t, c, id)
		if got.Value != winners[0].Value || got.ModRevision != winners[0].ModRevision {
			t.Errorf("round %d: stored %+v, winner %+v", round, got, winners[0])
		}
	}
}

// TestThroughGRPCClient runs the store over an ordinary etcd client dialled
// to ChainFire's gRPC port, as a service in another process would, and
// checks errors that only exist on the wire (message-size limits, deadlines)
// map to the same typed errors.
func TestThroughGRPCClient(t *testing.T) {
	s := testutil.StartChainFire(t)
	cli := testutil.EtcdClient(t, s.GRPCAddr())
	c := state.NewCollection[vpc](cli, "/test/grpc/", "vpc")

	created, err := c.Create(testutil.Context(t), "v1", vpc{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Create(testutil.Context(t), "v1", vpc{Name: "b"})
	testutil.WantCode(t, err, apierr.CodeAlreadyExists)
	upd, err := c.Update(testutil.Context(t), "v1", vpc{Name: "b"}, created.ModRevision)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Update(testutil.Context(t), "v1", vpc{Name: "c"}, created.ModRevision)
	if e := testutil.WantCode(t, err, apierr.CodeConflict); e.Details["current_revision"] != upd.ModRevision {
		t.Errorf("details %v", e.Details)
	}
	// The in-process client sees the same data: one store, two clients.
	if got := mustGet(t, state.NewCollection[vpc](s.Client(), "/test/grpc/", "vpc"), "v1"); got.Value.Name != "b" {
		t.Errorf("in-process read %+v", got)
	}
	for i := range 9 {
		if _, err := c.Create(testutil.Context(t), fmt.Sprintf("w%d", i), vpc{}); err != nil {
			t.Fatal(err)
		}
	}
	ids, pages := listAll(t, c, "w", 4)
	if len(ids) != 9 || pages != 3 {
		t.Errorf("listed %v in %d pages", ids, pages)
	}
	_, err = c.Get(testutil.Context(t), "missing")
	testutil.WantCode(t, err, apierr.CodeNotFound)

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
		defer cancel()
		time.Sleep(time.Millisecond)
		_, err := c.Get(ctx, "v1")
		testutil.WantCode(t, err, apierr.CodeUnavailable)
	})
	t.Run("too large", func(t *testing.T) {
		// Over the server's request limit (1.5 MiB by default) but under the
		// client's send limit, and over both: each is PAYLOAD_TOO_LARGE.
		for _, size := range []int{1700 << 10, 3 << 20} {
			_, err := c.Create(testutil.Context(t), "huge", vpc{Name: strings.Repeat("x", size)})
			testutil.WantCode(t, err, apierr.CodePayloadTooLarge)
		}
		wantMissing(t, c, "huge")
	})
}
