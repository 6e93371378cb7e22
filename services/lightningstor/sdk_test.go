package lightningstor_test

// The AWS SDK for Go v2 with its default settings: flexible checksums on
// every upload (x-amz-checksum-* headers over HTTP, aws-chunked trailers
// over HTTPS), its paginators, presigner and typed errors.

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/photoncloud/photon/internal/platform"
)

// sdkClient is an SDK client of endpoint with default checksum settings.
func sdkClient(t *testing.T, endpoint, id, secret string, hc *http.Client) *s3.Client {
	t.Helper()
	o := s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true, RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, nil
		}),
	}
	if hc != nil {
		o.HTTPClient = hc
	}
	return s3.New(o)
}

// sdkBootstrap is an SDK client with the key in DATA/s3-credentials.
func (e *s3Env) sdkBootstrap() *s3.Client {
	e.t.Helper()
	id, secret, err := platform.ReadS3Credentials(filepath.Join(e.dir, platform.S3CredentialsFile))
	if err != nil {
		e.t.Fatal(err)
	}
	return sdkClient(e.t, "http://"+e.addr, id, secret, nil)
}

// sdkKeyFor is an SDK client of a new member of project.
func (e *s3Env) sdkKeyFor(principal, project string) *s3.Client {
	e.t.Helper()
	cr, err := e.keyFor(principal, project).GetCreds()
	if err != nil {
		e.t.Fatal(err)
	}
	return sdkClient(e.t, "http://"+e.addr, cr.AccessKeyID, cr.SecretAccessKey, nil)
}

