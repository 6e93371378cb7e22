package sigv4

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// The published check values of each algorithm over "123456789" (CRC
// catalogue; FIPS 180 for the SHAs), so the tables, not just their use,
// are right; CRC-64/NVME's is what the AWS SDKs compute too.
func TestChecksumAlgorithmsCheckValues(t *testing.T) {
	want := map[string]string{
		"crc32":     "cbf43926",
		"crc32c":    "e3069283",
		"crc64nvme": "ae8b14860a799888",
		"sha1":      "f7c3bc1d808e04732adf679965ccc34ca7ae3441",
		"sha256":    "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225",
	}
	for name, a := range checksumAlgs {
		h := a.new()
		h.Write([]byte("123456789"))
		if got := hex.EncodeToString(h.Sum(nil)); got != want[name] || len(h.Sum(nil)) != a.size {
			t.Errorf("%s: %s, want %s", name, got, want[name])
		}
	}
	if len(checksumAlgs) != len(want) {
		t.Errorf("%d algorithms, want %d", len(checksumAlgs), len(want))
	}
}

// b64 is the base64 of a big-endian value, as x-amz-checksum-crc* carries it.
func b64(v uint64, size int) string {
	b := binary.BigEndian.AppendUint64(nil, v)
	return base64.StdEncoding.EncodeToString(b[8-size:])
}

// checksumOf computes each algorithm independently of the package: its
// CRCs bit by bit, its SHAs with the standard library.
func checksumOf(alg string, data []byte) string {
	crc := func(poly uint64, width int) uint64 { // reflected, init and xorout all ones
		mask := uint64(1)<<width - 1
		if width == 64 {
			mask = ^uint64(0)
		}
		c := mask
		for _, b := range data {
			c ^= uint64(b)
			for range 8 {
				if c&1 == 1 {
					c = c>>1 ^ poly
				} else {
					c >>= 1
				}
			}
		}
		return c ^ mask
	}
	switch alg {
	case "crc32":
		return b64(crc(0xedb88320, 32), 4)
	case "crc32c":
		return b64(crc(0x82f63b78, 32), 4)
	case "crc64nvme":
		return b64(crc(0x9a6c9329ac4bc9b5, 64), 8)
	case "sha1":
		s := sha1.Sum(data)
		return base64.StdEncoding.EncodeToString(s[:])
	case "sha256":
		s := sha256.Sum256(data)
		return base64.StdEncoding.EncodeToString(s[:])
	}
	panic(alg)
}

func testHMAC(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// trailerReq is a client's aws-chunked request with a checksum trailer,
// built by hand from the AWS spec: the headers signed by minio-go's signer,
// the chunk and trailer signatures computed here.
type trailerReq struct {
	signed     bool
	alg        string // header suffix; "" for no x-amz-trailer header
	data       []byte
	chunk      int
	value      string // checksum sent in the trailer; "" for the right one
	badSig     bool   // corrupt the trailer signature
	noTrailer  bool   // end after the final chunk
	extraLines string // sent after the checksum line, before the signature
	crlfTail   bool   // "\r\n" after the checksum line (AWS) rather than minio-go's "\n\r\n"
}

func (tr trailerReq) build(t *testing.T, now time.Time) *http.Request {
	t.Helper()
	mode := "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	if tr.signed {
		mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	}
	r := clientReq(t, "PUT", "http://s3.example.com/"+testBucket+"/obj", nil)
	r.Header.Set("X-Amz-Content-Sha256", mode)
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(tr.data)))
	r.Header.Set("X-Amz-Date", now.UTC().Format(iso8601))
	if tr.alg != "" {
		r.Header.Set("X-Amz-Trailer", "x-amz-checksum-"+tr.alg)
	}
	r = signer.SignV4(*r, testKey, testSecret, "", testRegion)
	seed := r.Header.Get("Authorization")
	seed = seed[strings.LastIndex(seed, "Signature=")+len("Signature="):]
	// The signer stamps its own X-Amz-Date (its clock, not now): the
	// chunk and trailer signatures must use the same one.
	now, err := time.Parse(iso8601, r.Header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatal(err)
	}

	date := now.UTC().Format(yyyymmdd)
	key := testHMAC([]byte("AWS4"+testSecret), date)
	for _, s := range []string{testRegion, "s3", "aws4_request"} {
		key = testHMAC(key, s)
	}
	scope := date + "/" + testRegion + "/s3/aws4_request"
	prev := seed
	var body bytes.Buffer
	chunk := func(p []byte) {
		if !tr.signed {
			fmt.Fprintf(&body, "%x\r\n", len(p))
		} else {
			h := sha256.Sum256(p)
			sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + now.UTC().Format(iso8601) + "\n" + scope + "\n" + prev + "\n" +
				"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n" + hex.EncodeToString(h[:])
			prev = hex.EncodeToString(testHMAC(key, sts))
			fmt.Fprintf(&body, "%x;chunk-signature=%s\r\n", len(p), prev)
		}
		body.Write(p)
	}
	for rest := tr.data; len(rest) > 0; {
		n := min(tr.chunk, len(rest))
		chunk(rest[:n])
		body.WriteString("\r\n")
		rest = rest[n:]
	}
	chunk(nil)
	if !tr.noTrailer && tr.alg != "" {
		value := tr.value
		if value == "" {
			value = checksumOf(tr.alg, tr.data)
		}
		line := "x-amz-checksum-" + tr.alg + ":" + value
		if tr.crlfTail || !tr.signed {
			body.WriteString(line + "\r\n" + tr.extraLines)
		} else {
			body.WriteString(line + "\n" + tr.extraLines + "\r\n")
		}
		if tr.signed {
			h := sha256.Sum256([]byte(line + "\n"))
			sig := hex.EncodeToString(testHMAC(key, "AWS4-HMAC-SHA256-TRAILER\n"+now.UTC().Format(iso8601)+"\n"+scope+"\n"+prev+"\n"+hex.EncodeToString(h[:])))
			if tr.badSig {
				sig = strings.Repeat("0", 64)
			}
			body.WriteString("x-amz-trailer-signature:" + sig + "\r\n")
		}
		body.WriteString("\r\n")
	}
	r.Body = io.NopCloser(bytes.NewReader(body.Bytes()))
	r.ContentLength = int64(body.Len())
	return serverSide(t, r, "")
}

