package objstore

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

func getVersion(t *testing.T, s *Store, bucket, key, id string) (ObjectMeta, string) {
	t.Helper()
	m, f, err := s.GetObject(bucket, key, id)
	if err != nil {
		t.Fatalf("GetObject(%q, %q, %q): %v", bucket, key, id, err)
	}
	defer f.Close()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return m, string(b)
}

func mustDelete(t *testing.T, s *Store, bucket, key, id string) DeleteResult {
	t.Helper()
	res, err := s.DeleteObject(bucket, key, id)
	if err != nil {
		t.Fatalf("DeleteObject(%q, %q, %q): %v", bucket, key, id, err)
	}
	return res
}

// versionsOfKey lists every version of bucket (one page) as "key@id" with
// "!" for a delete marker and "*" for the latest.
func versionList(t *testing.T, s *Store, bucket string) []string {
	t.Helper()
	res, err := s.ListVersions(bucket, VersionListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range res.Versions {
		e := m.Key + "@" + m.VersionID
		if m.DeleteMarker {
			e += "!"
		}
		if m.IsLatest {
			e += "*"
		}
		out = append(out, e)
	}
	return out
}

func TestUnversionedBucketKeepsOneNullVersion(t *testing.T) {
	s, dir := newStore(t)
	mustBucket(t, s, "plain")
	mustPut(t, s, "plain", "k", "one")
	m := mustPut(t, s, "plain", "k", "two")
	if m.VersionID != NullVersion {
		t.Fatalf("version id = %q, want null", m.VersionID)
	}
	if got, want := versionList(t, s, "plain"), []string{"k@null*"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("versions = %v, want %v", got, want)
	}
	if files := bodyFiles(t, dir); len(files) != 1 {
		t.Fatalf("body files = %v, want the current one only", files)
	}
	if res := mustDelete(t, s, "plain", "k", ""); res != (DeleteResult{}) {
		t.Fatalf("delete in an unversioned bucket = %+v, want no marker", res)
	}
	if got := versionList(t, s, "plain"); len(got) != 0 {
		t.Fatalf("versions after delete = %v", got)
	}
	if err := s.DeleteBucket("plain"); err != nil {
		t.Fatalf("DeleteBucket after the last delete: %v", err)
	}
}

func TestVersioningEnabled(t *testing.T) {
	s, dir := newStore(t)
	mustBucket(t, s, "vbk")
	mustPut(t, s, "vbk", "k", "before") // a null version, from before versioning
	if err := s.SetBucketVersioning("vbk", VersioningEnabled); err != nil {
		t.Fatal(err)
	}
	v1 := mustPut(t, s, "vbk", "k", "first")
	v2 := mustPut(t, s, "vbk", "k", "second")
	if v1.VersionID == NullVersion || v1.VersionID == v2.VersionID {
		t.Fatalf("version ids %q, %q", v1.VersionID, v2.VersionID)
	}
	if m, body := getVersion(t, s, "vbk", "k", ""); body != "second" || m.VersionID != v2.VersionID {
		t.Fatalf("current = %q (%s)", body, m.VersionID)
	}
	for id, want := range map[string]string{v1.VersionID: "first", NullVersion: "before"} {
		if _, body := getVersion(t, s, "vbk", "k", id); body != want {
			t.Fatalf("version %s = %q, want %q", id, body, want)
		}
	}
	want := []string{"k@" + v2.VersionID + "*", "k@" + v1.VersionID, "k@null"}
	if got := versionList(t, s, "vbk"); !reflect.DeepEqual(got, want) {
		t.Fatalf("versions = %v, want %v", got, want)
	}

	// A delete adds a marker: the key is gone from reads and listings,
	// its versions stay.
	del := mustDelete(t, s, "vbk", "k", "")
	if !del.DeleteMarker || del.VersionID == "" || del.VersionID == NullVersion {
		t.Fatalf("delete = %+v, want a new marker", del)
	}
	_, _, err := s.GetObject("vbk", "k", "")
	var dm *DeleteMarkerError
	if !errors.As(err, &dm) || dm.Explicit || dm.Meta.VersionID != del.VersionID || !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("GET after delete: %v", err)
	}
	if _, err := s.HeadObject("vbk", "k", del.VersionID); !errors.As(err, &dm) || !dm.Explicit || errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("HEAD of the marker by id: %v", err)
	}
	if res, err := s.List("vbk", ListOptions{}); err != nil || len(res.Objects) != 0 {
		t.Fatalf("List after delete = %+v, %v", res.Objects, err)
	}
	if _, body := getVersion(t, s, "vbk", "k", v1.VersionID); body != "first" {
		t.Fatalf("old version after delete = %q", body)
	}
	if err := s.DeleteBucket("vbk"); !errors.Is(err, ErrBucketNotEmpty) {
		t.Fatalf("DeleteBucket with versions left: %v", err)
	}

	// Removing the marker brings v2 back; removing v2 makes v1 current.
	if res := mustDelete(t, s, "vbk", "k", del.VersionID); res != (DeleteResult{VersionID: del.VersionID, DeleteMarker: true}) {
		t.Fatalf("delete of the marker = %+v", res)
	}
	if _, body := getVersion(t, s, "vbk", "k", ""); body != "second" {
		t.Fatalf("current after removing the marker = %q", body)
	}
	mustDelete(t, s, "vbk", "k", v2.VersionID)
	if m, body := getVersion(t, s, "vbk", "k", ""); body != "first" || m.VersionID != v1.VersionID {
		t.Fatalf("current after removing v2 = %q (%s)", body, m.VersionID)
	}
	if res, err := s.List("vbk", ListOptions{}); err != nil || len(res.Objects) != 1 || res.Objects[0].ETag != etagOf("first") {
		t.Fatalf("List after removing v2 = %+v, %v", res.Objects, err)
	}
	if _, err := s.HeadObject("vbk", "k", v2.VersionID); !errors.Is(err, ErrNoSuchVersion) {
		t.Fatalf("HEAD of a removed version: %v", err)
	}
	if _, err := s.HeadObject("vbk", "k", "not-a-version"); !errors.Is(err, ErrInvalidVersionID) {
		t.Fatalf("HEAD with a malformed version id: %v", err)
	}
	mustDelete(t, s, "vbk", "k", v1.VersionID)
	mustDelete(t, s, "vbk", "k", NullVersion)
	if files := bodyFiles(t, dir); len(files) != 0 {
		t.Fatalf("body files after every version is removed = %v", files)
	}
	if err := s.DeleteBucket("vbk"); err != nil {
		t.Fatalf("DeleteBucket when empty: %v", err)
	}
}

