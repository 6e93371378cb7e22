package objstore

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func mustBucket(t *testing.T, s *Store, name string) {
	t.Helper()
	if _, err := s.CreateBucket(name, "p1", ""); err != nil {
		t.Fatalf("CreateBucket(%q): %v", name, err)
	}
}

func mustPut(t *testing.T, s *Store, bucket, key, body string) ObjectMeta {
	t.Helper()
	m, err := s.PutObject(bucket, key, strings.NewReader(body), ObjectMeta{}, nil)
	if err != nil {
		t.Fatalf("PutObject(%q, %q): %v", bucket, key, err)
	}
	return m
}

func readBody(t *testing.T, s *Store, bucket, key string) (ObjectMeta, string) {
	t.Helper()
	m, f, err := s.GetObject(bucket, key, "")
	if err != nil {
		t.Fatalf("GetObject(%q, %q): %v", bucket, key, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return m, string(b)
}

func etagOf(body string) string {
	sum := md5.Sum([]byte(body))
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// regularFiles lists every regular file under dir (relative paths).
func regularFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bodyFiles lists object body and temp files (everything but meta.db).
func bodyFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, f := range regularFiles(t, dir) {
		if f != "meta.db" {
			out = append(out, f)
		}
	}
	return out
}

func TestBucketNameRules(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"abc", true},
		{"my-bucket.example", true},
		{"metrics", true},
		{"health", true},
		{"123", true},
		{strings.Repeat("a", 63), true},
		{"a1-b2.c3", true},
		{"ab", false},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"MyBucket", false},
		{"my_bucket", false},
		{"my bucket", false},
		{"-abc", false},
		{"abc-", false},
		{".abc", false},
		{"abc.", false},
		{"a..b", false},
		{"a.-b", false},
		{"a-.b", false},
		{"192.168.5.4", false},
		{"10.0.0.1", false},
		{"xn--abc", false},
		{"sthree-abc", false},
		{"amzn-s3-demo-x", false},
		{"abc-s3alias", false},
		{"abc--ol-s3", false},
		{"abc.mrap", false},
		{"abc--x-s3", false},
		{"-/health", false},
		{"ab/c", false},
		{"über", false},
		{"1.2.3", true}, // three octets is not an IPv4 address
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateBucketName(tc.name)
			if tc.ok && err != nil {
				t.Fatalf("ValidateBucketName(%q) = %v, want ok", tc.name, err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalidBucketName) {
				t.Fatalf("ValidateBucketName(%q) = %v, want ErrInvalidBucketName", tc.name, err)
			}
		})
	}
}