// tlsFront is an HTTPS reverse proxy to the S3 port, keeping the Host the
// client signed: the SDK sends aws-chunked trailers only over HTTPS.
// last returns the x-amz-content-sha256 and x-amz-trailer of the last
// request through it, to show what the SDK sent.
func (e *s3Env) tlsFront() (endpoint string, hc *http.Client, last func() (mode, trailer string)) {
	e.t.Helper()
	var mu sync.Mutex
	var mode, trailer string
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: e.addr})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		mode, trailer = r.Header.Get("X-Amz-Content-Sha256"), r.Header.Get("X-Amz-Trailer")
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	e.t.Cleanup(srv.Close)
	return srv.URL, srv.Client(), func() (string, string) { mu.Lock(); defer mu.Unlock(); return mode, trailer }
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func md5ETag(b []byte) string {
	s := md5.Sum(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

func sdkGet(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustSDK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSDKBucketsAndObjects(t *testing.T) {
	e := startS3(t)
	c := e.sdkBootstrap()
	ctx := context.Background()
	other := e.sdkKeyFor("sdk-mallory", "proj-m")
	s := aws.String

	t.Run("buckets", func(t *testing.T) {
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: s("sdk-b")})
		mustSDK(t, err)
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: s("Bad_Name")}); apiCode(err) != "InvalidBucketName" {
			t.Fatalf("bad name: %v", err)
		}
		if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: s("sdk-b")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: s("sdk-nowhere")}); httpStatus(err) != 404 {
			t.Fatalf("head missing bucket: %v", err)
		}
		loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: s("sdk-b")})
		if err != nil || loc.LocationConstraint != "" {
			t.Fatalf("location: %+v %v", loc, err)
		}
		_, err = other.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: s("sdk-m")})
		mustSDK(t, err)
		for cl, want := range map[*s3.Client]string{c: "sdk-b", other: "sdk-m"} {
			l, err := cl.ListBuckets(ctx, &s3.ListBucketsInput{})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, b := range l.Buckets {
				names = append(names, *b.Name)
			}
			if !strings.Contains(","+strings.Join(names, ",")+",", ","+want+",") || (cl == other && len(names) != 1) {
				t.Fatalf("list buckets: %v, want %s and only its project's", names, want)
			}
		}
		// Canned ACLs: public-read on create, then private again.
		_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: s("sdk-pub"), ACL: types.BucketCannedACLPublicRead})
		mustSDK(t, err)
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: s("sdk-pub"), Key: s("k"), Body: strings.NewReader("pub")})
		mustSDK(t, err)
		anon := func() int {
			resp, err := http.Get("http://" + e.addr + "/sdk-pub/k")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := anon(); got != 200 {
			t.Fatalf("anonymous GET of public-read: %d", got)
		}
		_, err = c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: s("sdk-pub"), ACL: types.BucketCannedACLPrivate})
		mustSDK(t, err)
		if got := anon(); got != 403 {
			t.Fatalf("anonymous GET after private: %d", got)
		}
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: s("sdk-pub")}); apiCode(err) != "BucketNotEmpty" {
			t.Fatalf("delete non-empty: %v", err)
		}
		_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: s("sdk-pub"), Key: s("k")})
		mustSDK(t, err)
		_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: s("sdk-pub")})
		mustSDK(t, err)
		if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: s("sdk-pub")}); httpStatus(err) != 404 {
			t.Fatalf("deleted bucket: %v", err)
		}
	})

	// Every checksum algorithm, small and past one aws-chunked chunk, as
	// headers (HTTP) and as trailers (HTTPS).
	t.Run("put checksums", func(t *testing.T) {
		ep, hc, last := e.tlsFront()
		id, secret, err := platform.ReadS3Credentials(filepath.Join(e.dir, platform.S3CredentialsFile))
		mustSDK(t, err)
		overTLS := sdkClient(t, ep, id, secret, hc)
		big := randomBytes(t, 3*mib+5)
		algs := []types.ChecksumAlgorithm{"", types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c,
			types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256}
		for _, via := range []struct {
			name string
			c    *s3.Client
		}{{"http", c}, {"https", overTLS}} {
			for _, alg := range algs {
				for _, body := range [][]byte{[]byte("small body"), big} {
					name := fmt.Sprintf("%s/%s/%d", via.name, alg, len(body))
					key := "sum/" + name
					out, err := via.c.PutObject(ctx, &s3.PutObjectInput{Bucket: s("sdk-b"), Key: &key, Body: bytes.NewReader(body), ChecksumAlgorithm: alg})
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if *out.ETag != md5ETag(body) {
						t.Fatalf("%s: ETag %s", name, *out.ETag)
					}
					// With an algorithm named, the SDK streams it as a trailer.
					if via.name == "https" && alg != "" {
						wantTrailer := "x-amz-checksum-" + strings.ToLower(string(alg))
						if mode, trailer := last(); mode != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" || trailer != wantTrailer {
							t.Fatalf("%s: the SDK sent %s with trailer %q", name, mode, trailer)
						}
					}
					if got := sdkGet(t, c, "sdk-b", key); !bytes.Equal(got, body) {
						t.Fatalf("%s: read back %d bytes", name, len(got))
					}
				}
			}
		}
	})

	t.Run("wrong checksum", func(t *testing.T) {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: s("sdk-b"), Key: s("bd"), Body: strings.NewReader("original")})
		mustSDK(t, err)
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: s("sdk-b"), Key: s("bd"), Body: strings.NewReader("replaced"), ChecksumCRC32: s("AAAAAA==")})
		if apiCode(err) != "BadDigest" || httpStatus(err) != 400 {
			t.Fatalf("wrong CRC32: %v", err)
		}
		if got := sdkGet(t, c, "sdk-b", "bd"); string(got) != "original" {
			t.Fatalf("object changed to %q", got)
		}
	})

	t.Run("get head conditional", func(t *testing.T) {
		body := randomBytes(t, 1000)
		put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: s("sdk-b"), Key: s("g"), Body: bytes.NewReader(body)})
		mustSDK(t, err)
		r, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: s("sdk-b"), Key: s("g"), Range: s("bytes=10-19")})
		mustSDK(t, err)
		got, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if !bytes.Equal(got, body[10:20]) || *r.ContentRange != "bytes 10-19/1000" {
			t.Fatalf("range: %d bytes, %v", len(got), *r.ContentRange)
		}
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: s("sdk-b"), Key: s("g")})
		if err != nil || *h.ContentLength != 1000 || *h.ETag != *put.ETag {
			t.Fatalf("head: %+v %v", h, err)
		}
		past, future := h.LastModified.Add(-time.Hour), h.LastModified.Add(time.Hour)
		for _, tc := range []struct {
			name   string
			in     s3.GetObjectInput
			status int
			code   string
		}{
			{"if-none-match", s3.GetObjectInput{IfNoneMatch: put.ETag}, 304, ""},
			{"if-modified-since", s3.GetObjectInput{IfModifiedSince: &future}, 304, ""},
			{"if-match other", s3.GetObjectInput{IfMatch: s(`"0123"`)}, 412, "PreconditionFailed"},
			{"if-unmodified-since", s3.GetObjectInput{IfUnmodifiedSince: &past}, 412, "PreconditionFailed"},
			{"if-match", s3.GetObjectInput{IfMatch: put.ETag}, 0, ""},
		} {
			in := tc.in
			in.Bucket, in.Key = s("sdk-b"), s("g")
			out, err := c.GetObject(ctx, &in)
			if err == nil {
				out.Body.Close()
			}
			if httpStatus(err) != tc.status || apiCode(err) != tc.code && tc.code != "" {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: s("sdk-b"), Key: s("g")})
		mustSDK(t, err)
		if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: s("sdk-b"), Key: s("g")}); apiCode(err) != "NoSuchKey" {
			t.Fatalf("deleted: %v", err)
		}
		var nsk *types.NoSuchKey
		if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: s("sdk-b"), Key: s("g")}); !errors.As(err, &nsk) {
			t.Fatalf("not a *types.NoSuchKey: %T", err)
		}
	})

	t.Run("copy", func(t *testing.T) {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: s("sdk-b"), Key: s("src"), Body: strings.NewReader("source"),
			ContentType: s("text/plain"), ContentEncoding: s("identity"), ContentDisposition: s("attachment"), CacheControl: s("no-cache"),
			Metadata: map[string]string{"color": "blue"}})
		mustSDK(t, err)
		_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: s("sdk-b"), Key: s("copy"), CopySource: s("sdk-b/src")})
		mustSDK(t, err)
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: s("sdk-b"), Key: s("copy")})
		if err != nil || *h.ContentType != "text/plain" || aws.ToString(h.ContentEncoding) != "identity" || aws.ToString(h.ContentDisposition) != "attachment" ||
			aws.ToString(h.CacheControl) != "no-cache" || h.Metadata["color"] != "blue" {
			t.Fatalf("COPY: %+v %v", h, err)
		}
		_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: s("sdk-b"), Key: s("copy"), CopySource: s("sdk-b/src"), MetadataDirective: types.MetadataDirectiveReplace,
			ContentType: s("application/x-new"), Metadata: map[string]string{"shape": "round"}})
		mustSDK(t, err)
		h, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: s("sdk-b"), Key: s("copy")})
		if err != nil || *h.ContentType != "application/x-new" || h.Metadata["shape"] != "round" || h.Metadata["color"] != "" || h.CacheControl != nil {
			t.Fatalf("REPLACE: %+v %v", h, err)
		}
		if got := sdkGet(t, c, "sdk-b", "copy"); string(got) != "source" {
			t.Fatalf("copy body %q", got)
		}
	})

	t.Run("tagging", func(t *testing.T) {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: s("sdk-b"), Key: s("t"), Body: strings.NewReader("t"), Tagging: s("team=blue&env=prod")})
		mustSDK(t, err)
		tags := func() map[string]string {
			out, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: s("sdk-b"), Key: s("t")})
			mustSDK(t, err)
			m := map[string]string{}
			for _, tg := range out.TagSet {
				m[*tg.Key] = *tg.Value
			}
			return m
		}
		if got := fmt.Sprint(tags()); got != "map[env:prod team:blue]" {
			t.Fatalf("tags on put: %s", got)
		}
		_, err = c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: s("sdk-b"), Key: s("t"),
			Tagging: &types.Tagging{TagSet: []types.Tag{{Key: s("team"), Value: s("red")}}}})
		mustSDK(t, err)
		if got := fmt.Sprint(tags()); got != "map[team:red]" {
			t.Fatalf("tags after put: %s", got)
		}
		_, err = c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: s("sdk-b"), Key: s("t")})
		mustSDK(t, err)
		if got := tags(); len(got) != 0 {
			t.Fatalf("tags after delete: %v", got)
		}
	})

	t.Run("delete objects", func(t *testing.T) {
		for _, k := range []string{"d1", "d2", "d3"} {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: s("sdk-b"), Key: s(k), Body: strings.NewReader(k)})
			mustSDK(t, err)
		}
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: s("sdk-b"), Delete: &types.Delete{
			Objects: []types.ObjectIdentifier{{Key: s("d1")}, {Key: s("d2")}}}})
		if err != nil || len(out.Deleted) != 2 || len(out.Errors) != 0 {
			t.Fatalf("delete: %+v %v", out, err)
		}
		out, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: s("sdk-b"), Delete: &types.Delete{
			Objects: []types.ObjectIdentifier{{Key: s("d3")}}, Quiet: aws.Bool(true)}})
		if err != nil || len(out.Deleted) != 0 || len(out.Errors) != 0 {
			t.Fatalf("quiet delete: %+v %v", out, err)
		}
		for _, k := range []string{"d1", "d2", "d3"} {
			if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: s("sdk-b"), Key: s(k)}); httpStatus(err) != 404 {
				t.Fatalf("%s after delete: %v", k, err)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: s("sdk-nowhere"), Key: s("k")}); apiCode(err) != "NoSuchBucket" {
			t.Fatalf("no such bucket: %v", err)
		}
		if _, err := sdkClient(t, "http://"+e.addr, "AKMADEUP", "secret", nil).ListBuckets(ctx, &s3.ListBucketsInput{}); apiCode(err) != "InvalidAccessKeyId" {
			t.Fatalf("made-up key: %v", err)
		}
		id, _, err := platform.ReadS3Credentials(filepath.Join(e.dir, platform.S3CredentialsFile))
		mustSDK(t, err)
		if _, err := sdkClient(t, "http://"+e.addr, id, "wrong-secret", nil).ListBuckets(ctx, &s3.ListBucketsInput{}); apiCode(err) != "SignatureDoesNotMatch" {
			t.Fatalf("wrong secret: %v", err)
		}
	})

	t.Run("presigned", func(t *testing.T) {
		p := s3.NewPresignClient(c)
		put, err := p.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: s("sdk-b"), Key: s("pre")}, s3.WithPresignExpires(time.Minute))
		mustSDK(t, err)
		req, _ := http.NewRequest(put.Method, put.URL, strings.NewReader("presigned body"))
		for k, v := range put.SignedHeader {
			if !strings.EqualFold(k, "host") {
				req.Header[k] = v
			}
		}
		resp, err := http.DefaultClient.Do(req)
		mustSDK(t, err)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("presigned PUT: %d", resp.StatusCode)
		}
		get, err := p.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: s("sdk-b"), Key: s("pre")}, s3.WithPresignExpires(time.Minute))
		mustSDK(t, err)
		resp, err = http.Get(get.URL)
		mustSDK(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "presigned body" {
			t.Fatalf("presigned GET: %d %q", resp.StatusCode, b)
		}
		short, err := p.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: s("sdk-b"), Key: s("pre")}, s3.WithPresignExpires(time.Second))
		mustSDK(t, err)
		time.Sleep(2100 * time.Millisecond) // past its expiry (X-Amz-Date has one-second resolution)
		resp, err = http.Get(short.URL)
		mustSDK(t, err)
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(b), "<Code>AccessDenied</Code>") {
			t.Fatalf("expired presigned GET: %d %s", resp.StatusCode, b)
		}
	})

	t.Run("tenancy", func(t *testing.T) {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: s("sdk-b"), Key: s("mine"), Body: strings.NewReader("mine")})
		mustSDK(t, err)
		checks := map[string]error{}
		_, checks["list"] = other.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: s("sdk-b")})
		_, checks["get"] = other.GetObject(ctx, &s3.GetObjectInput{Bucket: s("sdk-b"), Key: s("mine")})
		_, checks["put"] = other.PutObject(ctx, &s3.PutObjectInput{Bucket: s("sdk-b"), Key: s("theirs"), Body: strings.NewReader("x")})
		_, checks["delete"] = other.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: s("sdk-b"), Key: s("mine")})
		_, checks["delete bucket"] = other.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: s("sdk-b")})
		for what, err := range checks {
			if apiCode(err) != "AccessDenied" {
				t.Errorf("other project's %s: %v", what, err)
			}
		}
		if got := sdkGet(t, c, "sdk-b", "mine"); string(got) != "mine" {
			t.Fatalf("after the other project: %q", got)
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: s("sdk-b"), Key: s("theirs")}); httpStatus(err) != 404 {
			t.Fatalf("the other project's write landed: %v", err)
		}
	})
}

