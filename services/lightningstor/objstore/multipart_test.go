package objstore

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func mustUpload(t *testing.T, s *Store, bucket, key string) Upload {
	t.Helper()
	u, err := s.CreateUpload(bucket, key, ObjectMeta{ContentType: "text/x-test", UserMeta: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatalf("CreateUpload(%q, %q): %v", bucket, key, err)
	}
	return u
}

func mustPart(t *testing.T, s *Store, u Upload, n int, body []byte) Part {
	t.Helper()
	p, err := s.PutPart(u.Bucket, u.Key, u.UploadID, n, bytes.NewReader(body), nil)
	if err != nil {
		t.Fatalf("PutPart(%d): %v", n, err)
	}
	if p.ETag != etagOf(string(body)) || p.Size != int64(len(body)) {
		t.Fatalf("part %d: %+v", n, p)
	}
	return p
}

// filled is n bytes of c.
func filled(c byte, n int) []byte { return bytes.Repeat([]byte{c}, n) }

func multipartETag(parts ...[]byte) string {
	h := md5.New()
	for _, p := range parts {
		s := md5.Sum(p)
		h.Write(s[:])
	}
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(h.Sum(nil)), len(parts))
}

func TestCompleteUpload(t *testing.T) {
	s, dir := newStore(t)
	mustBucket(t, s, "bkt")
	mustPut(t, s, "bkt", "k", "old")
	u := mustUpload(t, s, "bkt", "k")
	p1 := filled('a', MinPartSize)
	mustPart(t, s, u, 1, []byte("to be replaced"))
	mustPart(t, s, u, 1, p1)
	mustPart(t, s, u, 3, []byte("tail"))
	mustPart(t, s, u, 2, []byte("not listed at completion"))
	// Until completion the old object is what GET sees.
	if _, body := readBody(t, s, "bkt", "k"); body != "old" {
		t.Fatalf("before completion: %q", body)
	}
	m, err := s.CompleteUpload("bkt", "k", u.UploadID, []CompletePart{{1, etagOf(string(p1))}, {3, strings.Trim(etagOf("tail"), `"`)}})
	if err != nil {
		t.Fatal(err)
	}
	want := multipartETag(p1, []byte("tail"))
	if m.ETag != want || m.Size != int64(len(p1)+4) {
		t.Fatalf("completed: %+v, want ETag %s", m, want)
	}
	got, body := readBody(t, s, "bkt", "k")
	if body != string(p1)+"tail" || got.ETag != want || got.ContentType != "text/x-test" || got.UserMeta["a"] != "1" {
		t.Fatalf("read back: %d bytes, %+v", len(body), got)
	}
	if _, err := s.Upload("bkt", "k", u.UploadID); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("upload after completion: %v", err)
	}
	if _, err := s.CompleteUpload("bkt", "k", u.UploadID, []CompletePart{{1, etagOf(string(p1))}}); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("second completion: %v", err)
	}
	// Only the new body is left: the parts and the old body are gone.
	if files := regularFiles(t, dir); len(files) != 2 { // meta.db and the body
		t.Fatalf("files after completion: %v", files)
	}
}

// Every refused completion changes nothing: the upload and its parts stay
// and the key keeps its old object.
func TestCompleteUploadRefused(t *testing.T) {
	s, _ := newStore(t)
	mustBucket(t, s, "bkt")
	mustPut(t, s, "bkt", "k", "old")
	u := mustUpload(t, s, "bkt", "k")
	big, small := filled('x', MinPartSize), filled('y', 1<<20)
	e1 := mustPart(t, s, u, 1, big).ETag
	e2 := mustPart(t, s, u, 2, small).ETag
	e3 := mustPart(t, s, u, 3, big).ETag
	for _, tc := range []struct {
		name   string
		id     string
		parts  []CompletePart
		wantIs error
	}{
		{"descending", u.UploadID, []CompletePart{{2, e2}, {1, e1}}, ErrInvalidPartOrder},
		{"repeated", u.UploadID, []CompletePart{{1, e1}, {1, e1}}, ErrInvalidPartOrder},
		{"wrong etag", u.UploadID, []CompletePart{{1, e2}, {2, e2}}, ErrInvalidPart},
		{"missing part", u.UploadID, []CompletePart{{1, e1}, {4, e1}}, ErrInvalidPart},
		{"part number 0", u.UploadID, []CompletePart{{0, e1}}, ErrInvalidPart},
		{"empty", u.UploadID, nil, ErrInvalidPart},
		{"small non-last part", u.UploadID, []CompletePart{{2, e2}, {3, e3}}, ErrEntityTooSmall},
		{"unknown upload", strings.Repeat("0", 32), []CompletePart{{1, e1}}, ErrNoSuchUpload},
		{"not an upload id", "../../x", []CompletePart{{1, e1}}, ErrNoSuchUpload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.CompleteUpload("bkt", "k", tc.id, tc.parts); !errors.Is(err, tc.wantIs) {
				t.Fatalf("got %v, want %v", err, tc.wantIs)
			}
			if _, body := readBody(t, s, "bkt", "k"); body != "old" {
				t.Fatalf("object changed: %d bytes", len(body))
			}
			if pl, err := s.ListParts("bkt", "k", u.UploadID, 0, 0); err != nil || len(pl.Parts) != 3 {
				t.Fatalf("parts: %+v %v", pl, err)
			}
		})
	}
	// The same upload under another key is not found.
	if _, err := s.CompleteUpload("bkt", "other", u.UploadID, []CompletePart{{1, e1}}); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("other key: %v", err)
	}
	// A small last part is fine.
	if _, err := s.CompleteUpload("bkt", "k", u.UploadID, []CompletePart{{1, e1}, {2, e2}}); err != nil {
		t.Fatal(err)
	}
}