func TestBucketLifecycle(t *testing.T) {
	s, _ := newStore(t)
	b, err := s.CreateBucket("zeta", "p1", "")
	if err != nil {
		t.Fatal(err)
	}
	if b.ACL != ACLPrivate || b.ProjectID != "p1" || b.CreatedAt.IsZero() {
		t.Fatalf("CreateBucket = %+v", b)
	}
	if _, err := s.CreateBucket("alpha", "p1", ACLPublicRead); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateBucket("other", "p2", ""); err != nil {
		t.Fatal(err)
	}
	// Names are global: another project cannot take one.
	if _, err := s.CreateBucket("zeta", "p2", ""); !errors.Is(err, ErrBucketExists) {
		t.Fatalf("duplicate name in other project: %v", err)
	}
	if _, err := s.CreateBucket("bad_name", "p1", ""); !errors.Is(err, ErrInvalidBucketName) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := s.CreateBucket("fine", "p1", "public-read-write"); !errors.Is(err, ErrInvalidACL) {
		t.Fatalf("bad acl: %v", err)
	}
	got, err := s.ListBuckets("p1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "alpha" || got[1].Name != "zeta" {
		t.Fatalf("ListBuckets(p1) = %+v", got)
	}
	if got, _ := s.ListBuckets("p3"); len(got) != 0 {
		t.Fatalf("ListBuckets(p3) = %+v", got)
	}
	if err := s.SetBucketACL("zeta", ACLPublicRead); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Bucket("zeta"); err != nil || b.ACL != ACLPublicRead {
		t.Fatalf("Bucket after SetBucketACL = %+v, %v", b, err)
	}
	if err := s.SetBucketACL("zeta", "bogus"); !errors.Is(err, ErrInvalidACL) {
		t.Fatalf("SetBucketACL bogus: %v", err)
	}
	if err := s.SetBucketACL("nope", ACLPrivate); !errors.Is(err, ErrBucketNotFound) {
		t.Fatalf("SetBucketACL missing: %v", err)
	}
	mustPut(t, s, "zeta", "k", "v")
	if err := s.DeleteBucket("zeta"); !errors.Is(err, ErrBucketNotEmpty) {
		t.Fatalf("DeleteBucket non-empty: %v", err)
	}
	if _, err := s.DeleteObject("zeta", "k", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBucket("zeta"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bucket("zeta"); !errors.Is(err, ErrBucketNotFound) {
		t.Fatalf("Bucket after delete: %v", err)
	}
	if err := s.DeleteBucket("zeta"); !errors.Is(err, ErrBucketNotFound) {
		t.Fatalf("DeleteBucket twice: %v", err)
	}
	if _, err := s.PutObject("zeta", "k", strings.NewReader("x"), ObjectMeta{}, nil); !errors.Is(err, ErrBucketNotFound) {
		t.Fatalf("PutObject in deleted bucket: %v", err)
	}
	// Re-created under the same name, the bucket starts empty.
	mustBucket(t, s, "zeta")
	if _, err := s.HeadObject("zeta", "k", ""); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("old key visible in re-created bucket: %v", err)
	}
}

func TestObjectRoundTrip(t *testing.T) {
	s, dir := newStore(t)
	mustBucket(t, s, "bkt1")
	mustBucket(t, s, "bkt2")

	empty := mustPut(t, s, "bkt1", "empty", "")
	if empty.ETag != `"d41d8cd98f00b204e9800998ecf8427e"` || empty.Size != 0 {
		t.Fatalf("empty object meta = %+v", empty)
	}

	in := ObjectMeta{
		ContentType: "text/plain; charset=utf-8",
		UserMeta:    map[string]string{"color": "blue", "n": "1"},
		Headers:     map[string]string{"Content-Encoding": "gzip", "Cache-Control": "no-cache", "Content-Disposition": "attachment"},
	}
	body := "hello, object store"
	put, err := s.PutObject("bkt1", "dir/hello.txt", strings.NewReader(body), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if put.ETag != etagOf(body) || put.Size != int64(len(body)) || put.LastModified.IsZero() {
		t.Fatalf("PutObject meta = %+v", put)
	}
	head, err := s.HeadObject("bkt1", "dir/hello.txt", "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(head, put) {
		t.Fatalf("HeadObject = %+v, want %+v", head, put)
	}
	if head.Bucket != "bkt1" || head.Key != "dir/hello.txt" || head.ContentType != in.ContentType ||
		!reflect.DeepEqual(head.UserMeta, in.UserMeta) || !reflect.DeepEqual(head.Headers, in.Headers) {
		t.Fatalf("HeadObject lost metadata: %+v", head)
	}
	got, gotBody := readBody(t, s, "bkt1", "dir/hello.txt")
	if gotBody != body || !reflect.DeepEqual(got, put) {
		t.Fatalf("GetObject = %+v %q", got, gotBody)
	}
	// Ranged read through the returned file.
	_, f, err := s.GetObject("bkt1", "dir/hello.txt", "")
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 6)
	if _, err := io.ReadFull(io.NewSectionReader(f, 7, 6), part); err != nil || string(part) != "object" {
		t.Fatalf("range read = %q, %v", part, err)
	}
	// Overwrite and delete while f is open: f still reads the old body.
	mustPut(t, s, "bkt1", "dir/hello.txt", "replaced")
	if _, err := s.DeleteObject("bkt1", "dir/hello.txt", ""); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
	f.Close()
	if err != nil || string(all) != body {
		t.Fatalf("open file after overwrite+delete = %q, %v", all, err)
	}
	if _, err := s.HeadObject("bkt1", "dir/hello.txt", ""); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("HeadObject after delete: %v", err)
	}
	if _, _, err := s.GetObject("bkt1", "dir/hello.txt", ""); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("GetObject after delete: %v", err)
	}
	if _, err := s.DeleteObject("bkt1", "dir/hello.txt", ""); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if _, err := s.DeleteObject("nobucket", "k", ""); !errors.Is(err, ErrBucketNotFound) {
		t.Fatalf("DeleteObject in missing bucket: %v", err)
	}
	if _, err := s.HeadObject("nobucket", "k", ""); !errors.Is(err, ErrBucketNotFound) {
		t.Fatalf("HeadObject in missing bucket: %v", err)
	}

	// CopyObject: metadata copied (nil) or replaced.
	src, err := s.PutObject("bkt1", "src", strings.NewReader(body), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := s.CopyObject("bkt1", "src", "", "bkt2", "copy", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Bucket != "bkt2" || cp.Key != "copy" || cp.ETag != src.ETag || cp.Size != src.Size ||
		cp.ContentType != in.ContentType || !reflect.DeepEqual(cp.UserMeta, in.UserMeta) || !reflect.DeepEqual(cp.Headers, in.Headers) {
		t.Fatalf("CopyObject(COPY) = %+v", cp)
	}
	repl := &ObjectMeta{ContentType: "application/json", UserMeta: map[string]string{"x": "y"}}
	cp2, err := s.CopyObject("bkt1", "src", "", "bkt1", "copy2", repl)
	if err != nil {
		t.Fatal(err)
	}
	if cp2.ContentType != "application/json" || !reflect.DeepEqual(cp2.UserMeta, repl.UserMeta) || cp2.Headers != nil || cp2.ETag != src.ETag {
		t.Fatalf("CopyObject(REPLACE) = %+v", cp2)
	}
	// The copy is independent of its source.
	if _, err := s.DeleteObject("bkt1", "src", ""); err != nil {
		t.Fatal(err)
	}
	if _, b := readBody(t, s, "bkt2", "copy"); b != body {
		t.Fatalf("copy body after source delete = %q", b)
	}
	// Copy onto itself with new metadata keeps the body.
	if _, err := s.CopyObject("bkt2", "copy", "", "bkt2", "copy", repl); err != nil {
		t.Fatal(err)
	}
	if m, b := readBody(t, s, "bkt2", "copy"); b != body || m.ContentType != "application/json" {
		t.Fatalf("self-copy = %+v %q", m, b)
	}
	if _, err := s.CopyObject("bkt1", "missing", "", "bkt2", "x", nil); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("copy missing source: %v", err)
	}
	if _, err := s.CopyObject("bkt2", "copy", "", "nobucket", "x", nil); !errors.Is(err, ErrBucketNotFound) {
		t.Fatalf("copy to missing bucket: %v", err)
	}
	// Exactly one body file per live object: empty, copy2, copy.
	if files := bodyFiles(t, dir); len(files) != 3 {
		t.Fatalf("body files = %v, want 3", files)
	}
}

