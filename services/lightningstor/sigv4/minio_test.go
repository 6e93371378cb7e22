package sigv4

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	testKey    = "PHOTONTESTKEY"
	testSecret = "s3cr3t/with+odd=chars"
	testRegion = "photon-1"
	testBucket = "bucket"
)

// s3Harness is the smallest S3 server that satisfies minio-go for PUT, GET
// and ListObjectsV2, authenticating every request with Verify. It is a test
// harness of the verifier, not a model of storage.
type s3Harness struct {
	url   string
	clock time.Duration // added to time.Now(): simulates a skewed server clock

	mu      sync.Mutex
	objects map[string][]byte
	modes   []string // x-amz-content-sha256 of each authenticated PUT
	results []Result
}

func newHarness(t *testing.T) *s3Harness {
	t.Helper()
	h := &s3Harness{objects: map[string][]byte{}}
	srv := httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

func secrets(_ context.Context, id string) (string, error) {
	if id == testKey {
		return testSecret, nil
	}
	return "", fmt.Errorf("key %q: %w", id, ErrUnknownKey)
}

// s3Code is the mapping the S3 layer is expected to make.
func s3Code(err error) (int, string) {
	for _, m := range []struct {
		err    error
		status int
		code   string
	}{
		{ErrUnknownKey, 403, "InvalidAccessKeyId"},
		{ErrSignatureMismatch, 403, "SignatureDoesNotMatch"},
		{ErrRequestTimeTooSkewed, 403, "RequestTimeTooSkewed"},
		{ErrExpired, 403, "AccessDenied"},
		{ErrMalformed, 400, "AuthorizationHeaderMalformed"},
		{ErrUnsupported, 501, "NotImplemented"},
		{ErrContentSHA256Mismatch, 400, "XAmzContentSHA256Mismatch"},
		{ErrBadDigest, 400, "BadDigest"},
		{ErrChecksumMismatch, 400, "BadDigest"},
		{ErrInvalidChecksum, 400, "InvalidRequest"},
	} {
		if errors.Is(err, m.err) {
			return m.status, m.code
		}
	}
	return 400, "IncompleteBody"
}

func writeErr(w http.ResponseWriter, err error) {
	status, code := s3Code(err)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>1</RequestId></Error>`, code, err)
}

func (h *s3Harness) serve(w http.ResponseWriter, r *http.Request) {
	res, body, err := Verify(r.Context(), r, secrets, time.Now().Add(h.clock))
	if err != nil {
		writeErr(w, err)
		return
	}
	defer body.Close()
	if res.Anonymous {
		writeErr(w, ErrSignatureMismatch)
		return
	}
	key := strings.TrimPrefix(r.URL.Path, "/"+testBucket+"/")
	switch {
	case r.Method == http.MethodPut:
		data, err := io.ReadAll(body) // the verifier streams; the harness may hold a few MiB
		if err != nil {
			writeErr(w, err)
			return
		}
		h.mu.Lock()
		h.objects[key] = data
		h.modes = append(h.modes, r.Header.Get("X-Amz-Content-Sha256"))
		h.results = append(h.results, res)
		h.mu.Unlock()
		sum := md5.Sum(data)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	case r.Method == http.MethodGet && r.URL.Path == "/"+testBucket+"/":
		q := r.URL.Query()
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>%s</Name><Prefix>%s</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`,
			testBucket, xmlEscape(q.Get("prefix")))
	case r.Method == http.MethodGet:
		h.mu.Lock()
		data, ok := h.objects[key]
		h.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>`)
			return
		}
		sum := md5.Sum(data)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (h *s3Harness) lastMode(t *testing.T) string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.modes) == 0 {
		t.Fatal("no PUT reached the handler authenticated")
	}
	return h.modes[len(h.modes)-1]
}

func (h *s3Harness) object(key string) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.objects[key]
	return b, ok
}

// tamper flips one byte of each request body at offset, after signing.
type tamper struct {
	offset int64
	header func(http.Header)
}

func (tp tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if tp.header != nil {
		tp.header(r.Header)
	}
	if tp.offset >= 0 && r.Body != nil {
		r.Body = &flipReader{rc: r.Body, at: tp.offset}
	}
	return http.DefaultTransport.RoundTrip(r)
}

type flipReader struct {
	rc  io.ReadCloser
	at  int64
	pos int64
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.rc.Read(p)
	if i := f.at - f.pos; i >= 0 && i < int64(n) {
		p[i] ^= 0x01
	}
	f.pos += int64(n)
	return n, err
}

func (f *flipReader) Close() error { return f.rc.Close() }

func newClient(t *testing.T, h *s3Harness, key, secret string, rt http.RoundTripper) *minio.Client {
	t.Helper()
	u, err := url.Parse(h.url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(key, secret, ""),
		Secure:       false,
		Region:       testRegion,
		BucketLookup: minio.BucketLookupPath,
		Transport:    rt,
		MaxRetries:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func payload(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestMinioPutModes(t *testing.T) {
	h := newHarness(t)
	c := newClient(t, h, testKey, testSecret, nil)
	core := &minio.Core{Client: c}
	ctx := context.Background()

	for _, size := range []int{0, 1, 65536, 65537, 5<<20 + 123} {
		data := payload(size)
		cases := []struct {
			name string
			put  func(key string) error
			mode string
		}{
			// minio-go signs PutObject over plain HTTP as aws-chunked by default.
			{"streaming", func(key string) error {
				_, err := c.PutObject(ctx, testBucket, key, bytes.NewReader(data), int64(size), minio.PutObjectOptions{})
				return err
			}, streamingPayload},
			{"streaming+md5", func(key string) error {
				_, err := c.PutObject(ctx, testBucket, key, bytes.NewReader(data), int64(size), minio.PutObjectOptions{SendContentMd5: true})
				return err
			}, streamingPayload},
			// DisableContentSha256 turns streaming off: UNSIGNED-PAYLOAD.
			{"unsigned+md5", func(key string) error {
				_, err := c.PutObject(ctx, testBucket, key, bytes.NewReader(data), int64(size), minio.PutObjectOptions{DisableContentSha256: true, SendContentMd5: true})
				return err
			}, unsignedPayload},
			// Core.PutObject with a sha256 and streaming off signs the hex SHA-256.
			{"sha256", func(key string) error {
				_, err := core.PutObject(ctx, testBucket, key, bytes.NewReader(data), int64(size), "", sha256Hex(data), minio.PutObjectOptions{DisableContentSha256: true})
				return err
			}, sha256Hex(data)},
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%d", tc.name, size), func(t *testing.T) {
				key := fmt.Sprintf("%s-%d", tc.name, size)
				if err := tc.put(key); err != nil {
					t.Fatalf("put: %v", err)
				}
				if got := h.lastMode(t); got != tc.mode {
					t.Fatalf("client sent x-amz-content-sha256 %q, want %q", got, tc.mode)
				}
				stored, _ := h.object(key)
				if !bytes.Equal(stored, data) {
					t.Fatalf("stored %d bytes differ from the %d sent", len(stored), len(data))
				}
				obj, err := c.GetObject(ctx, testBucket, key, minio.GetObjectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				defer obj.Close()
				got, err := io.ReadAll(obj)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("GetObject: %d bytes, %v", len(got), err)
				}
			})
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.results {
		if r.AccessKeyID != testKey || r.Region != testRegion || r.Anonymous {
			t.Fatalf("result %+v", r)
		}
	}
}

// Object names whose canonical URI must match minio-go's encoding exactly.
var oddKeys = []string{
	"plain.txt",
	"with space",
	"a+b",
	"100%",
	"100%25",
	"x%2Fy",
	"dir/sub/file",
	"ünïcødé/ключ/鍵",
	"emoji-😀",
	"q?a=b&c=d#frag",
	"semi;colon,comma",
	"tilde~star*paren()!'",
	"$dollar@at:colon",
	"tab\tand\nnewline",
	"dots/../and/./slashes//double",
	"trailing/",
}

func TestMinioObjectNames(t *testing.T) {
	h := newHarness(t)
	c := newClient(t, h, testKey, testSecret, nil)
	ctx := context.Background()
	for _, key := range oddKeys {
		t.Run(key, func(t *testing.T) {
			data := []byte("body of " + key)
			if _, err := c.PutObject(ctx, testBucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
				t.Fatalf("put: %v", err)
			}
			if got, ok := h.object(key); !ok || !bytes.Equal(got, data) {
				t.Fatalf("server stored %q under %q (found %v)", got, key, ok)
			}
			u, err := c.PresignedGetObject(ctx, testBucket, key, time.Hour, url.Values{"response-content-disposition": {`attachment; filename="a b+c.txt"`}})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(u.String())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !bytes.Equal(got, data) {
				t.Fatalf("presigned GET: %d %q", resp.StatusCode, got)
			}
			// The query string is canonicalized too: ListObjectsV2 with the key as prefix.
			for o := range c.ListObjects(ctx, testBucket, minio.ListObjectsOptions{Prefix: key, StartAfter: key + " ~"}) {
				if o.Err != nil {
					t.Fatalf("list: %v", o.Err)
				}
			}
		})
	}
}

func TestMinioPresigned(t *testing.T) {
	h := newHarness(t)
	c := newClient(t, h, testKey, testSecret, nil)
	ctx := context.Background()
	data := payload(4096)

	// Presigned PUT with a plain HTTP client: UNSIGNED-PAYLOAD.
	pu, err := c.PresignedPutObject(ctx, testBucket, "pre sign+d", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, pu.String(), bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %d", resp.StatusCode)
	}

	get := func(t *testing.T, u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 {
			if !bytes.Equal(b, data) {
				t.Fatal("presigned GET returned other bytes")
			}
			return 200, ""
		}
		return resp.StatusCode, string(b)
	}
	gu, err := c.PresignedGetObject(ctx, testBucket, "pre sign+d", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, gu.String()); code != 200 {
		t.Fatalf("presigned GET: %d %s", code, body)
	}

	tests := []struct {
		name  string
		clock time.Duration
		edit  func(q url.Values)
		code  string
	}{
		{"expired", 2 * time.Hour, nil, "AccessDenied"},
		{"dated in the future", -time.Hour, nil, "RequestTimeTooSkewed"},
		{"longer expiry", 0, func(q url.Values) { q.Set("X-Amz-Expires", "7200") }, "SignatureDoesNotMatch"},
		{"expiry over 7 days", 0, func(q url.Values) { q.Set("X-Amz-Expires", "604801") }, "AuthorizationHeaderMalformed"},
		{"other object via added param", 0, func(q url.Values) { q.Set("versionId", "1") }, "SignatureDoesNotMatch"},
		{"no signature", 0, func(q url.Values) { q.Del("X-Amz-Signature") }, "AuthorizationHeaderMalformed"},
		{"v2 style", 0, func(q url.Values) {
			for k := range q {
				q.Del(k)
			}
			q.Set("AWSAccessKeyId", testKey)
			q.Set("Signature", "x")
			q.Set("Expires", "9999999999")
		}, "NotImplemented"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.clock = tc.clock
			t.Cleanup(func() { h.clock = 0 })
			u := *gu
			if tc.edit != nil {
				q := u.Query()
				tc.edit(q)
				u.RawQuery = q.Encode()
			}
			code, body := get(t, u.String())
			if code == 200 || !strings.Contains(body, "<Code>"+tc.code+"</Code>") {
				t.Fatalf("got %d %s, want %s", code, body, tc.code)
			}
		})
	}
}

func TestMinioRejects(t *testing.T) {
	ctx := context.Background()
	big := payload(3<<20 + 5)
	small := payload(100)
	tests := []struct {
		name   string
		key    string
		secret string
		rt     http.RoundTripper
		clock  time.Duration
		data   []byte
		opts   minio.PutObjectOptions
		sha    bool // Core.PutObject with the payload's SHA-256
		code   string
	}{
		{name: "wrong secret", key: testKey, secret: "not-the-secret", data: small, code: "SignatureDoesNotMatch"},
		{name: "unknown key", key: "NOSUCHKEY", secret: testSecret, data: small, code: "InvalidAccessKeyId"},
		{name: "clock ahead", key: testKey, secret: testSecret, clock: 16 * time.Minute, data: small, code: "RequestTimeTooSkewed"},
		{name: "clock behind", key: testKey, secret: testSecret, clock: -16 * time.Minute, data: small, code: "RequestTimeTooSkewed"},
		{name: "tampered chunk", key: testKey, secret: testSecret, rt: tamper{offset: 2 << 20}, data: big, code: "SignatureDoesNotMatch"},
		{name: "tampered first chunk header", key: testKey, secret: testSecret, rt: tamper{offset: 20}, data: small, code: "SignatureDoesNotMatch"},
		{name: "tampered sha256 body", key: testKey, secret: testSecret, rt: tamper{offset: 3 << 20}, data: big, sha: true, opts: minio.PutObjectOptions{DisableContentSha256: true}, code: "XAmzContentSHA256Mismatch"},
		{name: "tampered unsigned body with md5", key: testKey, secret: testSecret, rt: tamper{offset: 1}, data: big, opts: minio.PutObjectOptions{DisableContentSha256: true, SendContentMd5: true}, code: "BadDigest"},
		{name: "unsigned x-amz header added", key: testKey, secret: testSecret, rt: tamper{offset: -1, header: func(h http.Header) { h.Set("X-Amz-Acl", "public-read") }}, data: small, code: "SignatureDoesNotMatch"},
		{name: "signed header altered", key: testKey, secret: testSecret, rt: tamper{offset: -1, header: func(h http.Header) { h.Set("X-Amz-Meta-Owner", "mallory") }}, data: small, opts: minio.PutObjectOptions{UserMetadata: map[string]string{"owner": "alice"}}, code: "SignatureDoesNotMatch"},
		{name: "sigv2 header", key: testKey, secret: testSecret, rt: tamper{offset: -1, header: func(h http.Header) { h.Set("Authorization", "AWS "+testKey+":c2lnbmF0dXJl") }}, data: small, code: "NotImplemented"},
		{name: "trailer mode swapped in", key: testKey, secret: testSecret, rt: tamper{offset: -1, header: func(h http.Header) {
			h.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
			h.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		}}, data: small, code: "SignatureDoesNotMatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.clock = tc.clock
			c := newClient(t, h, tc.key, tc.secret, tc.rt)
			var err error
			if tc.sha {
				_, err = (&minio.Core{Client: c}).PutObject(ctx, testBucket, "obj", bytes.NewReader(tc.data), int64(len(tc.data)), "", sha256Hex(tc.data), tc.opts)
			} else {
				_, err = c.PutObject(ctx, testBucket, "obj", bytes.NewReader(tc.data), int64(len(tc.data)), tc.opts)
			}
			if got := minio.ToErrorResponse(err).Code; got != tc.code {
				t.Fatalf("PutObject error %v (code %q), want %s", err, got, tc.code)
			}
			if _, ok := h.object("obj"); ok {
				t.Fatal("the handler accepted the object")
			}
		})
	}
}
