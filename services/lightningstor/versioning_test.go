package lightningstor_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// presignedResp sends method to bucket/key?params through a URL c
// presigns, for requests minio-go's API cannot make (or make malformed),
// and returns the answer with its body read.
func presignedResp(t *testing.T, c *minio.Client, method, bucket, key string, params url.Values, body string) *http.Response {
	t.Helper()
	u, err := c.Presign(context.Background(), method, bucket, key, time.Minute, params)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, u.String(), strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

func readVersion(t *testing.T, c *minio.Client, bucket, key, id string) string {
	t.Helper()
	o, err := c.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{VersionID: id})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("GET %s/%s?versionId=%s: %v", bucket, key, id, err)
	}
	return string(b)
}

// TestVersioning drives bucket versioning through minio-go: the state,
// version ids on writes, reads by id, delete markers, ListObjectVersions,
// deleting versions for good, suspension and the errors S3 gives.
func TestVersioning(t *testing.T) {
	e := startS3(t)
	c := e.bootstrapClient()
	ctx := context.Background()
	const bkt = "versioned"
	if err := c.MakeBucket(ctx, bkt, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if vc, err := c.GetBucketVersioning(ctx, bkt); err != nil || vc.Status != "" {
		t.Fatalf("versioning of a new bucket = %+v, %v", vc, err)
	}
	put := func(key, body string) minio.UploadInfo {
		t.Helper()
		info, err := c.PutObject(ctx, bkt, key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	if info := put("doc", "unversioned"); info.VersionID != "" {
		t.Fatalf("x-amz-version-id on a never-versioned bucket: %q", info.VersionID)
	}
	if err := c.EnableVersioning(ctx, bkt); err != nil {
		t.Fatal(err)
	}
	if vc, err := c.GetBucketVersioning(ctx, bkt); err != nil || vc.Status != "Enabled" {
		t.Fatalf("versioning = %+v, %v", vc, err)
	}
	v1, v2 := put("doc", "one"), put("doc", "two")
	if v1.VersionID == "" || v1.VersionID == "null" || v1.VersionID == v2.VersionID {
		t.Fatalf("version ids %q %q", v1.VersionID, v2.VersionID)
	}
	for id, want := range map[string]string{"": "two", v1.VersionID: "one", "null": "unversioned"} {
		if got := readVersion(t, c, bkt, "doc", id); got != want {
			t.Fatalf("version %q = %q, want %q", id, got, want)
		}
	}
	if st, err := c.StatObject(ctx, bkt, "doc", minio.StatObjectOptions{VersionID: v1.VersionID}); err != nil || st.VersionID != v1.VersionID || st.Size != 3 {
		t.Fatalf("HEAD v1 = %+v, %v", st, err)
	}

	// DELETE without a version id: a delete marker.
	resp := presignedResp(t, c, "DELETE", bkt, "doc", nil, "")
	marker := resp.Header.Get("x-amz-version-id")
	if resp.StatusCode != 204 || resp.Header.Get("x-amz-delete-marker") != "true" || marker == "" {
		t.Fatalf("DELETE = %d %v", resp.StatusCode, resp.Header)
	}
	resp = presignedResp(t, c, "GET", bkt, "doc", nil, "")
	if resp.StatusCode != 404 || resp.Header.Get("x-amz-delete-marker") != "true" || resp.Header.Get("x-amz-version-id") != marker {
		t.Fatalf("GET of a deleted key = %d %v", resp.StatusCode, resp.Header)
	}
	resp = presignedResp(t, c, "GET", bkt, "doc", url.Values{"versionId": {marker}}, "")
	if resp.StatusCode != 405 || resp.Header.Get("x-amz-delete-marker") != "true" {
		t.Fatalf("GET of the marker by id = %d %v", resp.StatusCode, resp.Header)
	}
	for o := range c.ListObjects(ctx, bkt, minio.ListObjectsOptions{}) {
		t.Fatalf("ListObjects shows a deleted key: %+v", o)
	}

	// ListObjectVersions, newest first, with the marker latest.
	var got []string
	for o := range c.ListObjects(ctx, bkt, minio.ListObjectsOptions{WithVersions: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		s := o.Key + "@" + o.VersionID
		if o.IsDeleteMarker {
			s += "!"
		}
		if o.IsLatest {
			s += "*"
		}
		got = append(got, s)
	}
	want := []string{"doc@" + marker + "!*", "doc@" + v2.VersionID, "doc@" + v1.VersionID, "doc@null"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("versions = %v, want %v", got, want)
	}
	if err := c.RemoveBucket(ctx, bkt); code(err) != "BucketNotEmpty" {
		t.Fatalf("RemoveBucket with versions: %v", err)
	}

	// Restore v1 by copying it over the key.
	cp, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: bkt, Object: "doc"}, minio.CopySrcOptions{Bucket: bkt, Object: "doc", VersionID: v1.VersionID})
	if err != nil || cp.VersionID == "" || cp.VersionID == v2.VersionID {
		t.Fatalf("copy of v1 = %+v, %v", cp, err)
	}
	if got := readVersion(t, c, bkt, "doc", ""); got != "one" {
		t.Fatalf("after restore = %q", got)
	}

	// Deleting versions for good: the marker (by id) and the restored copy.
	if err := c.RemoveObject(ctx, bkt, "doc", minio.RemoveObjectOptions{VersionID: cp.VersionID}); err != nil {
		t.Fatal(err)
	}
	resp = presignedResp(t, c, "DELETE", bkt, "doc", url.Values{"versionId": {marker}}, "")
	if resp.StatusCode != 204 || resp.Header.Get("x-amz-delete-marker") != "true" || resp.Header.Get("x-amz-version-id") != marker {
		t.Fatalf("DELETE of the marker = %d %v", resp.StatusCode, resp.Header)
	}
	if got := readVersion(t, c, bkt, "doc", ""); got != "two" {
		t.Fatalf("current after removing the marker = %q, want v2's", got)
	}

	// Bad version ids.
	for _, tc := range []struct {
		id     string
		status int
		code   string
	}{
		{"nonsense", 400, "InvalidArgument"},
		{"", 400, "InvalidArgument"},
		{"00000000000fffff", 404, "NoSuchVersion"},
	} {
		if st, cd := presigned(t, c, "GET", bkt, "doc", url.Values{"versionId": {tc.id}}, ""); st != tc.status || cd != tc.code {
			t.Errorf("GET versionId=%q = %d %s, want %d %s", tc.id, st, cd, tc.status, tc.code)
		}
	}
	if st, cd := presigned(t, c, "PUT", bkt, "", url.Values{"versioning": {""}}, "<VersioningConfiguration><Status>Sometimes</Status></VersioningConfiguration>"); st != 400 || cd != "MalformedXML" {
		t.Errorf("PUT versioning Sometimes = %d %s", st, cd)
	}

	// Batch delete of versions: every one, then the bucket can go.
	var objs []minio.ObjectInfo
	for o := range c.ListObjects(ctx, bkt, minio.ListObjectsOptions{WithVersions: true}) {
		objs = append(objs, o)
	}
	ch := make(chan minio.ObjectInfo, len(objs))
	for _, o := range objs {
		ch <- o
	}
	close(ch)
	for r := range c.RemoveObjects(ctx, bkt, ch, minio.RemoveObjectsOptions{}) {
		t.Fatalf("RemoveObjects: %+v", r)
	}
	if err := c.RemoveBucket(ctx, bkt); err != nil {
		t.Fatalf("RemoveBucket after removing every version: %v", err)
	}
}

// TestVersioningSuspendedAndTenancy: a suspended bucket writes null
// versions over each other and keeps the older ids; another project sees
// none of it.
func TestVersioningSuspendedAndTenancy(t *testing.T) {
	e := startS3(t)
	a, b := e.keyFor("alice", "proj-a"), e.keyFor("bob", "proj-b")
	ctx := context.Background()
	const bkt = "suspended"
	if err := a.MakeBucket(ctx, bkt, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.EnableVersioning(ctx, bkt); err != nil {
		t.Fatal(err)
	}
	kept, err := a.PutObject(ctx, bkt, "k", strings.NewReader("kept"), 4, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SuspendVersioning(ctx, bkt); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"n1", "n2"} {
		info, err := a.PutObject(ctx, bkt, "k", strings.NewReader(body), 2, minio.PutObjectOptions{})
		if err != nil || info.VersionID != "null" {
			t.Fatalf("PUT while suspended = %+v, %v", info, err)
		}
	}
	var ids []string
	for o := range a.ListObjects(ctx, bkt, minio.ListObjectsOptions{WithVersions: true}) {
		ids = append(ids, o.VersionID)
	}
	if strings.Join(ids, " ") != "null "+kept.VersionID {
		t.Fatalf("versions while suspended = %v", ids)
	}
	if got := readVersion(t, a, bkt, "k", ""); got != "n2" {
		t.Fatalf("current = %q", got)
	}

	checks := map[string]error{}
	_, checks["get version"] = b.StatObject(ctx, bkt, "k", minio.StatObjectOptions{VersionID: kept.VersionID})
	checks["delete version"] = b.RemoveObject(ctx, bkt, "k", minio.RemoveObjectOptions{VersionID: kept.VersionID})
	checks["enable"] = b.EnableVersioning(ctx, bkt)
	_, checks["get versioning"] = b.GetBucketVersioning(ctx, bkt)
	for o := range b.ListObjects(ctx, bkt, minio.ListObjectsOptions{WithVersions: true}) {
		checks["list versions"] = o.Err
	}
	for what, err := range checks {
		if code(err) != "AccessDenied" {
			t.Errorf("bob %s on alice's bucket: %v", what, err)
		}
	}
	if got := readVersion(t, a, bkt, "k", kept.VersionID); got != "kept" {
		t.Fatalf("kept version after bob = %q", got)
	}
	if vc, err := a.GetBucketVersioning(ctx, bkt); err != nil || vc.Status != "Suspended" {
		t.Fatalf("versioning after bob = %+v, %v", vc, err)
	}
}