func TestOverwriteKeepsOneFile(t *testing.T) {
	s, dir := newStore(t)
	mustBucket(t, s, "bkt")
	for i := 0; i < 5; i++ {
		mustPut(t, s, "bkt", "k", fmt.Sprintf("version %d", i))
	}
	m, body := readBody(t, s, "bkt", "k")
	if body != "version 4" || m.ETag != etagOf(body) {
		t.Fatalf("after overwrites: %+v %q", m, body)
	}
	if files := bodyFiles(t, dir); len(files) != 1 {
		t.Fatalf("body files = %v, want 1", files)
	}
}

func TestConcurrentPutsSameKey(t *testing.T) {
	s, dir := newStore(t)
	mustBucket(t, s, "bkt")
	bodies := map[string]bool{}
	var list []string
	for i := 0; i < 8; i++ {
		b := strings.Repeat(fmt.Sprintf("writer-%d;", i), 2000+i*500)
		bodies[b] = true
		list = append(list, b)
	}
	mustPut(t, s, "bkt", "k", list[0])

	stop := make(chan struct{})
	var readers sync.WaitGroup
	errc := make(chan error, 4)
	for r := 0; r < 3; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				m, f, err := s.GetObject("bkt", "k", "")
				if err != nil {
					errc <- err
					return
				}
				got, err := io.ReadAll(f)
				f.Close()
				if err != nil {
					errc <- err
					return
				}
				if !bodies[string(got)] || etagOf(string(got)) != m.ETag || int64(len(got)) != m.Size {
					errc <- fmt.Errorf("torn read: %d bytes, meta %+v", len(got), m)
					return
				}
			}
		}()
	}
	var writers sync.WaitGroup
	for round := 0; round < 5; round++ {
		for _, b := range list {
			writers.Add(1)
			go func() {
				defer writers.Done()
				if _, err := s.PutObject("bkt", "k", strings.NewReader(b), ObjectMeta{}, nil); err != nil {
					errc <- err
				}
			}()
		}
		writers.Wait()
	}
	close(stop)
	readers.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	m, body := readBody(t, s, "bkt", "k")
	if !bodies[body] || m.ETag != etagOf(body) {
		t.Fatalf("final object is not one of the bodies: %+v", m)
	}
	if files := bodyFiles(t, dir); len(files) != 1 {
		t.Fatalf("body files after concurrent puts = %v, want 1", files)
	}
}

