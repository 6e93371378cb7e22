package lightningstor_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/photoncloud/photon/services/lightningstor"
	"github.com/photoncloud/photon/services/lightningstor/objstore"
)

const mib = 1 << 20

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// s3MultipartETag is S3's ETag of an object made of parts.
func s3MultipartETag(parts ...[]byte) string {
	h := md5.New()
	for _, p := range parts {
		s := md5.Sum(p)
		h.Write(s[:])
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), len(parts))
}

func readAll(t *testing.T, c *minio.Client, bucket, key string) []byte {
	t.Helper()
	o, err := c.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("read %s/%s: %v", bucket, key, err)
	}
	return b
}

// minio-go's own multipart PutObject, and UploadPartCopy with ranges.
func TestMultipartPutAndCopyPart(t *testing.T) {
	e := startS3(t)
	c := e.bootstrapClient()
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "big", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	body := randomBytes(t, 12*mib)
	info, err := c.PutObject(ctx, "big", "twelve", bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{PartSize: 5 * mib, ContentType: "application/x-twelve", UserMetadata: map[string]string{"origin": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	want := s3MultipartETag(body[:5*mib], body[5*mib:10*mib], body[10*mib:])
	if info.ETag != want || !strings.HasSuffix(info.ETag, "-3") {
		t.Fatalf("ETag %q, want %q", info.ETag, want)
	}
	if got := readAll(t, c, "big", "twelve"); !bytes.Equal(got, body) {
		t.Fatalf("read back %d bytes, not the %d put", len(got), len(body))
	}
	st, err := c.StatObject(ctx, "big", "twelve", minio.StatObjectOptions{})
	if err != nil || st.ETag != want || st.Size != int64(len(body)) || st.ContentType != "application/x-twelve" || st.UserMetadata["Origin"] != "test" {
		t.Fatalf("stat: %+v %v", st, err)
	}

	// Parts copied from ranges of the object: 5 MiB from offset 1 MiB,
	// then its first 100 bytes.
	core := minio.Core{Client: c}
	id, err := core.NewMultipartUpload(ctx, "big", "copied", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := core.CopyObjectPart(ctx, "big", "twelve", "big", "copied", id, 1, 1*mib, 5*mib, nil)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := core.CopyObjectPart(ctx, "big", "twelve", "big", "copied", id, 2, 0, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A range past the source's end is refused.
	if _, err := core.CopyObjectPart(ctx, "big", "twelve", "big", "copied", id, 3, 12*mib-10, 20, nil); code(err) != "InvalidArgument" {
		t.Fatalf("range past the end: %v", err)
	}
	if _, err := core.CopyObjectPart(ctx, "big", "missing", "big", "copied", id, 3, 0, 1, nil); code(err) != "NoSuchKey" {
		t.Fatalf("copy from a missing key: %v", err)
	}
	ui, err := core.CompleteMultipartUpload(ctx, "big", "copied", id, []minio.CompletePart{p1, p2}, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantBody := append(bytes.Clone(body[1*mib:6*mib]), body[:100]...)
	if ui.ETag != s3MultipartETag(body[1*mib:6*mib], body[:100]) {
		t.Fatalf("copied ETag %q", ui.ETag)
	}
	if got := readAll(t, c, "big", "copied"); !bytes.Equal(got, wantBody) {
		t.Fatalf("copied object: %d bytes", len(got))
	}
}

// The low-level calls: parts, listings, every refused completion, abort,
// tenancy, and deleting a bucket with uploads in progress.
func TestMultipartCore(t *testing.T) {
	e := startS3(t)
	c := e.bootstrapClient()
	core := minio.Core{Client: c}
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "mpu", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, "mpu", "k", strings.NewReader("old"), 3, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	id, err := core.NewMultipartUpload(ctx, "mpu", "k", minio.PutObjectOptions{ContentType: "text/x-parts", UserMetadata: map[string]string{"m": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	bodies := [][]byte{randomBytes(t, 5*mib), randomBytes(t, 1*mib), []byte("tail")}
	var parts []minio.CompletePart
	for i, b := range bodies {
		p, err := core.PutObjectPart(ctx, "mpu", "k", id, i+1, bytes.NewReader(b), int64(len(b)), minio.PutObjectPartOptions{})
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		if sum := md5.Sum(b); p.ETag != hex.EncodeToString(sum[:]) {
			t.Fatalf("part %d ETag %q", i+1, p.ETag)
		}
		parts = append(parts, minio.CompletePart{PartNumber: i + 1, ETag: p.ETag})
	}
	// ListParts, two a page.
	lp, err := core.ListObjectParts(ctx, "mpu", "k", id, 0, 2)
	if err != nil || !lp.IsTruncated || len(lp.ObjectParts) != 2 || lp.NextPartNumberMarker != 2 || lp.ObjectParts[1].Size != mib {
		t.Fatalf("parts, page 1: %+v %v", lp, err)
	}
	lp, err = core.ListObjectParts(ctx, "mpu", "k", id, 2, 2)
	if err != nil || lp.IsTruncated || len(lp.ObjectParts) != 1 || lp.ObjectParts[0].PartNumber != 3 {
		t.Fatalf("parts, page 2: %+v %v", lp, err)
	}
	// A second upload of another key, for the listing and for abort.
	id2, err := core.NewMultipartUpload(ctx, "mpu", "other/key", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lu, err := core.ListMultipartUploads(ctx, "mpu", "", "", "", "", 1)
	if err != nil || !lu.IsTruncated || len(lu.Uploads) != 1 || lu.Uploads[0].Key != "k" || lu.Uploads[0].UploadID != id {
		t.Fatalf("uploads, page 1: %+v %v", lu, err)
	}
	lu, err = core.ListMultipartUploads(ctx, "mpu", "", lu.NextKeyMarker, lu.NextUploadIDMarker, "", 1)
	if err != nil || lu.IsTruncated || len(lu.Uploads) != 1 || lu.Uploads[0].Key != "other/key" || lu.Uploads[0].UploadID != id2 {
		t.Fatalf("uploads, page 2: %+v %v", lu, err)
	}
	lu, err = core.ListMultipartUploads(ctx, "mpu", "", "", "", "/", 0)
	if err != nil || len(lu.Uploads) != 1 || len(lu.CommonPrefixes) != 1 || lu.CommonPrefixes[0].Prefix != "other/" {
		t.Fatalf("uploads with a delimiter: %+v %v", lu, err)
	}

	// Refused completions leave the upload and the old object alone.
	for _, tc := range []struct {
		name  string
		parts []minio.CompletePart
		code  string
	}{
		{"out of order", []minio.CompletePart{parts[1], parts[0], parts[2]}, "InvalidPartOrder"},
		{"wrong ETag", []minio.CompletePart{parts[0], {PartNumber: 2, ETag: parts[2].ETag}}, "InvalidPart"},
		{"missing part", []minio.CompletePart{parts[0], {PartNumber: 9, ETag: parts[2].ETag}}, "InvalidPart"},
		{"1 MiB part not last", []minio.CompletePart{parts[1], parts[2]}, "EntityTooSmall"},
	} {
		if _, err := core.CompleteMultipartUpload(ctx, "mpu", "k", id, tc.parts, minio.PutObjectOptions{}); code(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if got := readAll(t, c, "mpu", "k"); string(got) != "old" {
		t.Fatalf("object after refused completions: %d bytes", len(got))
	}
	// Part 2 (1 MiB) is left out: only the last part may be small.
	ui, err := core.CompleteMultipartUpload(ctx, "mpu", "k", id, []minio.CompletePart{parts[0], parts[2]}, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ui.ETag != s3MultipartETag(bodies[0], bodies[2]) {
		t.Fatalf("completed ETag %q", ui.ETag)
	}
	if got := readAll(t, c, "mpu", "k"); !bytes.Equal(got, append(bytes.Clone(bodies[0]), bodies[2]...)) {
		t.Fatalf("completed object: %d bytes", len(got))
	}
	st, err := c.StatObject(ctx, "mpu", "k", minio.StatObjectOptions{})
	if err != nil || st.ContentType != "text/x-parts" || st.UserMetadata["M"] != "v" {
		t.Fatalf("metadata taken at create: %+v %v", st, err)
	}
	// The upload is gone.
	if _, err := core.PutObjectPart(ctx, "mpu", "k", id, 4, strings.NewReader("x"), 1, minio.PutObjectPartOptions{}); code(err) != "NoSuchUpload" {
		t.Fatalf("part to a completed upload: %v", err)
	}
	if _, err := core.ListObjectParts(ctx, "mpu", "k", id, 0, 0); code(err) != "NoSuchUpload" {
		t.Fatalf("parts of a completed upload: %v", err)
	}

	// Another project cannot see or touch the uploads.
	alice := minio.Core{Client: e.keyFor("alice", "proj-a")}
	if _, err := alice.NewMultipartUpload(ctx, "mpu", "x", minio.PutObjectOptions{}); code(err) != "AccessDenied" {
		t.Errorf("alice creates an upload: %v", err)
	}
	if _, err := alice.ListMultipartUploads(ctx, "mpu", "", "", "", "", 0); code(err) != "AccessDenied" {
		t.Errorf("alice lists uploads: %v", err)
	}
	if err := alice.AbortMultipartUpload(ctx, "mpu", "other/key", id2); code(err) != "AccessDenied" {
		t.Errorf("alice aborts: %v", err)
	}

	if err := core.AbortMultipartUpload(ctx, "mpu", "other/key", id2); err != nil {
		t.Fatal(err)
	}
	if err := core.AbortMultipartUpload(ctx, "mpu", "other/key", id2); code(err) != "NoSuchUpload" {
		t.Fatalf("second abort: %v", err)
	}
	if lu, err := core.ListMultipartUploads(ctx, "mpu", "", "", "", "", 0); err != nil || len(lu.Uploads) != 0 {
		t.Fatalf("uploads after complete and abort: %+v %v", lu, err)
	}

	// A bucket with only uploads in progress can be deleted; they go.
	if err := c.MakeBucket(ctx, "only-uploads", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := core.NewMultipartUpload(ctx, "only-uploads", "k", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveBucket(ctx, "only-uploads"); err != nil {
		t.Fatalf("remove a bucket with an upload in progress: %v", err)
	}
	if _, err := core.ListMultipartUploads(ctx, "only-uploads", "", "", "", "", 0); code(err) != "NoSuchBucket" {
		t.Fatalf("uploads of a removed bucket: %v", err)
	}
	if err := c.MakeBucket(ctx, "only-uploads", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if lu, err := core.ListMultipartUploads(ctx, "only-uploads", "", "", "", "", 0); err != nil || len(lu.Uploads) != 0 {
		t.Fatalf("uploads of a re-created bucket: %+v %v", lu, err)
	}
}

// presigned sends method to bucket/key?params through a URL c presigns,
// for requests minio-go's API cannot make malformed, and returns the
// status and the S3 error code of the answer.
func presigned(t *testing.T, c *minio.Client, method, bucket, key string, params url.Values, body string) (int, string) {
	t.Helper()
	resp := presignedResp(t, c, method, bucket, key, params, body)
	b, _ := io.ReadAll(resp.Body)
	_, rest, _ := strings.Cut(string(b), "<Code>")
	code, _, _ := strings.Cut(rest, "</Code>")
	return resp.StatusCode, code
}

// The error paths a hand-made request can reach, each answered with S3's
// status and code, and none of them changing the upload.
func TestMultipartBadRequests(t *testing.T) {
	e := startS3(t)
	c := e.bootstrapClient()
	core := minio.Core{Client: c}
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "bad", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	id, err := core.NewMultipartUpload(ctx, "bad", "k", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := core.PutObjectPart(ctx, "bad", "k", id, 1, strings.NewReader("one"), 3, minio.PutObjectPartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	for _, tc := range []struct {
		name, method, key string
		params            url.Values
		body              string
		status            int
		code              string
	}{
		{"part number 0", "PUT", "k", q("partNumber", "0", "uploadId", id), "x", 400, "InvalidArgument"},
		{"part number 10001", "PUT", "k", q("partNumber", "10001", "uploadId", id), "x", 400, "InvalidArgument"},
		{"part number not a number", "PUT", "k", q("partNumber", "one", "uploadId", id), "x", 400, "InvalidArgument"},
		{"unknown upload", "PUT", "k", q("partNumber", "1", "uploadId", strings.Repeat("0", 32)), "x", 404, "NoSuchUpload"},
		{"upload id as a path", "PUT", "k", q("partNumber", "1", "uploadId", "../../../etc"), "x", 404, "NoSuchUpload"},
		{"upload of another key", "PUT", "other", q("partNumber", "1", "uploadId", id), "x", 404, "NoSuchUpload"},
		{"not XML", "POST", "k", q("uploadId", id), "<CompleteMultipartUpload><Part>", 400, "MalformedXML"},
		{"no parts", "POST", "k", q("uploadId", id), "<CompleteMultipartUpload></CompleteMultipartUpload>", 400, "MalformedXML"},
		{"complete an unknown upload", "POST", "k", q("uploadId", strings.Repeat("0", 32)),
			"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>" + p.ETag + "</ETag></Part></CompleteMultipartUpload>", 404, "NoSuchUpload"},
		{"max-parts not a number", "GET", "k", q("uploadId", id, "max-parts", "x"), "", 400, "InvalidArgument"},
		{"uploads with PUT", "PUT", "k", q("uploads", ""), "", 405, "MethodNotAllowed"},
	} {
		if status, code := presigned(t, c, tc.method, "bad", tc.key, tc.params, tc.body); status != tc.status || code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, code, tc.status, tc.code)
		}
	}
	lp, err := core.ListObjectParts(ctx, "bad", "k", id, 0, 0)
	if err != nil || len(lp.ObjectParts) != 1 || strings.Trim(lp.ObjectParts[0].ETag, `"`) != p.ETag {
		t.Fatalf("parts after the bad requests: %+v %v", lp, err)
	}
	// A namespaced body, as the AWS SDKs send it, completes.
	status, code := presigned(t, c, "POST", "bad", "k", q("uploadId", id),
		`<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"`+p.ETag+`"</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`)
	if status != 200 || code != "" {
		t.Fatalf("complete: %d %s", status, code)
	}
	if got := readAll(t, c, "bad", "k"); string(got) != "one" {
		t.Fatalf("completed: %q", got)
	}
}

// The server's sweep aborts uploads older than its age.
func TestSweepUploadsEvery(t *testing.T) {
	st, err := objstore.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateBucket("sweep", "p", ""); err != nil {
		t.Fatal(err)
	}
	u, err := st.CreateUpload("sweep", "k", objstore.ObjectMeta{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		lightningstor.SweepUploadsEvery(ctx, st, time.Nanosecond, 10*time.Millisecond)
	}()
	t.Cleanup(func() { cancel(); <-done })
	for {
		if _, err := st.Upload("sweep", "k", u.UploadID); err != nil {
			if !errors.Is(err, objstore.ErrNoSuchUpload) {
				t.Fatal(err)
			}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}