func TestVersioningSuspended(t *testing.T) {
	s, dir := newStore(t)
	mustBucket(t, s, "sbk")
	if err := s.SetBucketVersioning("sbk", VersioningEnabled); err != nil {
		t.Fatal(err)
	}
	kept := mustPut(t, s, "sbk", "k", "kept")
	if err := s.SetBucketVersioning("sbk", VersioningSuspended); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Bucket("sbk"); b.Versioning != VersioningSuspended {
		t.Fatalf("bucket versioning = %q", b.Versioning)
	}
	mustPut(t, s, "sbk", "k", "null one")
	n2 := mustPut(t, s, "sbk", "k", "null two") // replaces the null version
	if n2.VersionID != NullVersion {
		t.Fatalf("version id while suspended = %q", n2.VersionID)
	}
	want := []string{"k@null*", "k@" + kept.VersionID}
	if got := versionList(t, s, "sbk"); !reflect.DeepEqual(got, want) {
		t.Fatalf("versions = %v, want %v", got, want)
	}
	if files := bodyFiles(t, dir); len(files) != 2 {
		t.Fatalf("body files = %v, want kept's and null two's", files)
	}
	// A delete while suspended is a null marker, replacing the null version.
	if res := mustDelete(t, s, "sbk", "k", ""); res != (DeleteResult{VersionID: NullVersion, DeleteMarker: true}) {
		t.Fatalf("delete while suspended = %+v", res)
	}
	want = []string{"k@null!*", "k@" + kept.VersionID}
	if got := versionList(t, s, "sbk"); !reflect.DeepEqual(got, want) {
		t.Fatalf("versions after delete = %v, want %v", got, want)
	}
	if files := bodyFiles(t, dir); len(files) != 1 {
		t.Fatalf("body files after delete = %v, want kept's", files)
	}
	if err := s.SetBucketVersioning("sbk", ""); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("un-versioning a bucket: %v", err)
	}
}