func TestPutPartRefused(t *testing.T) {
	s, _ := newStore(t)
	mustBucket(t, s, "bkt")
	u := mustUpload(t, s, "bkt", "k")
	for _, n := range []int{0, -1, MaxPartNumber + 1} {
		if _, err := s.PutPart("bkt", "k", u.UploadID, n, strings.NewReader("x"), nil); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("part %d: %v", n, err)
		}
	}
	if _, err := s.PutPart("bkt", "k", u.UploadID, MaxPartNumber, strings.NewReader("x"), nil); err != nil {
		t.Errorf("part %d: %v", MaxPartNumber, err)
	}
	sum := md5.Sum([]byte("other"))
	if _, err := s.PutPart("bkt", "k", u.UploadID, 1, strings.NewReader("x"), sum[:]); !errors.Is(err, ErrBadDigest) {
		t.Errorf("bad digest: %v", err)
	}
	if _, err := s.PutPart("nope-bkt", "k", u.UploadID, 1, strings.NewReader("x"), nil); !errors.Is(err, ErrBucketNotFound) {
		t.Errorf("unknown bucket: %v", err)
	}
	if _, err := s.CreateUpload("nope-bkt", "k", ObjectMeta{}); !errors.Is(err, ErrBucketNotFound) {
		t.Errorf("create in unknown bucket: %v", err)
	}
	if _, err := s.CreateUpload("bkt", strings.Repeat("k", MaxKeyLen+1), ObjectMeta{}); !errors.Is(err, ErrKeyTooLong) {
		t.Errorf("long key: %v", err)
	}
	if pl, _ := s.ListParts("bkt", "k", u.UploadID, 0, 0); len(pl.Parts) != 1 || pl.Parts[0].Number != MaxPartNumber {
		t.Errorf("parts after refusals: %+v", pl.Parts)
	}
}

func TestAbortUpload(t *testing.T) {
	s, dir := newStore(t)
	mustBucket(t, s, "bkt")
	u := mustUpload(t, s, "bkt", "k")
	mustPart(t, s, u, 1, []byte("one"))
	mustPart(t, s, u, 2, []byte("two"))
	if err := s.AbortUpload("bkt", "k", u.UploadID); err != nil {
		t.Fatal(err)
	}
	if err := s.AbortUpload("bkt", "k", u.UploadID); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("second abort: %v", err)
	}
	if _, err := s.PutPart("bkt", "k", u.UploadID, 3, strings.NewReader("x"), nil); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("part after abort: %v", err)
	}
	if _, err := s.ListParts("bkt", "k", u.UploadID, 0, 0); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("list parts after abort: %v", err)
	}
	if _, err := s.HeadObject("bkt", "k", ""); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("object after abort: %v", err)
	}
	if files := regularFiles(t, dir); len(files) != 1 {
		t.Fatalf("files after abort: %v", files)
	}
}

