package sigv4

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"net/http"
	"strings"
)

// Errors about the flexible checksums (x-amz-checksum-<alg> headers and
// aws-chunked trailers) that current AWS SDKs send by default.
var (
	// ErrChecksumMismatch: BadDigest. Returned wrapped in a *ChecksumError.
	ErrChecksumMismatch = errors.New("sigv4: checksum does not match the body")
	// ErrInvalidChecksum: InvalidRequest (unknown algorithm, malformed or
	// missing trailer, bad checksum value, several checksums).
	ErrInvalidChecksum = errors.New("sigv4: invalid checksum")
)

// ChecksumError says which declared checksum the body failed, so the S3
// error can name it as S3 does ("The CRC32 you specified ...").
type ChecksumError struct {
	// Algorithm is S3's name for it: CRC32, CRC32C, CRC64NVME, SHA1, SHA256.
	Algorithm string
}

func (e *ChecksumError) Error() string {
	return "sigv4: the " + e.Algorithm + " checksum does not match the body"
}

// Unwrap makes errors.Is(err, ErrChecksumMismatch) hold.
func (e *ChecksumError) Unwrap() error { return ErrChecksumMismatch }

// crc64NVME is the NVMe CRC-64 polynomial in the reversed form
// crc64.MakeTable takes; the standard library predefines only ISO and ECMA.
const crc64NVME = 0x9a6c9329ac4bc9b5

// checksumAlg is one algorithm S3 accepts in x-amz-checksum-<alg>.
type checksumAlg struct {
	name string // S3's name, as in error messages
	size int    // bytes of the digest (the header holds its base64)
	new  func() hash.Hash
}

var (
	crc32cTable    = crc32.MakeTable(crc32.Castagnoli)
	crc64NVMETable = crc64.MakeTable(crc64NVME)
)

// checksumAlgs is keyed by the header suffix: x-amz-checksum-<key>.
var checksumAlgs = map[string]checksumAlg{
	"crc32":     {"CRC32", crc32.Size, func() hash.Hash { return crc32.NewIEEE() }},
	"crc32c":    {"CRC32C", crc32.Size, func() hash.Hash { return crc32.New(crc32cTable) }},
	"crc64nvme": {"CRC64NVME", crc64.Size, func() hash.Hash { return crc64.New(crc64NVMETable) }},
	"sha1":      {"SHA1", sha1.Size, sha1.New},
	"sha256":    {"SHA256", sha256.Size, sha256.New},
}

// notChecksums are x-amz-checksum-* headers that carry no body checksum.
var notChecksums = map[string]bool{"algorithm": true, "mode": true, "type": true}

const checksumPrefix = "x-amz-checksum-"

// algOfHeader is the algorithm a header name such as x-amz-checksum-crc32
// (any case) declares.
func algOfHeader(name string) (checksumAlg, error) {
	suffix, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(name)), checksumPrefix)
	a, known := checksumAlgs[suffix]
	if !ok || !known {
		return checksumAlg{}, fmt.Errorf("%w: unknown checksum algorithm %q", ErrInvalidChecksum, name)
	}
	return a, nil
}

// decodeChecksum reads a checksum value: the base64 of the digest.
func decodeChecksum(a checksumAlg, v string) ([]byte, error) {
	sum, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil || len(sum) != a.size {
		return nil, fmt.Errorf("%w: value for x-amz-checksum-%s is invalid", ErrInvalidChecksum, strings.ToLower(a.name))
	}
	return sum, nil
}

// headerChecksum finds the x-amz-checksum-<alg> header of a request whose
// body it describes; ok is false when there is none. As S3 does, it refuses
// more than one and unknown algorithms.
func headerChecksum(r *http.Request) (a checksumAlg, want []byte, ok bool, err error) {
	for k, vs := range r.Header {
		suffix, is := strings.CutPrefix(strings.ToLower(k), checksumPrefix)
		if !is || notChecksums[suffix] {
			continue
		}
		if ok || len(vs) != 1 {
			return checksumAlg{}, nil, false, fmt.Errorf("%w: expecting a single x-amz-checksum- header", ErrInvalidChecksum)
		}
		if a, err = algOfHeader(k); err != nil {
			return checksumAlg{}, nil, false, err
		}
		if want, err = decodeChecksum(a, vs[0]); err != nil {
			return checksumAlg{}, nil, false, err
		}
		ok = true
	}
	return a, want, ok, nil
}