func TestVersionTagsAndCopy(t *testing.T) {
	s, _ := newStore(t)
	mustBucket(t, s, "tbk")
	if err := s.SetBucketVersioning("tbk", VersioningEnabled); err != nil {
		t.Fatal(err)
	}
	old := mustPut(t, s, "tbk", "k", "old")
	mustPut(t, s, "tbk", "k", "new")
	if _, err := s.SetObjectTags("tbk", "k", old.VersionID, map[string]string{"age": "old"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetObjectTags("tbk", "k", "", map[string]string{"age": "new"}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{old.VersionID: "old", "": "new"} {
		m, err := s.HeadObject("tbk", "k", id)
		if err != nil || m.Tags["age"] != want {
			t.Fatalf("tags of version %q = %v, %v; want age=%s", id, m.Tags, err, want)
		}
	}
	res, err := s.List("tbk", ListOptions{})
	if err != nil || len(res.Objects) != 1 || res.Objects[0].Tags["age"] != "new" {
		t.Fatalf("listed current version = %+v, %v", res.Objects, err)
	}
	// Restoring an old version is a copy of it onto its own key.
	restored, err := s.CopyObject("tbk", "k", old.VersionID, "tbk", "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, body := getVersion(t, s, "tbk", "k", ""); body != "old" || m.VersionID != restored.VersionID || m.Tags["age"] != "old" {
		t.Fatalf("after restoring: %q %+v", body, m)
	}
	if got := versionList(t, s, "tbk"); len(got) != 3 {
		t.Fatalf("versions after restore = %v", got)
	}
}

// TestListVersionsPages walks every page size over keys with several
// versions, delete markers and common prefixes, and compares the pages
// joined with one whole listing.
func TestListVersionsPages(t *testing.T) {
	s, _ := newStore(t)
	mustBucket(t, s, "lvb")
	if err := s.SetBucketVersioning("lvb", VersioningEnabled); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := 0; i < 6; i++ {
		keys = append(keys, fmt.Sprintf("k%d", i), fmt.Sprintf("dir%d/x", i%2))
	}
	for round := 0; round < 3; round++ {
		for i, k := range keys {
			if (i+round)%4 == 3 {
				mustDelete(t, s, "lvb", k, "")
			} else {
				mustPut(t, s, "lvb", k, fmt.Sprintf("%s-%d", k, round))
			}
		}
	}
	for _, delim := range []string{"", "/"} {
		whole, err := s.ListVersions("lvb", VersionListOptions{Delimiter: delim})
		if err != nil {
			t.Fatal(err)
		}
		var wholeList []string
		for _, m := range whole.Versions {
			wholeList = append(wholeList, fmt.Sprintf("%s@%s/%v/%v", m.Key, m.VersionID, m.DeleteMarker, m.IsLatest))
		}
		wholeList = append(wholeList, whole.CommonPrefixes...)
		// A key's first version in the whole listing is its latest.
		seen := map[string]bool{}
		for _, m := range whole.Versions {
			if m.IsLatest == seen[m.Key] {
				t.Fatalf("delimiter %q: %s@%s IsLatest=%v", delim, m.Key, m.VersionID, m.IsLatest)
			}
			seen[m.Key] = true
		}
		if delim == "/" && !reflect.DeepEqual(whole.CommonPrefixes, []string{"dir0/", "dir1/"}) {
			t.Fatalf("common prefixes = %v", whole.CommonPrefixes)
		}
		for size := 1; size <= 7; size++ {
			var got []string
			o := VersionListOptions{Delimiter: delim, MaxKeys: size}
			for page := 0; ; page++ {
				if page > 100 {
					t.Fatal("listing does not end")
				}
				res, err := s.ListVersions("lvb", o)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Versions)+len(res.CommonPrefixes) > size {
					t.Fatalf("page of %d entries, max %d", len(res.Versions)+len(res.CommonPrefixes), size)
				}
				for _, m := range res.Versions {
					got = append(got, fmt.Sprintf("%s@%s/%v/%v", m.Key, m.VersionID, m.DeleteMarker, m.IsLatest))
				}
				got = append(got, res.CommonPrefixes...)
				if !res.IsTruncated {
					break
				}
				o.KeyMarker, o.VersionIDMarker = res.NextKeyMarker, res.NextVersionIDMarker
			}
			// Prefixes sort among keys in the joined pages; compare as sets of
			// strings in the order versions come, prefixes apart.
			if strings.Join(sortedVersionsFirst(got), ",") != strings.Join(sortedVersionsFirst(wholeList), ",") {
				t.Fatalf("delimiter %q, pages of %d:\n got %v\nwant %v", delim, size, got, wholeList)
			}
		}
	}
	if _, err := s.ListVersions("lvb", VersionListOptions{VersionIDMarker: "0000000000000001"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("version-id-marker without key-marker: %v", err)
	}
}

// sortedVersionsFirst keeps versions in their order and moves the common
// prefixes (no "@") after them.
func sortedVersionsFirst(in []string) []string {
	var vs, ps []string
	for _, e := range in {
		if strings.Contains(e, "@") {
			vs = append(vs, e)
		} else {
			ps = append(ps, e)
		}
	}
	return append(vs, ps...)
}

// TestOldVersionsSurviveReopen: Open's garbage collection must know that
// noncurrent versions' bodies are live.
func TestOldVersionsSurviveReopen(t *testing.T) {
	s, dir := newStore(t)
	mustBucket(t, s, "rbk")
	if err := s.SetBucketVersioning("rbk", VersioningEnabled); err != nil {
		t.Fatal(err)
	}
	v1 := mustPut(t, s, "rbk", "k", "v1")
	mustPut(t, s, "rbk", "k", "v2")
	mustDelete(t, s, "rbk", "k", "")
	s.Close()
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	if _, body := getVersion(t, s2, "rbk", "k", v1.VersionID); body != "v1" {
		t.Fatalf("v1 after reopen = %q", body)
	}
	if files := bodyFiles(t, dir); len(files) != 2 {
		t.Fatalf("body files after reopen = %v", files)
	}
}
