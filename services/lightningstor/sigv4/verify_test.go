package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// serverSide sends a client request through the wire format and parses it
// back as net/http's server does (Host, Content-Length moved out of Header).
// rawPath, if set, replaces the request-target's path as written on the wire.
func serverSide(t *testing.T, c *http.Request, rawPath string) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Write(&buf); err != nil {
		t.Fatal(err)
	}
	wire := buf.Bytes()
	if rawPath != "" {
		line, rest, _ := bytes.Cut(wire, []byte("\r\n"))
		parts := strings.SplitN(string(line), " ", 3)
		_, query, _ := strings.Cut(parts[1], "?")
		target := rawPath
		if query != "" {
			target += "?" + query
		}
		wire = append([]byte(parts[0]+" "+target+" "+parts[2]+"\r\n"), rest...)
	}
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func clientReq(t *testing.T, method, url string, body []byte) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		r.Body, r.ContentLength = nil, 0
	}
	return r
}

func signed(t *testing.T, method, url string, body []byte, edit func(*http.Request)) *http.Request {
	t.Helper()
	c := clientReq(t, method, url, body)
	sum := sha256.Sum256(body)
	c.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	if edit != nil {
		edit(c)
	}
	return signer.SignV4(*c, testKey, testSecret, "", testRegion)
}

// The canonical URI is rebuilt from the decoded path, so a client that sends
// lower-case escapes or leaves sub-delimiters raw still verifies.
func TestEquivalentPathEncodings(t *testing.T) {
	for _, raw := range []string{
		"/bucket/%c3%bc!*'()$@:,;=",
		"/bucket/%C3%BC%21%2A%27%28%29%24%40%3A%2C%3B%3D",
		"/bucket/\xc3\xbc!*'()$@:,;=",
	} {
		c := signed(t, http.MethodGet, "http://127.0.0.1:9000/bucket/ü!*'()$@:,;=", nil, nil)
		r := serverSide(t, c, raw)
		if _, _, err := Verify(context.Background(), r, secrets, time.Now()); err != nil {
			t.Errorf("path sent as %q: %v", raw, err)
		}
	}
	// A different decoded path is a different request.
	c := signed(t, http.MethodGet, "http://127.0.0.1:9000/bucket/a%2Fb", nil, nil)
	r := serverSide(t, c, "/bucket/a%252Fb")
	if _, _, err := Verify(context.Background(), r, secrets, time.Now()); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("double-encoded path: %v, want ErrSignatureMismatch", err)
	}
}