// ListObjects V1 and V2 over 2,500 keys with the SDK's paginator and by hand.
func TestSDKListing(t *testing.T) {
	e := startS3(t)
	c := e.sdkBootstrap()
	ctx := context.Background()
	s := aws.String
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: s("lst")})
	mustSDK(t, err)
	var keys []string
	for i := range 2500 {
		keys = append(keys, fmt.Sprintf("dir%d/key %04d+x", i%3, i))
	}
	keys = append(keys, "top-a", "top-b")
	work := make(chan string)
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: s("lst"), Key: s(k), Body: strings.NewReader("x")}); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)

	t.Run("v2 paginator", func(t *testing.T) {
		var got []string
		pg := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: s("lst"), MaxKeys: aws.Int32(700)})
		pages := 0
		for pg.HasMorePages() {
			p, err := pg.NextPage(ctx)
			mustSDK(t, err)
			pages++
			for _, o := range p.Contents {
				got = append(got, *o.Key)
			}
		}
		if strings.Join(got, "\n") != strings.Join(sorted, "\n") || pages != 4 {
			t.Fatalf("%d keys in %d pages, want %d in order without duplicates", len(got), pages, len(sorted))
		}
	})
	t.Run("v2 start-after, prefix, delimiter, url", func(t *testing.T) {
		// dir2/key 2498+x is the last key under dir2/: only the top-level ones follow.
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: s("lst"), StartAfter: s("dir2/key 2498+x"), MaxKeys: aws.Int32(3)})
		if err != nil || len(out.Contents) != 2 || *out.Contents[0].Key != "top-a" || *out.Contents[1].Key != "top-b" || *out.IsTruncated {
			t.Fatalf("start-after: %+v %v", out, err)
		}
		out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: s("lst"), Delimiter: s("/")})
		mustSDK(t, err)
		var prefixes []string
		for _, p := range out.CommonPrefixes {
			prefixes = append(prefixes, *p.Prefix)
		}
		if strings.Join(prefixes, ",") != "dir0/,dir1/,dir2/" || len(out.Contents) != 2 || *out.Contents[0].Key != "top-a" {
			t.Fatalf("delimiter: %v %d", prefixes, len(out.Contents))
		}
		out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: s("lst"), Prefix: s("dir1/"), EncodingType: types.EncodingTypeUrl, MaxKeys: aws.Int32(2)})
		mustSDK(t, err)
		// The SDK hands back the keys as sent: url-encoded (space as +, + as %2B).
		if len(out.Contents) != 2 || *out.Contents[0].Key != "dir1/key+0001%2Bx" || !*out.IsTruncated || out.NextContinuationToken == nil {
			t.Fatalf("prefix+url: %v %v", *out.Contents[0].Key, out.IsTruncated)
		}
		next, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: s("lst"), Prefix: s("dir1/"), ContinuationToken: out.NextContinuationToken, MaxKeys: aws.Int32(1)})
		if err != nil || *next.Contents[0].Key != "dir1/key 0007+x" {
			t.Fatalf("continuation: %v %v", next, err)
		}
	})
	t.Run("v1 marker", func(t *testing.T) {
		var got []string
		marker := ""
		for {
			out, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: s("lst"), Marker: s(marker), MaxKeys: aws.Int32(1000)})
			mustSDK(t, err)
			for _, o := range out.Contents {
				got = append(got, *o.Key)
			}
			if !*out.IsTruncated {
				break
			}
			marker = got[len(got)-1]
		}
		if strings.Join(got, "\n") != strings.Join(sorted, "\n") {
			t.Fatalf("v1: %d keys, want %d in order", len(got), len(sorted))
		}
		out, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: s("lst"), Delimiter: s("/"), Prefix: s("dir"), MaxKeys: aws.Int32(2)})
		if err != nil || len(out.CommonPrefixes) != 2 || !*out.IsTruncated || aws.ToString(out.NextMarker) != "dir1/" {
			t.Fatalf("v1 delimiter: %+v %v", out, err)
		}
	})
}