func TestTrailerChecksums(t *testing.T) {
	data := payload(70_000) // several chunks and a short last one
	type tc struct {
		name string
		req  trailerReq
		want error // nil: the body reads back whole
	}
	var tests []tc
	for _, alg := range []string{"crc32", "crc32c", "crc64nvme", "sha1", "sha256"} {
		for _, signed := range []bool{false, true} {
			mode := map[bool]string{false: "unsigned", true: "signed"}[signed]
			tests = append(tests,
				tc{mode + " " + alg, trailerReq{signed: signed, alg: alg, data: data, chunk: 32 << 10}, nil},
				tc{mode + " " + alg + " wrong checksum", trailerReq{signed: signed, alg: alg, data: data, chunk: 32 << 10, value: checksumOf(alg, data[1:])}, ErrChecksumMismatch},
			)
		}
	}
	tests = append(tests,
		tc{"signed, AWS line ends", trailerReq{signed: true, alg: "crc32", data: data, chunk: 64 << 10, crlfTail: true}, nil},
		tc{"empty body", trailerReq{signed: true, alg: "crc32c", data: nil, chunk: 1}, nil},
		tc{"bad trailer signature", trailerReq{signed: true, alg: "crc32", data: data, chunk: 32 << 10, badSig: true}, ErrSignatureMismatch},
		tc{"missing trailer, signed", trailerReq{signed: true, alg: "crc32", data: data, chunk: 32 << 10, noTrailer: true}, ErrInvalidChecksum},
		tc{"missing trailer, unsigned", trailerReq{alg: "sha256", data: data, chunk: 32 << 10, noTrailer: true}, ErrInvalidChecksum},
		tc{"value not base64", trailerReq{alg: "crc32", data: data, chunk: 32 << 10, value: "!!"}, ErrInvalidChecksum},
		tc{"value of the wrong size", trailerReq{alg: "crc32", data: data, chunk: 32 << 10, value: checksumOf("crc64nvme", data)}, ErrInvalidChecksum},
		tc{"another trailer header", trailerReq{alg: "crc32", data: data, chunk: 32 << 10, extraLines: "x-amz-meta-evil:1\r\n"}, ErrInvalidChecksum},
		tc{"signature on an unsigned stream", trailerReq{alg: "crc32", data: data, chunk: 32 << 10, extraLines: "x-amz-trailer-signature:" + strings.Repeat("0", 64) + "\r\n"}, ErrInvalidChecksum},
	)
	now := time.Now()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body, err := Verify(context.Background(), tt.req.build(t, now), secrets, now)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := io.ReadAll(body)
			if tt.want == nil {
				if err != nil || !bytes.Equal(got, tt.req.data) || res.ContentLength != int64(len(tt.req.data)) {
					t.Fatalf("read %d bytes (length %d), err %v; want %d bytes", len(got), res.ContentLength, err, len(tt.req.data))
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("read error %v, want %v", err, tt.want)
			}
			var ce *ChecksumError
			if errors.Is(tt.want, ErrChecksumMismatch) && (!errors.As(err, &ce) || ce.Algorithm != strings.ToUpper(tt.req.alg)) {
				t.Fatalf("checksum error %v does not name %s", err, tt.req.alg)
			}
		})
	}
}

