// LightningSTOR's tests drive the S3 API of a whole in-process stack with
// a real S3 client (minio-go), signed with IAM access keys.
package lightningstor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/tags"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/testutil"
)

type s3Env struct {
	t    *testing.T
	st   *platform.Stack
	addr string
	dir  string
}

func startS3(t *testing.T) *s3Env {
	t.Helper()
	cfg := testutil.StackConfig(t, "")
	st := testutil.StartStackWith(t, cfg)
	return &s3Env{t: t, st: st, addr: st.LightningSTOR.HTTPAddr(), dir: cfg.DataDir}
}

// bootstrapClient reads DATA/s3-credentials as an AWS tool would.
func (e *s3Env) bootstrapClient() *minio.Client {
	e.t.Helper()
	path := filepath.Join(e.dir, platform.S3CredentialsFile)
	fi, err := os.Stat(path)
	if err != nil {
		e.t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		e.t.Fatalf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	id, secret, err := platform.ReadS3Credentials(path)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.client(id, secret)
}

func (e *s3Env) client(id, secret string) *minio.Client {
	e.t.Helper()
	c, err := minio.New(e.addr, &minio.Options{Creds: credentials.NewStaticV4(id, secret, ""), Secure: false, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// keyFor issues an access key for a new member of project (through IAM's
// API, as an operator would).
func (e *s3Env) keyFor(principal, project string) *minio.Client {
	e.t.Helper()
	iam := "http://" + e.st.IAM.HTTPAddr()
	post := func(path, body string) map[string]any {
		resp, err := http.Post(iam+path, "application/json", strings.NewReader(body))
		if err != nil {
			e.t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Data map[string]any `json:"data"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&env)
		if resp.StatusCode != 201 {
			e.t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
		return env.Data
	}
	post("/api/v1/users", `{"id":"`+principal+`","name":"`+principal+`","type":"service_account"}`)
	post("/api/v1/bindings", `{"principal_id":"`+principal+`","role":"member","scope_id":"`+project+`"}`)
	c := post("/api/v1/credentials", `{"principal_id":"`+principal+`","project_id":"`+project+`"}`)
	time.Sleep(300 * time.Millisecond) // the binding reaches the IAM cache
	return e.client(c["access_key_id"].(string), c["secret_access_key"].(string))
}

func code(err error) string { return minio.ToErrorResponse(err).Code }

// The common operations through a real S3 client with the bootstrap key.
func TestObjects(t *testing.T) {
	e := startS3(t)
	c := e.bootstrapClient()
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "photos", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.MakeBucket(ctx, "photos", minio.MakeBucketOptions{}); code(err) != "BucketAlreadyOwnedByYou" {
		t.Fatalf("second create: %v", err)
	}
	if err := c.MakeBucket(ctx, "Bad_Name", minio.MakeBucketOptions{}); err == nil {
		t.Fatal("an invalid bucket name was taken")
	}
	body := make([]byte, 3<<20+17)
	_, _ = rand.Read(body)
	info, err := c.PutObject(ctx, "photos", "2026/cat picture+1.jpg", bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "image/jpeg", UserMetadata: map[string]string{"camera": "x100"}, SendContentMd5: true})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(ctx, "photos", "2026/cat picture+1.jpg", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("get: %d bytes, err %v", len(got), err)
	}
	st, err := c.StatObject(ctx, "photos", "2026/cat picture+1.jpg", minio.StatObjectOptions{})
	if err != nil || st.ETag != info.ETag || st.ContentType != "image/jpeg" || st.UserMetadata["Camera"] != "x100" || st.Metadata.Get("Content-Encoding") != "" {
		t.Fatalf("stat: %+v %v", st, err)
	}
	// A range.
	ro := minio.GetObjectOptions{}
	_ = ro.SetRange(100, 199)
	part, _ := c.GetObject(ctx, "photos", "2026/cat picture+1.jpg", ro)
	if b, _ := io.ReadAll(part); !bytes.Equal(b, body[100:200]) {
		t.Fatalf("range: %d bytes", len(b))
	}
	// A listing with a delimiter.
	for _, k := range []string{"2026/dog.jpg", "2025/old.jpg", "readme.txt"} {
		if _, err := c.PutObject(ctx, "photos", k, strings.NewReader(k), int64(len(k)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var top []string
	for o := range c.ListObjects(ctx, "photos", minio.ListObjectsOptions{}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		top = append(top, o.Key)
	}
	// minio-go yields a page's objects, then its common prefixes.
	if strings.Join(top, ",") != "readme.txt,2025/,2026/" {
		t.Fatalf("top level: %v", top)
	}
	var all []string
	for o := range c.ListObjects(ctx, "photos", minio.ListObjectsOptions{Recursive: true, MaxKeys: 2}) {
		all = append(all, o.Key)
	}
	if len(all) != 4 || all[0] != "2025/old.jpg" {
		t.Fatalf("recursive, 2 a page: %v", all)
	}
	// Copy, then delete, then the bucket is not empty until all go.
	if _, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "photos", Object: "copy.txt"}, minio.CopySrcOptions{Bucket: "photos", Object: "readme.txt"}); err != nil {
		t.Fatal(err)
	}
	cp, _ := c.GetObject(ctx, "photos", "copy.txt", minio.GetObjectOptions{})
	if b, _ := io.ReadAll(cp); string(b) != "readme.txt" {
		t.Fatalf("copy: %q", b)
	}
	if err := c.RemoveBucket(ctx, "photos"); code(err) != "BucketNotEmpty" {
		t.Fatalf("remove non-empty bucket: %v", err)
	}
	objs := make(chan minio.ObjectInfo, 8)
	for _, k := range append(all, "copy.txt") {
		objs <- minio.ObjectInfo{Key: k}
	}
	close(objs)
	for r := range c.RemoveObjects(ctx, "photos", objs, minio.RemoveObjectsOptions{}) {
		t.Fatalf("remove objects: %v", r.Err)
	}
	if _, err := c.StatObject(ctx, "photos", "readme.txt", minio.StatObjectOptions{}); code(err) != "NoSuchKey" {
		t.Fatalf("stat after delete: %v", err)
	}
	if err := c.RemoveBucket(ctx, "photos"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StatObject(ctx, "photos", "x", minio.StatObjectOptions{}); code(err) != "NoSuchBucket" {
		t.Fatalf("stat in a removed bucket: %v", err)
	}
}

// Presigned URLs work with a plain HTTP client until they expire; a wrong
// secret is SignatureDoesNotMatch; a public-read bucket is readable
// anonymously but not writable.
func TestPresignedAndAnonymous(t *testing.T) {
	e := startS3(t)
	c := e.bootstrapClient()
	ctx := context.Background()
	for _, b := range []string{"private-b", "public-b"} {
		if err := c.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutObject(ctx, b, "hello.txt", strings.NewReader("hello"), 5, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := c.PresignedGetObject(ctx, "private-b", "hello.txt", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("presigned: %d %s", resp.StatusCode, b)
	}
	anon := "http://" + e.addr
	if resp, _ := http.Get(anon + "/private-b/hello.txt"); resp.StatusCode != 403 {
		t.Fatalf("anonymous read of a private bucket: %d", resp.StatusCode)
	}
	// The canned ACL is how a bucket is shared.
	put, _ := http.NewRequest("PUT", anon+"/public-b?acl", nil)
	put.Header.Set("x-amz-acl", "public-read")
	signedPut(t, c, put)
	if resp, _ := http.Get(anon + "/public-b/hello.txt"); resp == nil || resp.StatusCode != 200 {
		t.Fatalf("anonymous read of a public-read bucket: %v", resp)
	}
	if resp, _ := http.Get(anon + "/public-b?list-type=2"); resp == nil || resp.StatusCode != 200 {
		t.Fatalf("anonymous listing of a public-read bucket: %v", resp)
	}
	if resp, _ := http.Get(anon + "/private-b?list-type=2"); resp == nil || resp.StatusCode != 403 {
		t.Fatalf("anonymous listing of a private bucket: %v", resp)
	}
	w, _ := http.NewRequest("PUT", anon+"/public-b/evil.txt", strings.NewReader("x"))
	if resp, _ := http.DefaultClient.Do(w); resp.StatusCode != 403 {
		t.Fatalf("anonymous write to a public-read bucket: %d", resp.StatusCode)
	}
	bad := e.client("AKNOWHERE", "nope")
	if _, err := bad.ListBuckets(ctx); code(err) != "InvalidAccessKeyId" {
		t.Fatalf("unknown key: %v", err)
	}
}

// signedPut sends req signed by c's credentials (minio-go's presigner
// signs a URL; for a header request the test uses the client's own call).
func signedPut(t *testing.T, c *minio.Client, req *http.Request) {
	t.Helper()
	// minio-go has no canned-ACL call; a presigned PUT with the header
	// signed carries it.
	u, err := c.PresignHeader(context.Background(), "PUT", strings.Split(strings.TrimPrefix(req.URL.Path, "/"), "/")[0], "", time.Minute, req.URL.Query(), req.Header)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := http.NewRequest("PUT", u.String(), nil)
	r2.Header = req.Header.Clone()
	resp, err := http.DefaultClient.Do(r2)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("signed PUT %s: %d %s", req.URL, resp.StatusCode, b)
	}
}

// Project A's key cannot list, read, write or delete project B's buckets.
func TestTenancy(t *testing.T) {
	e := startS3(t)
	a, b := e.keyFor("alice", "proj-a"), e.keyFor("bob", "proj-b")
	ctx := context.Background()
	if err := b.MakeBucket(ctx, "bobs", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutObject(ctx, "bobs", "secret", strings.NewReader("s"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if bs, err := a.ListBuckets(ctx); err != nil || len(bs) != 0 {
		t.Fatalf("alice lists: %v %v", bs, err)
	}
	checks := map[string]error{}
	_, checks["get"] = a.StatObject(ctx, "bobs", "secret", minio.StatObjectOptions{})
	_, checks["put"] = a.PutObject(ctx, "bobs", "x", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	checks["delete"] = a.RemoveObject(ctx, "bobs", "secret", minio.RemoveObjectOptions{})
	checks["rb"] = a.RemoveBucket(ctx, "bobs")
	for o := range a.ListObjects(ctx, "bobs", minio.ListObjectsOptions{}) {
		checks["list"] = o.Err
	}
	for what, err := range checks {
		if code(err) != "AccessDenied" {
			t.Errorf("alice %s on bob's bucket: %v", what, err)
		}
	}
	if _, err := b.StatObject(ctx, "bobs", "secret", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("bob's object after alice: %v", err)
	}
	if err := a.MakeBucket(ctx, "bobs", minio.MakeBucketOptions{}); code(err) != "BucketAlreadyExists" {
		t.Fatalf("alice takes bob's name: %v", err)
	}
}

// Health and metrics live under /-/ (the seed's envelope for health), the
// registry entry says so, and buckets named "health" and "metrics" work.
func TestHealthAndReservedPaths(t *testing.T) {
	e := startS3(t)
	resp, err := http.Get("http://" + e.addr + "/-/health")
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Data struct {
			Status, Service string
		} `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	if resp.StatusCode != 200 || env.Data.Status != "ok" || env.Data.Service != "lightningstor" {
		t.Fatalf("health: %d %+v", resp.StatusCode, env)
	}
	got, err := e.st.ChainFire.Client().Get(context.Background(), "/photon/registry/lightningstor/", clientv3.WithPrefix())
	if err != nil || len(got.Kvs) != 1 || !strings.Contains(string(got.Kvs[0].Value), `"metrics_path":"/-/metrics"`) {
		t.Fatalf("registry: %v %v", got, err)
	}
	c := e.bootstrapClient()
	for _, b := range []string{"health", "metrics"} {
		if err := c.MakeBucket(context.Background(), b, minio.MakeBucketOptions{}); err != nil {
			t.Fatalf("bucket %s: %v", b, err)
		}
		if _, err := c.PutObject(context.Background(), b, "x", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put in %s: %v", b, err)
		}
	}
}

// Virtual-host-style addressing: the bucket in the Host
// ("<bucket>.localhost"), as clients configured for it send.
func TestVirtualHostStyle(t *testing.T) {
	e := startS3(t)
	boot := e.bootstrapClient()
	creds, err := boot.GetCreds()
	if err != nil {
		t.Fatal(err)
	}
	id, secret := creds.AccessKeyID, creds.SecretAccessKey
	_, port, _ := net.SplitHostPort(e.addr)
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, e.addr) // every <bucket>.localhost is this server
	}
	c, err := minio.New("localhost:"+port, &minio.Options{Creds: credentials.NewStaticV4(id, secret, ""), BucketLookup: minio.BucketLookupDNS,
		Transport: &http.Transport{DialContext: dial}, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "vhosted", minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, "vhosted", "k/v.txt", strings.NewReader("vh"), 2, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// The same object, path-style.
	o, err := boot.GetObject(ctx, "vhosted", "k/v.txt", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(o); string(b) != "vh" {
		t.Fatalf("read back %q", b)
	}
}

// Object tags: set on PUT (x-amz-tagging) and with PUT ?tagging, read with
// GET ?tagging, counted on HEAD, kept by a copy and a multipart upload,
// removed with DELETE ?tagging.
func TestObjectTagging(t *testing.T) {
	e := startS3(t)
	c := e.bootstrapClient()
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "tagged", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, "tagged", "a", strings.NewReader("a"), 1,
		minio.PutObjectOptions{UserTags: map[string]string{"team": "blue", "env": "prod"}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetObjectTagging(ctx, "tagged", "a", minio.GetObjectTaggingOptions{})
	if err != nil || got.ToMap()["team"] != "blue" || len(got.ToMap()) != 2 {
		t.Fatalf("tags: %v %v", got, err)
	}
	if st, err := c.StatObject(ctx, "tagged", "a", minio.StatObjectOptions{}); err != nil || st.UserTagCount != 2 {
		t.Fatalf("stat: %+v %v", st.UserTagCount, err)
	}
	newTags, _ := tags.NewTags(map[string]string{"team": "red"}, true)
	if err := c.PutObjectTagging(ctx, "tagged", "a", newTags, minio.PutObjectTaggingOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "tagged", Object: "b"}, minio.CopySrcOptions{Bucket: "tagged", Object: "a"}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetObjectTagging(ctx, "tagged", "b", minio.GetObjectTaggingOptions{}); err != nil || fmt.Sprint(got.ToMap()) != "map[team:red]" {
		t.Fatalf("copy's tags: %v %v", got, err)
	}
	if err := c.RemoveObjectTagging(ctx, "tagged", "a", minio.RemoveObjectTaggingOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetObjectTagging(ctx, "tagged", "a", minio.GetObjectTaggingOptions{}); err != nil || len(got.ToMap()) != 0 {
		t.Fatalf("after remove: %v %v", got, err)
	}
	// Eleven tags are refused, and change nothing (sent by hand: minio-go
	// drops a tag set it finds invalid).
	var many []string
	for i := 0; i < 11; i++ {
		many = append(many, fmt.Sprintf("k%d=v", i))
	}
	hdr := http.Header{"X-Amz-Tagging": {strings.Join(many, "&")}}
	u, err := c.PresignHeader(ctx, "PUT", "tagged", "c", time.Minute, nil, hdr)
	if err != nil {
		t.Fatal(err)
	}
	put, _ := http.NewRequest("PUT", u.String(), strings.NewReader("c"))
	put.Header = hdr
	resp, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "<Code>InvalidTag</Code>") {
		t.Fatalf("11 tags: %d %s", resp.StatusCode, b)
	}
	if _, err := c.StatObject(ctx, "tagged", "c", minio.StatObjectOptions{}); code(err) != "NoSuchKey" {
		t.Fatalf("the refused object exists: %v", err)
	}
	if _, err := c.GetObjectTagging(ctx, "tagged", "nowhere", minio.GetObjectTaggingOptions{}); code(err) != "NoSuchKey" {
		t.Fatalf("tags of a missing key: %v", err)
	}
}