func TestListParts(t *testing.T) {
	s, _ := newStore(t)
	mustBucket(t, s, "bkt")
	u := mustUpload(t, s, "bkt", "k")
	for _, n := range []int{7, 1, 300, 2, 10} {
		mustPart(t, s, u, n, []byte(fmt.Sprint(n)))
	}
	var got []int
	marker := 0
	for pages := 0; ; pages++ {
		pl, err := s.ListParts("bkt", "k", u.UploadID, marker, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pl.Parts {
			got = append(got, p.Number)
			if p.ETag != etagOf(fmt.Sprint(p.Number)) {
				t.Fatalf("part %d: %+v", p.Number, p)
			}
		}
		if !pl.IsTruncated {
			if pages != 2 {
				t.Fatalf("%d pages", pages+1)
			}
			break
		}
		marker = pl.NextPartNumberMarker
	}
	if !reflect.DeepEqual(got, []int{1, 2, 7, 10, 300}) {
		t.Fatalf("parts: %v", got)
	}
}

func TestListUploads(t *testing.T) {
	s, _ := newStore(t)
	mustBucket(t, s, "bkt")
	var ids []string // in listing order
	for _, k := range []string{"a", "dir/x", "dir/y", "k", "k", "k", "z"} {
		ids = append(ids, mustUpload(t, s, "bkt", k).UploadID)
	}
	keysOf := func(l UploadList) (out []string) {
		for _, u := range l.Uploads {
			out = append(out, u.Key+"#"+u.UploadID[:0])
		}
		return out
	}
	// All, 2 a page, with both markers.
	var all []string
	o := UploadListOptions{MaxUploads: 2}
	for {
		l, err := s.ListUploads("bkt", o)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range l.Uploads {
			all = append(all, u.UploadID)
		}
		if !l.IsTruncated {
			break
		}
		o.KeyMarker, o.UploadIDMarker = l.NextKeyMarker, l.NextUploadIDMarker
	}
	if !reflect.DeepEqual(all, ids) {
		t.Fatalf("paged listing:\n%v\nwant\n%v", all, ids)
	}
	for _, tc := range []struct {
		name     string
		o        UploadListOptions
		keys     []string
		prefixes []string
	}{
		{"key marker skips all of its uploads", UploadListOptions{KeyMarker: "k"}, []string{"z#"}, nil},
		{"upload id marker", UploadListOptions{KeyMarker: "k", UploadIDMarker: ids[4]}, []string{"k#", "z#"}, nil},
		{"prefix", UploadListOptions{Prefix: "dir/"}, []string{"dir/x#", "dir/y#"}, nil},
		{"delimiter", UploadListOptions{Delimiter: "/"}, []string{"a#", "k#", "k#", "k#", "z#"}, []string{"dir/"}},
		{"after a common prefix", UploadListOptions{Delimiter: "/", KeyMarker: "dir/"}, []string{"k#", "k#", "k#", "z#"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := s.ListUploads("bkt", tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(keysOf(l), tc.keys) || !reflect.DeepEqual(l.CommonPrefixes, tc.prefixes) {
				t.Fatalf("got %v %v, want %v %v", keysOf(l), l.CommonPrefixes, tc.keys, tc.prefixes)
			}
		})
	}
	if _, err := s.ListUploads("nope-bkt", UploadListOptions{}); !errors.Is(err, ErrBucketNotFound) {
		t.Fatalf("unknown bucket: %v", err)
	}
}

// Uploads survive a restart (Open's garbage collection must not take
// their part files) and can be completed after it.
func TestUploadSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	mustBucket(t, s, "bkt")
	u := mustUpload(t, s, "bkt", "k")
	e := mustPart(t, s, u, 1, []byte("survivor")).ETag
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.CompleteUpload("bkt", "k", u.UploadID, []CompletePart{{1, e}}); err != nil {
		t.Fatal(err)
	}
	if _, body := readBody(t, s, "bkt", "k"); body != "survivor" {
		t.Fatalf("body %q", body)
	}
}

func TestSweepUploads(t *testing.T) {
	s, dir := newStore(t)
	mustBucket(t, s, "bkt")
	mustBucket(t, s, "gone-bkt")
	old := mustUpload(t, s, "bkt", "old")
	mustPart(t, s, old, 1, []byte("old part"))
	ofGone := mustUpload(t, s, "gone-bkt", "k")
	mustPart(t, s, ofGone, 1, []byte("part of a deleted bucket"))
	// A bucket with uploads but no objects can be deleted, and its
	// uploads go with it.
	if err := s.DeleteBucket("gone-bkt"); err != nil {
		t.Fatal(err)
	}
	mustBucket(t, s, "gone-bkt")
	if l, err := s.ListUploads("gone-bkt", UploadListOptions{}); err != nil || len(l.Uploads) != 0 {
		t.Fatalf("uploads of a re-created bucket: %+v %v", l, err)
	}
	if _, err := s.PutPart("gone-bkt", "k", ofGone.UploadID, 2, strings.NewReader("x"), nil); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("part to an upload of a deleted bucket: %v", err)
	}
	cutoff := time.Now()
	fresh := mustUpload(t, s, "bkt", "fresh")
	mustPart(t, s, fresh, 1, []byte("fresh part"))

	n, err := s.SweepUploads(cutoff)
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if _, err := s.Upload("bkt", "old", old.UploadID); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("expired upload: %v", err)
	}
	if _, err := s.Upload("bkt", "fresh", fresh.UploadID); err != nil {
		t.Fatalf("fresh upload: %v", err)
	}
	var parts []string
	for _, f := range regularFiles(t, dir) {
		if strings.HasPrefix(f, "multipart"+string(filepath.Separator)) {
			parts = append(parts, f)
		}
	}
	if len(parts) != 1 || !strings.Contains(parts[0], fresh.UploadID) {
		t.Fatalf("part files after the sweep: %v", parts)
	}
	if n, err := s.SweepUploads(cutoff); err != nil || n != 0 {
		t.Fatalf("second sweep: %d %v", n, err)
	}
}