// failingReader yields n bytes, then fails as a signature verifier would.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

func TestFailingBodyChangesNothing(t *testing.T) {
	s, dir := newStore(t)
	mustBucket(t, s, "bkt")
	before := mustPut(t, s, "bkt", "k", "original")
	errTampered := errors.New("signature mismatch")
	for _, key := range []string{"k", "fresh"} {
		_, err := s.PutObject("bkt", key, &failingReader{n: 200000, err: errTampered}, ObjectMeta{}, nil)
		if !errors.Is(err, errTampered) {
			t.Fatalf("PutObject(%q) with failing body: %v, want the reader's error", key, err)
		}
	}
	m, body := readBody(t, s, "bkt", "k")
	if body != "original" || !reflect.DeepEqual(m, before) {
		t.Fatalf("object changed by failed put: %+v %q", m, body)
	}
	if _, err := s.HeadObject("bkt", "fresh", ""); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("failed put created a key: %v", err)
	}
	if files := bodyFiles(t, dir); len(files) != 1 {
		t.Fatalf("files after failed puts = %v, want only the original body", files)
	}
}

func TestBadDigestChangesNothing(t *testing.T) {
	s, dir := newStore(t)
	mustBucket(t, s, "bkt")
	before := mustPut(t, s, "bkt", "k", "original")
	wrong := md5.Sum([]byte("something else"))
	if _, err := s.PutObject("bkt", "k", strings.NewReader("new body"), ObjectMeta{}, wrong[:]); !errors.Is(err, ErrBadDigest) {
		t.Fatalf("mismatched MD5: %v, want ErrBadDigest", err)
	}
	m, body := readBody(t, s, "bkt", "k")
	if body != "original" || !reflect.DeepEqual(m, before) {
		t.Fatalf("object changed: %+v %q", m, body)
	}
	if files := bodyFiles(t, dir); len(files) != 1 {
		t.Fatalf("files = %v", files)
	}
	right := md5.Sum([]byte("new body"))
	if _, err := s.PutObject("bkt", "k", strings.NewReader("new body"), ObjectMeta{}, right[:]); err != nil {
		t.Fatalf("matching MD5: %v", err)
	}
	if _, body := readBody(t, s, "bkt", "k"); body != "new body" {
		t.Fatalf("body = %q", body)
	}
}

