package objstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// entry is one listed item: a key, or a common prefix.
type entry struct {
	name   string
	prefix bool
}

// modelList is the brute-force reference: walk every key in byte order.
func modelList(keys []string, o ListOptions, start string) []entry {
	var out []entry
	for _, k := range keys {
		if !strings.HasPrefix(k, o.Prefix) || k <= start {
			continue
		}
		e := entry{name: k}
		if cp := commonPrefix(k, o.Prefix, o.Delimiter); cp != "" {
			e = entry{name: cp, prefix: true}
		}
		if e.prefix && e.name == start {
			continue // the start point was this prefix: its group was listed
		}
		if len(out) > 0 && out[len(out)-1] == e {
			continue
		}
		out = append(out, e)
	}
	return out
}

// entries merges a page's objects and prefixes back into listing order.
func entries(r ListResult) []entry {
	var out []entry
	for _, o := range r.Objects {
		out = append(out, entry{name: o.Key})
	}
	for _, p := range r.CommonPrefixes {
		out = append(out, entry{name: p, prefix: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// putKeysBulk writes index entries (not versions: List reads only the index)
// for many keys in large transactions, all naming
// one shared body, for tests where PutObject's per-key fsyncs would dominate.
// The keys must not be deleted or overwritten through the Store afterwards.
func putKeysBulk(t *testing.T, s *Store, bucket string, keys []string) {
	t.Helper()
	mustPut(t, s, bucket, "\x01shared-body", "bulk")
	var shared objectRecord
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		_, shared, err = readVersion(tx, bucket, "\x01shared-body", "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	br, err := s.lookupBucket(bucket)
	if err != nil {
		t.Fatal(err)
	}
	val, err := json.Marshal(shared)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(keys); i += 20000 {
		chunk := keys[i:min(i+20000, len(keys))]
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bktObjects).Bucket([]byte(br.ID))
			b.FillPercent = 0.9
			for _, k := range chunk {
				if err := b.Put([]byte(k), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestListByteOrderAndGrouping(t *testing.T) {
	s, _ := newStore(t)
	mustBucket(t, s, "bkt")
	for _, k := range []string{"ab", "a0", "a/", "a", "a/b", "a/b/c", "b", "é", "z"} {
		mustPut(t, s, "bkt", k, k)
	}
	tests := []struct {
		o        ListOptions
		keys     []string
		prefixes []string
	}{
		{ListOptions{}, []string{"a", "a/", "a/b", "a/b/c", "a0", "ab", "b", "z", "é"}, nil},
		{ListOptions{Delimiter: "/"}, []string{"a", "a0", "ab", "b", "z", "é"}, []string{"a/"}},
		{ListOptions{Prefix: "a/", Delimiter: "/"}, []string{"a/", "a/b"}, []string{"a/b/"}},
		{ListOptions{Prefix: "a", Delimiter: "/"}, []string{"a", "a0", "ab"}, []string{"a/"}},
		{ListOptions{StartAfter: "a/", Delimiter: "/"}, []string{"a0", "ab", "b", "z", "é"}, nil},
		{ListOptions{StartAfter: "a/", Prefix: "a/"}, []string{"a/b", "a/b/c"}, nil},
		{ListOptions{StartAfter: "a"}, []string{"a/", "a/b", "a/b/c", "a0", "ab", "b", "z", "é"}, nil},
		{ListOptions{Prefix: "zz"}, nil, nil},
		{ListOptions{StartAfter: "é"}, nil, nil},
		{ListOptions{Delimiter: "b"}, []string{"a", "a/", "a0", "z", "é"}, []string{"a/b", "ab", "b"}},
	}
	for _, tc := range tests {
		r, err := s.List("bkt", tc.o)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range r.Objects {
			keys = append(keys, o.Key)
		}
		if !reflect.DeepEqual(keys, tc.keys) || !reflect.DeepEqual(r.CommonPrefixes, tc.prefixes) || r.IsTruncated ||
			r.KeyCount != len(tc.keys)+len(tc.prefixes) {
			t.Errorf("List(%+v) = keys %q prefixes %q truncated %v count %d; want %q %q", tc.o, keys, r.CommonPrefixes, r.IsTruncated, r.KeyCount, tc.keys, tc.prefixes)
		}
	}
	// Objects in a listing carry their metadata.
	r, err := s.List("bkt", ListOptions{Prefix: "ab"})
	if err != nil || len(r.Objects) != 1 || r.Objects[0].ETag != etagOf("ab") || r.Objects[0].Size != 2 || r.Objects[0].Bucket != "bkt" {
		t.Fatalf("List(prefix ab) = %+v, %v", r, err)
	}
	if _, err := s.List("bkt", ListOptions{ContinuationToken: "!!not base64"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad token: %v", err)
	}
	if _, err := s.List("nobucket", ListOptions{}); !errors.Is(err, ErrBucketNotFound) {
		t.Fatalf("missing bucket: %v", err)
	}
}

// TestListMatchesModel puts 2,000 keys through PutObject and compares random
// listings, page by page, with the brute-force model.
func TestListMatchesModel(t *testing.T) {
	s, _ := newStore(t)
	mustBucket(t, s, "bkt")
	rng := rand.New(rand.NewPCG(7, 11))
	alphabet := []string{"a", "b", "0", "/", "-", "é", "日", "~", "//"}
	set := map[string]bool{"a": true, "a/": true, "a0": true, "ab": true, "a/b": true, "a//c": true}
	for len(set) < 2000 {
		var sb strings.Builder
		for n := 1 + rng.IntN(7); n > 0; n-- {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		set[sb.String()] = true
	}
	var keys []string
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(keys); i += 4 {
				if _, err := s.PutObject("bkt", keys[i], strings.NewReader(keys[i]), ObjectMeta{}, nil); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	delims := []string{"", "/", "a", "é", "//", "日"}
	pageSizes := []int{1, 2, 3, 7, 50, 0}
	for q := 0; q < 150; q++ {
		o := ListOptions{Delimiter: delims[rng.IntN(len(delims))], MaxKeys: pageSizes[rng.IntN(len(pageSizes))]}
		switch rng.IntN(3) {
		case 1:
			k := keys[rng.IntN(len(keys))]
			o.Prefix = k[:rng.IntN(len(k)+1)]
		case 2:
			o.Prefix = alphabet[rng.IntN(len(alphabet))]
		}
		if rng.IntN(3) == 0 {
			o.StartAfter = keys[rng.IntN(len(keys))]
			if rng.IntN(2) == 0 {
				o.StartAfter = o.StartAfter[:rng.IntN(len(o.StartAfter)+1)]
			}
		}
		want := modelList(keys, o, o.StartAfter)
		v1 := rng.IntN(2) == 0 // page with V1 markers instead of tokens
		var got []entry
		page := o
		for pages := 0; ; pages++ {
			if pages > len(keys)+1 {
				t.Fatalf("List(%+v): pagination does not end", o)
			}
			r, err := s.List("bkt", page)
			if err != nil {
				t.Fatal(err)
			}
			es := entries(r)
			if r.KeyCount != len(es) {
				t.Fatalf("KeyCount %d != %d entries", r.KeyCount, len(es))
			}
			got = append(got, es...)
			if !r.IsTruncated {
				break
			}
			if r.NextContinuationToken == "" || len(es) == 0 {
				t.Fatalf("List(%+v): truncated page without token or entries", page)
			}
			if v1 {
				marker := r.NextMarker
				if o.Delimiter == "" {
					if r.NextMarker != "" {
						t.Fatalf("NextMarker set without delimiter")
					}
					marker = es[len(es)-1].name // V1 clients use the last key
				} else if marker != es[len(es)-1].name {
					t.Fatalf("NextMarker %q, last entry %q", marker, es[len(es)-1].name)
				}
				page.StartAfter, page.ContinuationToken = marker, ""
			} else {
				page.ContinuationToken = r.NextContinuationToken
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("List(%+v) v1=%v:\n got %d entries %v\nwant %d entries %v", o, v1, len(got), got, len(want), want)
		}
		// The first page alone also matches the model's first page.
		r, err := s.List("bkt", o)
		if err != nil {
			t.Fatal(err)
		}
		n := o.MaxKeys
		if n == 0 {
			n = MaxListKeys
		}
		wantPage := want[:min(n, len(want))]
		if es := entries(r); !(len(es) == 0 && len(wantPage) == 0) && !reflect.DeepEqual(es, wantPage) || r.IsTruncated != (len(want) > n) {
			t.Fatalf("first page of List(%+v) = %v truncated=%v, want %v truncated=%v", o, es, r.IsTruncated, wantPage, len(want) > n)
		}
	}
}

func TestList100kKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("100k keys: skipped in -short mode")
	}
	s, _ := newStore(t)
	mustBucket(t, s, "bkt")
	const n = 100000
	keys := make([]string, 0, n)
	for i := 0; i < n; i++ {
		// Mixed widths and a '/' so byte order differs from numeric order.
		keys = append(keys, fmt.Sprintf("logs/%d/part-%x", i%97, i))
	}
	putKeysBulk(t, s, "bkt", keys)
	keys = append(keys, "\x01shared-body")
	sort.Strings(keys)

	var got []string
	var pages int
	var slowest time.Duration
	startAll := time.Now()
	o := ListOptions{MaxKeys: 1000}
	for {
		t0 := time.Now()
		r, err := s.List("bkt", o)
		if err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(t0))
		pages++
		if len(r.Objects) != 1000 && r.IsTruncated {
			t.Fatalf("page %d: %d objects but truncated", pages, len(r.Objects))
		}
		for _, m := range r.Objects {
			got = append(got, m.Key)
		}
		if !r.IsTruncated {
			break
		}
		o.ContinuationToken = r.NextContinuationToken
	}
	total := time.Since(startAll)
	t.Logf("listed %d keys in %d pages: %v total, %v per page on average, slowest page %v",
		len(got), pages, total, total/time.Duration(pages), slowest)
	if !reflect.DeepEqual(got, keys) {
		t.Fatalf("listing returned %d keys, want %d in order", len(got), len(keys))
	}
	if pages != (len(keys)+999)/1000 {
		t.Fatalf("pages = %d", pages)
	}
	// With a delimiter the 97 groups come back as prefixes, in byte order.
	r, err := s.List("bkt", ListOptions{Prefix: "logs/", Delimiter: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.CommonPrefixes) != 97 || r.CommonPrefixes[0] != "logs/0/" || r.CommonPrefixes[1] != "logs/1/" || r.CommonPrefixes[2] != "logs/10/" {
		t.Fatalf("prefixes = %d %q", len(r.CommonPrefixes), r.CommonPrefixes[:min(3, len(r.CommonPrefixes))])
	}
}