const (
	envMPUCrashDir  = "PHOTON_OBJSTORE_MPU_CRASH_DIR"
	envMPUCrashBase = "PHOTON_OBJSTORE_MPU_CRASH_BASE" // first generation - 1
)

// mpuBody is generation gen's parts: a whole first part and a short tail,
// both naming gen so a torn or mixed object shows.
func mpuBody(gen int) (first, tail []byte) {
	head := []byte(fmt.Sprintf("gen %d|", gen))
	first = bytes.Repeat(head, MinPartSize/len(head)+1)[:MinPartSize]
	return first, []byte(fmt.Sprintf("tail of gen %d", gen))
}

// TestCompleteCrashChild is the child of TestCrashDuringComplete: it
// completes uploads of one key forever, printing each acknowledged
// generation, until the parent kills it.
func TestCompleteCrashChild(t *testing.T) {
	dir := os.Getenv(envMPUCrashDir)
	if dir == "" {
		t.Skip("the child process of TestCrashDuringComplete")
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := strconv.Atoi(os.Getenv(envMPUCrashBase))
	for gen := base + 1; ; gen++ {
		u, err := s.CreateUpload("crash", "k", ObjectMeta{})
		if err != nil {
			t.Fatal(err)
		}
		first, tail := mpuBody(gen)
		p1, err := s.PutPart("crash", "k", u.UploadID, 1, bytes.NewReader(first), nil)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := s.PutPart("crash", "k", u.UploadID, 2, bytes.NewReader(tail), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CompleteUpload("crash", "k", u.UploadID, []CompletePart{{1, p1.ETag}, {2, p2.ETag}}); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ack %d\n", gen)
	}
}

// A kill -9 at any moment of multipart uploads leaves the old object or a
// whole new one with matching metadata, and a reopened store (plus a
// sweep) leaves no stray part files.
func TestCrashDuringComplete(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns writer processes: skipped in -short mode")
	}
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	mustBucket(t, s, "crash")
	s.Close()
	for round, delay := range []time.Duration{0, 40 * time.Millisecond, 130 * time.Millisecond, 300 * time.Millisecond} {
		base := round * 1000
		cmd := exec.Command(os.Args[0], "-test.run=^TestCompleteCrashChild$")
		cmd.Env = append(os.Environ(), envMPUCrashDir+"="+dir, envMPUCrashBase+"="+strconv.Itoa(base))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := 0
		first := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if n, err := fmt.Sscanf(sc.Text(), "ack %d", &acked); n == 1 && err == nil && acked == base+1 {
					close(first)
				}
			}
		}()
		select {
		case <-first:
		case <-done:
			cmd.Wait()
			t.Fatalf("child ended: %s", stderr.String())
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child made no progress: %s", stderr.String())
		}
		time.Sleep(delay)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-done
		cmd.Wait()

		s, err := Open(dir)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		m, f, err := s.GetObject("crash", "k", "")
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		body, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		var gen int
		fmt.Sscanf(string(body[:min(len(body), 32)]), "gen %d|", &gen)
		p1, p2 := mpuBody(gen)
		if gen < acked || gen > acked+1 || !bytes.Equal(body, append(p1, p2...)) || m.ETag != multipartETag(p1, p2) {
			t.Fatalf("round %d: object holds gen %d (%d bytes, ETag %s), last acked %d", round, gen, len(body), m.ETag, acked)
		}
		if _, err := s.SweepUploads(time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		var stray []string
		for _, p := range regularFiles(t, dir) {
			if strings.HasPrefix(p, "multipart"+string(filepath.Separator)) {
				stray = append(stray, p)
			}
		}
		if len(stray) != 0 {
			t.Fatalf("round %d: part files after the sweep: %v", round, stray)
		}
		t.Logf("round %d: gen %d after %d acks", round, gen, acked)
		s.Close()
	}
}