func TestKeySafety(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mustBucket(t, s, "bkt")
	hostile := []string{
		"../../etc/passwd", "a/../../b", "%2e%2e/x", "..", ".", "/abs", "//x", `..\..\win`,
		"../" + strings.Repeat("../", 50) + "tmp/x", "a/./b", "ünïcödé/日本語", "tab\tnew\nline",
	}
	for _, k := range hostile {
		if _, err := s.PutObject("bkt", k, strings.NewReader("body:"+k), ObjectMeta{}, nil); err != nil {
			t.Fatalf("PutObject(%q): %v", k, err)
		}
		if _, body := readBody(t, s, "bkt", k); body != "body:"+k {
			t.Fatalf("GetObject(%q) = %q", k, body)
		}
	}
	invalid := []struct {
		key  string
		want error
	}{
		{"a\x00b", ErrInvalidKey},
		{"\x00", ErrInvalidKey},
		{"../\x00/etc", ErrInvalidKey},
		{"bad\xffutf8", ErrInvalidKey},
		{"", ErrInvalidKey},
		{strings.Repeat("k", MaxKeyLen+1), ErrKeyTooLong},
	}
	for _, tc := range invalid {
		if _, err := s.PutObject("bkt", tc.key, strings.NewReader("x"), ObjectMeta{}, nil); !errors.Is(err, tc.want) {
			t.Fatalf("PutObject(%q) = %v, want %v", tc.key, err, tc.want)
		}
		if _, err := s.HeadObject("bkt", tc.key, ""); !errors.Is(err, tc.want) {
			t.Fatalf("HeadObject(%q) = %v, want %v", tc.key, err, tc.want)
		}
	}
	if _, err := s.PutObject("bkt", strings.Repeat("k", MaxKeyLen), strings.NewReader("x"), ObjectMeta{}, nil); err != nil {
		t.Fatalf("1024-byte key: %v", err)
	}
	// Nothing outside dir, and inside it only meta.db and id-named bodies.
	if got := regularFiles(t, parent); len(got) != len(hostile)+2 {
		t.Fatalf("files under parent = %v", got)
	}
	for _, f := range regularFiles(t, dir) {
		if f == "meta.db" {
			continue
		}
		parts := strings.Split(f, string(filepath.Separator))
		if len(parts) != 4 || parts[0] != "objects" || len(parts[3]) != 32 || parts[2] != parts[3][:2] {
			t.Fatalf("unexpected body path %q", f)
		}
	}
}

func TestOpenCleansLeftovers(t *testing.T) {
	s, dir := newStore(t)
	mustBucket(t, s, "bkt")
	mustPut(t, s, "bkt", "keep", "kept body")
	br, err := s.lookupBucket("bkt")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// What a crash can leave: a temp file (of the layout before bodies were
	// written in place), a body whose metadata never committed, and a
	// deleted bucket's directory.
	bdir := filepath.Join(dir, "objects", br.ID)
	plant := map[string]string{
		filepath.Join(bdir, "tmp", newID()):                                        "partial",
		filepath.Join(bdir, "ab", "ab"+strings.Repeat("0", 30)):                    "orphan",
		filepath.Join(dir, "objects", newID(), "cd", "cd"+strings.Repeat("1", 30)): "gone bucket",
	}
	for p, body := range plant {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	for p := range plant {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("leftover %s survived Open: %v", p, err)
		}
	}
	if _, body := readBody(t, s2, "bkt", "keep"); body != "kept body" {
		t.Fatalf("live object damaged: %q", body)
	}
	if files := bodyFiles(t, dir); len(files) != 1 {
		t.Fatalf("files after Open = %v", files)
	}
}