func TestHeaderAuthErrors(t *testing.T) {
	now := time.Now()
	withAuth := func(f func(string) string) func(*http.Request) *http.Request {
		return func(r *http.Request) *http.Request {
			r.Header.Set("Authorization", f(r.Header.Get("Authorization")))
			return r
		}
	}
	tests := []struct {
		name string
		edit func(*http.Request) // before signing
		post func(*http.Request) *http.Request
		want error
	}{
		{"ok", nil, nil, nil},
		{"extra signed header", func(r *http.Request) { r.Header.Set("X-Amz-Meta-A", "  two   spaces ") }, nil, nil},
		{"sigv4a", nil, withAuth(func(a string) string { return strings.Replace(a, "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1) }), ErrUnsupported},
		{"unknown algorithm", nil, withAuth(func(a string) string { return strings.Replace(a, "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", 1) }), ErrMalformed},
		{"service not s3", nil, withAuth(func(a string) string { return strings.Replace(a, "/s3/", "/ec2/", 1) }), ErrMalformed},
		{"scope date differs", nil, withAuth(func(a string) string {
			return strings.Replace(a, now.UTC().Format("/20060102/"), "/19990101/", 1)
		}), ErrMalformed},
		{"bad terminator", nil, withAuth(func(a string) string { return strings.Replace(a, "aws4_request", "aws5_request", 1) }), ErrMalformed},
		{"host not signed", nil, withAuth(func(a string) string { return strings.Replace(a, "host;", "", 1) }), ErrMalformed},
		{"missing signature", nil, withAuth(func(a string) string { a, _, _ = strings.Cut(a, ", Signature="); return a }), ErrMalformed},
		{"short signature", nil, withAuth(func(a string) string { return a[:len(a)-1] }), ErrMalformed},
		{"other region", nil, withAuth(func(a string) string { return strings.Replace(a, "/"+testRegion+"/", "/us-east-1/", 1) }), ErrSignatureMismatch},
		{"bad x-amz-date", nil, func(r *http.Request) *http.Request { r.Header.Set("X-Amz-Date", "yesterday"); return r }, ErrMalformed},
		{"no content sha256", nil, func(r *http.Request) *http.Request { r.Header.Del("X-Amz-Content-Sha256"); return r }, ErrMalformed},
		{"garbage content sha256", func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "deadbeef") }, nil, ErrMalformed},
		{"changed content sha256", nil, func(r *http.Request) *http.Request { r.Header.Set("X-Amz-Content-Sha256", unsignedPayload); return r }, ErrSignatureMismatch},
		{"also presigned", nil, func(r *http.Request) *http.Request { r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256"; return r }, ErrMalformed},
		{"bad query escape", nil, func(r *http.Request) *http.Request { r.URL.RawQuery = "a=%zz"; return r }, ErrMalformed},
		{"bad content-md5", func(r *http.Request) { r.Header.Set("Content-Md5", "not base64") }, nil, ErrBadDigest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := signed(t, http.MethodPut, "http://127.0.0.1:9000/bucket/key?tagging=&x=a%20b", []byte("hello"), tc.edit)
			if tc.post != nil {
				c = tc.post(c)
			}
			r := serverSide(t, c, "")
			res, body, err := Verify(context.Background(), r, secrets, now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
			if err == nil {
				if res.AccessKeyID != testKey || res.Region != testRegion {
					t.Fatalf("result %+v", res)
				}
				if b, err := io.ReadAll(body); err != nil || string(b) != "hello" {
					t.Fatalf("body %q %v", b, err)
				}
			}
		})
	}
}

func TestSecretsErrorPassesThrough(t *testing.T) {
	boom := errors.New("store down")
	r := serverSide(t, signed(t, http.MethodGet, "http://127.0.0.1:9000/b/k", nil, nil), "")
	_, _, err := Verify(context.Background(), r, func(context.Context, string) (string, error) { return "", boom }, time.Now())
	if !errors.Is(err, boom) || errors.Is(err, ErrUnknownKey) {
		t.Fatalf("got %v", err)
	}
}

func TestAnonymous(t *testing.T) {
	data := []byte("public bytes")
	sum := md5.Sum(data)
	tests := []struct {
		name    string
		md5     string
		sha     string
		readErr error
		err     error
	}{
		{name: "plain"},
		{name: "good md5", md5: base64.StdEncoding.EncodeToString(sum[:])},
		{name: "bad md5", md5: base64.StdEncoding.EncodeToString(make([]byte, 16)), readErr: ErrBadDigest},
		{name: "bad sha256", sha: strings.Repeat("0", 64), readErr: ErrContentSHA256Mismatch},
		{name: "streaming without signature", sha: streamingPayload, err: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := clientReq(t, http.MethodPut, "http://127.0.0.1:9000/b/k", data)
			if tc.md5 != "" {
				c.Header.Set("Content-Md5", tc.md5)
			}
			if tc.sha != "" {
				c.Header.Set("X-Amz-Content-Sha256", tc.sha)
			}
			res, body, err := Verify(context.Background(), serverSide(t, c, ""), secrets, time.Now())
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Verify: %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if !res.Anonymous || res.AccessKeyID != "" {
				t.Fatalf("result %+v", res)
			}
			n, err := io.Copy(io.Discard, body)
			if !errors.Is(err, tc.readErr) || (tc.readErr == nil) != (err == nil) {
				t.Fatalf("read %d bytes: %v, want %v", n, err, tc.readErr)
			}
		})
	}
}

// streamingWire signs data as aws-chunked with minio-go's signer and returns
// the encoded body for mutation.
func streamingWire(t *testing.T, data []byte, chunkedTE bool) (*http.Request, []byte) {
	t.Helper()
	c := clientReq(t, http.MethodPut, "http://127.0.0.1:9000/bucket/obj", data)
	c = signer.StreamingSignV4(c, testKey, testSecret, "", testRegion, int64(len(data)), time.Now().UTC(), sha256Hasher{sha256.New()})
	enc, err := io.ReadAll(c.Body)
	if err != nil {
		t.Fatal(err)
	}
	if chunkedTE {
		c.TransferEncoding = []string{"chunked"}
	}
	return c, enc
}

// sha256Hasher adapts hash.Hash to minio-go's md5simd.Hasher.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

func TestStreamingFraming(t *testing.T) {
	data := payload(200_000)
	tests := []struct {
		name    string
		mutate  func([]byte) []byte
		te      bool
		wantErr error
	}{
		{name: "intact", mutate: func(b []byte) []byte { return b }},
		{name: "intact, transfer-encoding chunked", mutate: func(b []byte) []byte { return b }, te: true},
		{name: "truncated in data", mutate: func(b []byte) []byte { return b[:1000] }, wantErr: io.ErrUnexpectedEOF},
		{name: "no final chunk", mutate: func(b []byte) []byte { return b[:bytes.LastIndex(b, []byte("0;chunk-signature="))] }, wantErr: io.ErrUnexpectedEOF},
		{name: "data after final chunk", mutate: func(b []byte) []byte { return append(b, "more"...) }, wantErr: ErrMalformed},
		{name: "chunks swapped", mutate: func(b []byte) []byte {
			n := 88 + 65536 + 2 // "10000;chunk-signature=<64>\r\n" + data + "\r\n"
			out := append([]byte{}, b[n:2*n]...)
			out = append(out, b[:n]...)
			return append(out, b[2*n:]...)
		}, wantErr: ErrSignatureMismatch},
		{name: "chunk larger than declared length", mutate: func(b []byte) []byte {
			return append([]byte("ffffffff"), b[bytes.IndexByte(b, ';'):]...)
		}, wantErr: ErrMalformed},
		{name: "size not hex", mutate: func(b []byte) []byte { return append([]byte("-1"), b[bytes.IndexByte(b, ';'):]...) }, wantErr: ErrMalformed},
		{name: "header without CRLF", mutate: func(b []byte) []byte { return bytes.Replace(b, []byte("\r\n"), []byte("\n"), 1) }, wantErr: ErrMalformed},
		{name: "endless header", mutate: func(b []byte) []byte { return bytes.Repeat([]byte("1"), 10000) }, wantErr: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, enc := streamingWire(t, data, tc.te)
			body := tc.mutate(enc)
			c.Body = io.NopCloser(bytes.NewReader(body))
			if tc.te {
				c.ContentLength = -1
			} else {
				c.ContentLength = int64(len(body))
			}
			res, rc, err := Verify(context.Background(), serverSide(t, c, ""), secrets, time.Now())
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.ContentLength != int64(len(data)) {
				t.Fatalf("ContentLength %d", res.ContentLength)
			}
			got, err := io.ReadAll(rc)
			if tc.wantErr == nil {
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("read %d bytes, %v", len(got), err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("read error %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// FuzzChunked feeds arbitrary aws-chunked bodies (of the signed length) to
// the AWS example request: the decoder must never panic, and may only succeed
// with the exact signed payload.
func FuzzChunked(f *testing.F) {
	raw, body := chunkedExample(exampleChunkSigs)
	f.Add(body[:200])
	f.Add([]byte("0;chunk-signature=" + exampleChunkSigs[2] + "\r\n\r\n"))
	f.Add([]byte("10000;chunk-signature=" + exampleChunkSigs[0] + "\r\naaaa"))
	want := bytes.Repeat([]byte("a"), 66560)
	f.Fuzz(func(t *testing.T, prefix []byte) {
		// Content-Length is signed, so keep it: the fuzzed prefix replaces the
		// start of the example body.
		b := append(append([]byte{}, prefix...), body[min(len(prefix), len(body)):]...)[:len(body)]
		_, rc, err := Verify(context.Background(), parseRaw(t, raw, b), exampleSecrets, exampleTime)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		got, err := io.ReadAll(rc)
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("accepted a body other than the signed one")
		}
	})
}
