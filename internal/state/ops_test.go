package state_test

import (
	"encoding/json"
	"errors"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/state"
	"github.com/photoncloud/photon/internal/testutil"
)

// opsSnapshot is every key under prefix with its mod revision, and the
// store's revision, read straight from etcd.
type opsSnapshot struct {
	rev  int64
	mods map[string]int64
}

func opsSnap(t *testing.T, cli *clientv3.Client, prefix string) opsSnapshot {
	t.Helper()
	resp, err := cli.Get(testutil.Context(t), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	s := opsSnapshot{rev: resp.Header.Revision, mods: map[string]int64{}}
	for _, kv := range resp.Kvs {
		s.mods[string(kv.Key)] = kv.ModRevision
	}
	return s
}

// opsUnchanged fails unless nothing was written since before: same keys at
// the same revisions, and the store's revision has not moved.
func opsUnchanged(t *testing.T, cli *clientv3.Client, prefix string, before opsSnapshot) {
	t.Helper()
	after := opsSnap(t, cli, prefix)
	if after.rev != before.rev {
		t.Errorf("the store's revision moved %d -> %d: a failed transaction wrote", before.rev, after.rev)
	}
	if len(after.mods) != len(before.mods) {
		t.Errorf("keys %v -> %v", before.mods, after.mods)
	}
	for k, m := range before.mods {
		if after.mods[k] != m {
			t.Errorf("key %s changed (mod revision %d -> %d)", k, m, after.mods[k])
		}
	}
}

// opsMust returns a function that unwraps an (Op, error) pair, failing t
// on the error.
func opsMust(t *testing.T) func(state.Op, error) state.Op {
	return func(op state.Op, err error) state.Op {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
}

// opsKV is one stored key as etcd has it.
type opsKV struct {
	value string
	lease int64
}

// opsRaw reads one key straight from etcd (nil when absent).
func opsRaw(t *testing.T, cli *clientv3.Client, key string) *opsKV {
	t.Helper()
	resp, err := cli.Get(testutil.Context(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	return &opsKV{value: string(resp.Kvs[0].Value), lease: resp.Kvs[0].Lease}
}

// TestPutOp checks PutOp writes whatever is there — absent or present, no
// revision asked — and, with a lease, that the key lives exactly as long
// as the lease.
func TestPutOp(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	must := opsMust(t)
	marks := state.NewCollection[vpc](cli, "/test/putop/marks/", "mark")

	t.Run("absent then present", func(t *testing.T) {
		rev, err := state.Commit(testutil.Context(t), cli, must(marks.PutOp("m1", vpc{Name: "one"}, 0)))
		if err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, marks, "m1")
		if got.Value != (vpc{Name: "one"}) || got.ModRevision != rev || got.CreateRevision != rev {
			t.Errorf("after the first put: %+v at commit %d", got, rev)
		}
		if raw := opsRaw(t, cli, marks.Key("m1")); raw == nil || raw.lease != 0 {
			t.Errorf("raw = %+v, want no lease", raw)
		}
		// Over an existing key: no ALREADY_EXISTS, no CONFLICT.
		rev2, err := state.Commit(testutil.Context(t), cli, must(marks.PutOp("m1", vpc{Name: "two", Size: 2}, 0)))
		if err != nil {
			t.Fatalf("put over an existing key: %v", err)
		}
		got2 := mustGet(t, marks, "m1")
		if got2.Value != (vpc{Name: "two", Size: 2}) || got2.ModRevision != rev2 || got2.CreateRevision != rev || rev2 <= rev {
			t.Errorf("after the second put: %+v (commit %d, first %d)", got2, rev2, rev)
		}
		// The stored value is the JSON of the value, as Create writes it.
		var v vpc
		if raw := opsRaw(t, cli, marks.Key("m1")); raw == nil || json.Unmarshal([]byte(raw.value), &v) != nil || v != got2.Value {
			t.Errorf("raw value %+v is not the value's JSON", raw)
		}
	})

	t.Run("with a lease", func(t *testing.T) {
		lease, err := cli.Grant(testutil.Context(t), 600)
		if err != nil {
			t.Fatal(err)
		}
		other, err := cli.Grant(testutil.Context(t), 600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = cli.Revoke(testutil.Context(t), other.ID) })
		_, err = state.Commit(testutil.Context(t), cli,
			must(marks.PutOp("leased-1", vpc{Name: "l1"}, lease.ID)),
			must(marks.PutOp("leased-2", vpc{Name: "l2"}, lease.ID)),
			must(marks.PutOp("other", vpc{Name: "o"}, other.ID)),
			must(marks.PutOp("forever", vpc{Name: "f"}, 0)),
		)
		if err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]clientv3.LeaseID{"leased-1": lease.ID, "leased-2": lease.ID, "other": other.ID, "forever": 0} {
			raw := opsRaw(t, cli, marks.Key(id))
			if raw == nil || clientv3.LeaseID(raw.lease) != want {
				t.Errorf("%s = %+v, want lease %x", id, raw, want)
			}
		}

		if _, err := cli.Revoke(testutil.Context(t), lease.ID); err != nil {
			t.Fatal(err)
		}
		wantMissing(t, marks, "leased-1")
		wantMissing(t, marks, "leased-2")
		mustGet(t, marks, "other")
		mustGet(t, marks, "forever")
	})

	t.Run("an unknown lease fails the whole transaction", func(t *testing.T) {
		before := opsSnap(t, cli, "/test/putop/")
		_, err := state.Commit(testutil.Context(t), cli,
			must(marks.PutOp("fine", vpc{}, 0)),
			must(marks.PutOp("lost", vpc{}, clientv3.LeaseID(0x7fff_ffff_0001))),
		)
		if err == nil {
			t.Fatal("a put on a lease that does not exist succeeded")
		}
		opsUnchanged(t, cli, "/test/putop/", before)
	})

	t.Run("no write when another step fails", func(t *testing.T) {
		before := opsSnap(t, cli, "/test/putop/")
		_, err := state.Commit(testutil.Context(t), cli,
			must(marks.PutOp("m1", vpc{Name: "clobber"}, 0)),
			marks.ExistsOp("nope"),
		)
		testutil.WantCode(t, err, apierr.CodeNotFound)
		opsUnchanged(t, cli, "/test/putop/", before)
	})

	t.Run("unencodable value", func(t *testing.T) {
		bad := state.NewCollection[chan int](cli, "/test/putop/bad/", "bad")
		_, err := bad.PutOp("x", make(chan int), 0)
		testutil.WantCode(t, err, apierr.CodeInternal)
	})
}

// TestDeleteAnyOp checks DeleteAnyOp removes a key that is there and is no
// error when it is not.
func TestDeleteAnyOp(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	must := opsMust(t)
	c := state.NewCollection[vpc](cli, "/test/deleteany/", "vpc")
	if _, err := c.Create(testutil.Context(t), "here", vpc{Name: "h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(testutil.Context(t), "kept", vpc{Name: "k"}); err != nil {
		t.Fatal(err)
	}

	t.Run("present", func(t *testing.T) {
		if _, err := state.Commit(testutil.Context(t), cli, c.DeleteAnyOp("here")); err != nil {
			t.Fatal(err)
		}
		wantMissing(t, c, "here")
		mustGet(t, c, "kept")
	})
	t.Run("absent", func(t *testing.T) {
		for _, id := range []string{"here", "never"} {
			if _, err := state.Commit(testutil.Context(t), cli, c.DeleteAnyOp(id)); err != nil {
				t.Errorf("DeleteAnyOp(%s) of an absent key: %v", id, err)
			}
		}
		mustGet(t, c, "kept")
	})
	t.Run("absent among other steps", func(t *testing.T) {
		rev, err := state.Commit(testutil.Context(t), cli,
			c.DeleteAnyOp("never"),
			must(c.CreateOp("new", vpc{Name: "n"})),
			c.DeleteAnyOp("kept"),
		)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, c, "new"); got.ModRevision != rev {
			t.Errorf("new at %d, commit at %d", got.ModRevision, rev)
		}
		wantMissing(t, c, "kept")
	})
	t.Run("no delete when another step fails", func(t *testing.T) {
		if _, err := c.Create(testutil.Context(t), "survivor", vpc{}); err != nil {
			t.Fatal(err)
		}
		before := opsSnap(t, cli, "/test/deleteany/")
		_, err := state.Commit(testutil.Context(t), cli, c.DeleteAnyOp("survivor"), must(c.CreateOp("new", vpc{})))
		testutil.WantCode(t, err, apierr.CodeAlreadyExists)
		opsUnchanged(t, cli, "/test/deleteany/", before)
		mustGet(t, c, "survivor")
	})
}

// TestExistsOp checks ExistsOp writes nothing, lets the transaction through
// when its key exists, and otherwise fails it with NOT_FOUND naming the
// kind and id — applying none of the other steps.
func TestExistsOp(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	must := opsMust(t)
	orgs := state.NewCollection[vpc](cli, "/test/exists/orgs/", "org")
	projects := state.NewCollection[vpc](cli, "/test/exists/projects/", "project")
	parent, err := orgs.Create(testutil.Context(t), "org-a", vpc{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := orgs.Create(testutil.Context(t), "org-gone", vpc{}); err != nil {
		t.Fatal(err)
	}
	if err := orgs.Delete(testutil.Context(t), "org-gone", 0); err != nil {
		t.Fatal(err)
	}

	t.Run("present", func(t *testing.T) {
		rev, err := state.Commit(testutil.Context(t), cli, orgs.ExistsOp("org-a"), must(projects.CreateOp("p1", vpc{Name: "p1"})))
		if err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, projects, "p1"); got.ModRevision != rev {
			t.Errorf("p1 at %d, commit %d", got.ModRevision, rev)
		}
		// The check itself wrote nothing.
		if got := mustGet(t, orgs, "org-a"); got.ModRevision != parent.ModRevision || got.Value != parent.Value {
			t.Errorf("org-a changed: %+v, was %+v", got, parent)
		}
	})

	tests := []struct {
		name   string
		ops    func() []state.Op
		code   apierr.Code
		kind   string
		id     string
		absent []string // project ids the transaction must not have created
	}{
		{"never existed", func() []state.Op {
			return []state.Op{orgs.ExistsOp("org-z"), must(projects.CreateOp("p2", vpc{}))}
		}, apierr.CodeNotFound, "org", "org-z", []string{"p2"}},
		{"deleted", func() []state.Op {
			return []state.Op{must(projects.CreateOp("p3", vpc{})), orgs.ExistsOp("org-gone")}
		}, apierr.CodeNotFound, "org", "org-gone", []string{"p3"}},
		{"with a put and a delete", func() []state.Op {
			return []state.Op{
				must(projects.PutOp("p4", vpc{}, 0)),
				projects.DeleteAnyOp("p1"),
				orgs.ExistsOp("org-z"),
			}
		}, apierr.CodeNotFound, "org", "org-z", []string{"p4"}},
		{"the first failing step names the error", func() []state.Op {
			return []state.Op{orgs.ExistsOp("org-z"), must(projects.CreateOp("p1", vpc{}))}
		}, apierr.CodeNotFound, "org", "org-z", nil},
		{"an earlier failing step wins", func() []state.Op {
			return []state.Op{must(projects.CreateOp("p1", vpc{})), orgs.ExistsOp("org-z")}
		}, apierr.CodeAlreadyExists, "project", "p1", nil},
		{"a project of the same id is not the org", func() []state.Op {
			return []state.Op{orgs.ExistsOp("p1"), must(projects.CreateOp("p5", vpc{}))}
		}, apierr.CodeNotFound, "org", "p1", []string{"p5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := opsSnap(t, cli, "/test/exists/")
			_, err := state.Commit(testutil.Context(t), cli, tc.ops()...)
			e := testutil.WantCode(t, err, tc.code)
			if e.Details["kind"] != tc.kind || e.Details["id"] != tc.id {
				t.Errorf("details %v, want kind %q id %q", e.Details, tc.kind, tc.id)
			}
			if apierr.HTTPStatus(e.Code) != apierr.HTTPStatus(tc.code) {
				t.Errorf("status %d", apierr.HTTPStatus(e.Code))
			}
			opsUnchanged(t, cli, "/test/exists/", before)
			for _, id := range tc.absent {
				wantMissing(t, projects, id)
			}
			mustGet(t, projects, "p1")
		})
	}
}

// TestNoneUnderOp checks NoneUnderOp fails the transaction with the given
// error while any key lies under its prefix (applying nothing), and lets it
// through once the prefix is empty.
func TestNoneUnderOp(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	must := opsMust(t)
	orgs := state.NewCollection[vpc](cli, "/test/noneunder/orgs/", "org")
	index := state.NewCollection[struct{}](cli, "/test/noneunder/index/", "index")
	const under = "/test/noneunder/index/org-a/"
	hasProjects := &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "org-a still has projects",
		Details: map[string]any{"kind": "org", "id": "org-a"}}
	put := func(t *testing.T, id string, lease clientv3.LeaseID) {
		t.Helper()
		if _, err := state.Commit(testutil.Context(t), cli, must(index.PutOp(id, struct{}{}, lease))); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"org-a", "org-ab", "org-b"} {
		if _, err := orgs.Create(testutil.Context(t), id, vpc{Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	// Neighbours that share a string prefix but not the key prefix.
	put(t, "org-ab/p1", 0)
	put(t, "org-a", 0) // the prefix without its slash is not under it

	// deleteOrg is the transaction IAM's org delete makes.
	deleteOrg := func(t *testing.T) error {
		t.Helper()
		before := opsSnap(t, cli, "/test/noneunder/")
		_, err := state.Commit(testutil.Context(t), cli, orgs.DeleteOp("org-a", 0), state.NoneUnderOp(under, hasProjects))
		if err != nil {
			opsUnchanged(t, cli, "/test/noneunder/", before)
		}
		return err
	}

	t.Run("one key under the prefix", func(t *testing.T) {
		put(t, "org-a/p1", 0)
		err := deleteOrg(t)
		if err != hasProjects {
			t.Fatalf("err = %v, want the given error itself", err)
		}
		mustGet(t, orgs, "org-a")
	})
	t.Run("several keys under the prefix", func(t *testing.T) {
		put(t, "org-a/p2", 0)
		put(t, "org-a/deeper/p3", 0)
		if err := deleteOrg(t); !errors.Is(err, hasProjects) {
			t.Fatalf("err = %v, want %v", err, hasProjects)
		}
	})
	t.Run("the failing step is found among others", func(t *testing.T) {
		before := opsSnap(t, cli, "/test/noneunder/")
		_, err := state.Commit(testutil.Context(t), cli,
			orgs.ExistsOp("org-b"),
			must(orgs.PutOp("org-c", vpc{}, 0)),
			state.NoneUnderOp(under, hasProjects),
			orgs.DeleteAnyOp("org-b"),
		)
		if err != hasProjects {
			t.Fatalf("err = %v, want the given error", err)
		}
		opsUnchanged(t, cli, "/test/noneunder/", before)

		// An earlier failing step is reported instead.
		_, err = state.Commit(testutil.Context(t), cli, orgs.ExistsOp("org-z"), state.NoneUnderOp(under, hasProjects))
		e := testutil.WantCode(t, err, apierr.CodeNotFound)
		if e.Details["id"] != "org-z" {
			t.Errorf("details %v", e.Details)
		}
		opsUnchanged(t, cli, "/test/noneunder/", before)
	})
	t.Run("a leased key counts until its lease ends", func(t *testing.T) {
		if _, err := state.Commit(testutil.Context(t), cli,
			index.DeleteAnyOp("org-a/p1"), index.DeleteAnyOp("org-a/p2"), index.DeleteAnyOp("org-a/deeper/p3")); err != nil {
			t.Fatal(err)
		}
		lease, err := cli.Grant(testutil.Context(t), 600)
		if err != nil {
			t.Fatal(err)
		}
		put(t, "org-a/p9", lease.ID)
		if err := deleteOrg(t); err != hasProjects {
			t.Fatalf("err = %v with a leased key under the prefix", err)
		}
		if _, err := cli.Revoke(testutil.Context(t), lease.ID); err != nil {
			t.Fatal(err)
		}
		if n := rawCount(t, cli, under); n != 0 {
			t.Fatalf("%d keys under the prefix after the lease ended", n)
		}
	})
	t.Run("empty prefix", func(t *testing.T) {
		if err := deleteOrg(t); err != nil {
			t.Fatalf("delete with nothing under the prefix: %v", err)
		}
		wantMissing(t, orgs, "org-a")
		// The neighbours were neither in the way nor touched.
		mustGet(t, orgs, "org-ab")
		if n := rawCount(t, cli, "/test/noneunder/index/org-ab/"); n != 1 {
			t.Errorf("%d keys under org-ab/, want 1", n)
		}
	})
	t.Run("a prefix nothing was ever under", func(t *testing.T) {
		if _, err := state.Commit(testutil.Context(t), cli, state.NoneUnderOp("/test/noneunder/index/org-b/", hasProjects),
			orgs.DeleteOp("org-b", 0)); err != nil {
			t.Fatal(err)
		}
		wantMissing(t, orgs, "org-b")
	})
}