// A request whose x-amz-trailer names no algorithm S3 knows is refused before
// its body is read.
func TestTrailerHeaderRefused(t *testing.T) {
	now := time.Now()
	for name, alg := range map[string]string{"unknown algorithm": "md5", "none": ""} {
		t.Run(name, func(t *testing.T) {
			_, _, err := Verify(context.Background(), trailerReq{alg: alg, data: []byte("x"), chunk: 1, noTrailer: true}.build(t, now), secrets, now)
			if !errors.Is(err, ErrInvalidChecksum) {
				t.Fatalf("Verify: %v, want ErrInvalidChecksum", err)
			}
		})
	}
}

// x-amz-checksum-<alg> headers on ordinary bodies are verified too.
func TestHeaderChecksums(t *testing.T) {
	data := []byte("<Delete><Object><Key>a</Key></Object></Delete>")
	now := time.Now()
	tests := []struct {
		name    string
		headers map[string]string
		want    error // from Verify or from reading the body
	}{
		{"crc32", map[string]string{"X-Amz-Checksum-Crc32": checksumOf("crc32", data)}, nil},
		{"crc32c", map[string]string{"X-Amz-Checksum-Crc32c": checksumOf("crc32c", data)}, nil},
		{"crc64nvme", map[string]string{"X-Amz-Checksum-Crc64nvme": checksumOf("crc64nvme", data)}, nil},
		{"sha1", map[string]string{"X-Amz-Checksum-Sha1": checksumOf("sha1", data)}, nil},
		{"sha256", map[string]string{"X-Amz-Checksum-Sha256": checksumOf("sha256", data)}, nil},
		{"with algorithm and mode headers", map[string]string{"X-Amz-Checksum-Crc32": checksumOf("crc32", data), "X-Amz-Checksum-Algorithm": "CRC32", "X-Amz-Checksum-Mode": "ENABLED"}, nil},
		{"wrong crc32", map[string]string{"X-Amz-Checksum-Crc32": b64(uint64(crc32.ChecksumIEEE(data)^1), 4)}, ErrChecksumMismatch},
		{"wrong sha256", map[string]string{"X-Amz-Checksum-Sha256": checksumOf("sha256", data[1:])}, ErrChecksumMismatch},
		{"two checksums", map[string]string{"X-Amz-Checksum-Crc32": checksumOf("crc32", data), "X-Amz-Checksum-Sha1": checksumOf("sha1", data)}, ErrInvalidChecksum},
		{"unknown algorithm", map[string]string{"X-Amz-Checksum-Md5": "AAAA"}, ErrInvalidChecksum},
		{"malformed value", map[string]string{"X-Amz-Checksum-Crc32": "AAAAAAAA"}, ErrInvalidChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := clientReq(t, "POST", "http://s3.example.com/"+testBucket+"?delete", data)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
			r.Header.Set("X-Amz-Date", now.UTC().Format(iso8601))
			r = serverSide(t, signer.SignV4(*r, testKey, testSecret, "", testRegion), "")
			_, body, err := Verify(context.Background(), r, secrets, now)
			if err == nil {
				var got []byte
				got, err = io.ReadAll(body)
				if err == nil && !bytes.Equal(got, data) {
					t.Fatal("body changed")
				}
			}
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

// minio-go, with trailing headers on, sends STREAMING-AWS4-HMAC-SHA256-
// PAYLOAD-TRAILER with its own framing: an independent client of the
// signed trailer, for every algorithm it has.
func TestMinioSignedTrailer(t *testing.T) {
	data := payload(3<<20 + 9) // past minio-go's 64 KiB chunks many times
	for name, ct := range map[string]minio.ChecksumType{
		"crc32": minio.ChecksumCRC32, "crc32c": minio.ChecksumCRC32C, "crc64nvme": minio.ChecksumCRC64NVME,
		"sha1": minio.ChecksumSHA1, "sha256": minio.ChecksumSHA256,
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			c, err := minio.New(strings.TrimPrefix(h.url, "http://"), &minio.Options{
				Creds: credentials.NewStaticV4(testKey, testSecret, ""), Region: testRegion,
				BucketLookup: minio.BucketLookupPath, TrailingHeaders: true, MaxRetries: 1,
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.PutObject(context.Background(), testBucket, "obj", bytes.NewReader(data), int64(len(data)),
				minio.PutObjectOptions{Checksum: ct, DisableMultipart: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := h.lastMode(t); got != "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" {
				t.Fatalf("minio-go sent %s", got)
			}
			if got, _ := h.object("obj"); !bytes.Equal(got, data) {
				t.Fatal("stored bytes differ")
			}
		})
	}
}