// Multipart through the SDK: parts with checksums, a ranged part copy, the
// completion's checks, listing and abort.
func TestSDKMultipart(t *testing.T) {
	e := startS3(t)
	c := e.sdkBootstrap()
	ctx := context.Background()
	s := aws.String
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: s("mpu")})
	mustSDK(t, err)
	src := randomBytes(t, 6*mib)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: s("mpu"), Key: s("src"), Body: bytes.NewReader(src)})
	mustSDK(t, err)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: s("mpu"), Key: s("obj"), ContentType: s("application/x-mp")})
	mustSDK(t, err)
	p1 := randomBytes(t, 5*mib)
	p3 := randomBytes(t, 1000)
	part := func(n int32, b []byte, alg types.ChecksumAlgorithm) string {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: s("mpu"), Key: s("obj"), UploadId: up.UploadId, PartNumber: aws.Int32(n), Body: bytes.NewReader(b), ChecksumAlgorithm: alg})
		mustSDK(t, err)
		return *out.ETag
	}
	e1 := part(1, p1, types.ChecksumAlgorithmCrc64nvme)
	cp, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: s("mpu"), Key: s("obj"), UploadId: up.UploadId, PartNumber: aws.Int32(2),
		CopySource: s("mpu/src"), CopySourceRange: s("bytes=1-5242880")})
	mustSDK(t, err)
	p2 := src[1 : 5*mib+1]
	e3 := part(3, p3, "")
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: s("mpu"), Key: s("obj"), UploadId: up.UploadId})
	if err != nil || len(lp.Parts) != 3 || *lp.Parts[1].ETag != md5ETag(p2) || *lp.Parts[1].Size != 5*mib {
		t.Fatalf("list parts: %+v %v", lp, err)
	}
	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: s("mpu")})
	if err != nil || len(lu.Uploads) != 1 || *lu.Uploads[0].UploadId != *up.UploadId {
		t.Fatalf("list uploads: %+v %v", lu, err)
	}
	complete := func(parts ...types.CompletedPart) (*s3.CompleteMultipartUploadOutput, error) {
		return c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: s("mpu"), Key: s("obj"), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	}
	cpt := func(n int32, etag string) types.CompletedPart {
		return types.CompletedPart{PartNumber: aws.Int32(n), ETag: s(etag)}
	}
	if _, err := complete(cpt(1, e1), cpt(2, `"00000000000000000000000000000000"`)); apiCode(err) != "InvalidPart" {
		t.Fatalf("wrong ETag: %v", err)
	}
	if _, err := complete(cpt(2, *cp.CopyPartResult.ETag), cpt(1, e1)); apiCode(err) != "InvalidPartOrder" {
		t.Fatalf("order: %v", err)
	}
	if _, err := complete(cpt(1, e1), cpt(3, e3), cpt(2, *cp.CopyPartResult.ETag)); apiCode(err) != "InvalidPartOrder" {
		t.Fatalf("order 1,3,2: %v", err)
	}
	out, err := complete(cpt(1, e1), cpt(2, *cp.CopyPartResult.ETag), cpt(3, e3))
	mustSDK(t, err)
	if want := `"` + s3MultipartETag(p1, p2, p3) + `"`; *out.ETag != want {
		t.Fatalf("ETag %s, want %s", *out.ETag, want)
	}
	if got := sdkGet(t, c, "mpu", "obj"); !bytes.Equal(got, append(append(append([]byte(nil), p1...), p2...), p3...)) {
		t.Fatalf("read back %d bytes", len(got))
	}

	// A small part before the last is EntityTooSmall; abort clears it.
	up2, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: s("mpu"), Key: s("small")})
	mustSDK(t, err)
	var etags []string
	for n := int32(1); n <= 2; n++ {
		o, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: s("mpu"), Key: s("small"), UploadId: up2.UploadId, PartNumber: aws.Int32(n), Body: strings.NewReader("tiny")})
		mustSDK(t, err)
		etags = append(etags, *o.ETag)
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: s("mpu"), Key: s("small"), UploadId: up2.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{cpt(1, etags[0]), cpt(2, etags[1])}}})
	if apiCode(err) != "EntityTooSmall" {
		t.Fatalf("small part: %v", err)
	}
	_, err = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: s("mpu"), Key: s("small"), UploadId: up2.UploadId})
	mustSDK(t, err)
	if _, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: s("mpu"), Key: s("small"), UploadId: up2.UploadId}); apiCode(err) != "NoSuchUpload" {
		t.Fatalf("after abort: %v", err)
	}
}
