package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The credentials, requests and signatures below are the published examples
// of the AWS S3 API reference ("Signature Calculations for the Authorization
// Header: Transferring Payload in a Single Chunk", "... in Multiple Chunks
// (Chunked Upload)" and "Authenticating Requests: Using Query Parameters").
const (
	exampleKey    = "AKIAIOSFODNN7EXAMPLE"
	exampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	exampleScope  = "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
)

var exampleTime = time.Date(2013, 5, 24, 0, 5, 0, 0, time.UTC)

func exampleSecrets(_ context.Context, id string) (string, error) {
	if id == exampleKey {
		return exampleSecret, nil
	}
	return "", ErrUnknownKey
}

// parseRaw parses a request exactly as net/http's server would.
func parseRaw(t *testing.T, raw string, body []byte) *http.Request {
	t.Helper()
	raw = strings.ReplaceAll(raw, "\n", "\r\n") + "\r\n"
	r, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(raw), bytes.NewReader(body))))
	if err != nil {
		t.Fatalf("parse request: %v", err)
	}
	return r
}

func TestAWSExamples(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		body string
	}{
		{"GET object", `GET /test.txt HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Authorization: AWS4-HMAC-SHA256 ` + exampleScope + `,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41
Range: bytes=0-9
x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
x-amz-date: 20130524T000000Z
`, ""},
		{"PUT object", `PUT /test$file.text HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Date: Fri, 24 May 2013 00:00:00 GMT
Authorization: AWS4-HMAC-SHA256 ` + exampleScope + `,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd
x-amz-date: 20130524T000000Z
x-amz-storage-class: REDUCED_REDUNDANCY
x-amz-content-sha256: 44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072
Content-Length: 21
`, "Welcome to Amazon S3."},
		{"GET bucket lifecycle", `GET /?lifecycle HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Authorization: AWS4-HMAC-SHA256 ` + exampleScope + `,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543
x-amz-date: 20130524T000000Z
x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
`, ""},
		{"GET bucket list objects", `GET /?max-keys=2&prefix=J HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Authorization: AWS4-HMAC-SHA256 ` + exampleScope + `,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7
x-amz-date: 20130524T000000Z
x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
`, ""},
		{"presigned GET", `GET /test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404 HTTP/1.1
Host: examplebucket.s3.amazonaws.com
`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := parseRaw(t, tc.raw, []byte(tc.body))
			res, body, err := Verify(context.Background(), r, exampleSecrets, exampleTime)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.AccessKeyID != exampleKey || res.Region != "us-east-1" || res.Anonymous {
				t.Fatalf("result %+v", res)
			}
			got, err := io.ReadAll(body)
			if err != nil || string(got) != tc.body {
				t.Fatalf("body %q, %v", got, err)
			}
			// One flipped signature digit must fail.
			i := strings.LastIndex(tc.raw, "Signature=") + len("Signature=")
			flip := byte('0')
			if tc.raw[i] == '0' {
				flip = '1'
			}
			bad := tc.raw[:i] + string(flip) + tc.raw[i+1:]
			_, _, err = Verify(context.Background(), parseRaw(t, bad, []byte(tc.body)), exampleSecrets, exampleTime)
			if !errors.Is(err, ErrSignatureMismatch) {
				t.Fatalf("flipped signature: got %v, want ErrSignatureMismatch", err)
			}
		})
	}
}

// chunkedExample is the AWS chunked-upload example: 66560 bytes of 'a' in a
// 65536-byte chunk, a 1024-byte chunk and the final empty chunk.
func chunkedExample(sigs [3]string) (string, []byte) {
	raw := `PUT /examplebucket/chunkObject.txt HTTP/1.1
Host: s3.amazonaws.com
x-amz-date: 20130524T000000Z
x-amz-storage-class: REDUCED_REDUNDANCY
Authorization: AWS4-HMAC-SHA256 ` + exampleScope + `,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9
x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD
Content-Encoding: aws-chunked
x-amz-decoded-content-length: 66560
Content-Length: 66824
`
	var b bytes.Buffer
	b.WriteString("10000;chunk-signature=" + sigs[0] + "\r\n")
	b.Write(bytes.Repeat([]byte("a"), 65536))
	b.WriteString("\r\n400;chunk-signature=" + sigs[1] + "\r\n")
	b.Write(bytes.Repeat([]byte("a"), 1024))
	b.WriteString("\r\n0;chunk-signature=" + sigs[2] + "\r\n\r\n")
	return raw, b.Bytes()
}

var exampleChunkSigs = [3]string{
	"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
	"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
	"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
}

func TestAWSChunkedExample(t *testing.T) {
	raw, body := chunkedExample(exampleChunkSigs)
	if len(body) != 66824 {
		t.Fatalf("example body is %d bytes, want 66824", len(body))
	}
	res, rc, err := Verify(context.Background(), parseRaw(t, raw, body), exampleSecrets, exampleTime)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.ContentLength != 66560 {
		t.Fatalf("ContentLength %d, want decoded 66560", res.ContentLength)
	}
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, bytes.Repeat([]byte("a"), 66560)) {
		t.Fatalf("decoded %d bytes, not the example payload", len(got))
	}

	// Each chunk signature is checked, including the final one.
	for i := range exampleChunkSigs {
		sigs := exampleChunkSigs
		sigs[i] = strings.Repeat("0", 64)
		raw, body := chunkedExample(sigs)
		_, rc, err := Verify(context.Background(), parseRaw(t, raw, body), exampleSecrets, exampleTime)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if _, err := io.ReadAll(rc); !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("chunk %d forged: read error %v, want ErrSignatureMismatch", i, err)
		}
	}
}
