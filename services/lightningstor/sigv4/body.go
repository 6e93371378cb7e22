package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
)

// verifyingReader hashes the payload as it streams and turns io.EOF into an
// error when the body is not what the client declared, so a handler that
// stages to a temp file learns of it before committing.
type verifyingReader struct {
	src     io.ReadCloser
	wantSHA []byte // nil: not checked
	wantMD5 []byte // nil: not checked
	wantLen int64  // -1: unknown
	sumAlg  checksumAlg
	wantSum []byte // nil: no x-amz-checksum-<alg> header to check
	sha     hash.Hash
	md5     hash.Hash
	sum     hash.Hash
	n       int64
	err     error // sticky
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.sha == nil && v.wantSHA != nil {
		v.sha = sha256.New()
	}
	if v.md5 == nil && v.wantMD5 != nil {
		v.md5 = md5.New()
	}
	if v.sum == nil && v.wantSum != nil {
		v.sum = v.sumAlg.new()
	}
	n, err := v.src.Read(p)
	if n > 0 {
		v.n += int64(n)
		if v.sha != nil {
			v.sha.Write(p[:n])
		}
		if v.md5 != nil {
			v.md5.Write(p[:n])
		}
		if v.sum != nil {
			v.sum.Write(p[:n])
		}
		if v.wantLen >= 0 && v.n > v.wantLen {
			v.err = fmt.Errorf("%w: body longer than declared", ErrMalformed)
			return 0, v.err
		}
	}
	if err == io.EOF {
		err = v.finish()
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

func (v *verifyingReader) finish() error {
	if v.wantLen >= 0 && v.n != v.wantLen {
		return io.ErrUnexpectedEOF
	}
	if v.wantSHA != nil && !hmac.Equal(v.sha.Sum(nil), v.wantSHA) {
		return ErrContentSHA256Mismatch
	}
	if v.wantMD5 != nil && !hmac.Equal(v.md5.Sum(nil), v.wantMD5) {
		return ErrBadDigest
	}
	if v.wantSum != nil && !hmac.Equal(v.sum.Sum(nil), v.wantSum) {
		return &ChecksumError{Algorithm: v.sumAlg.name}
	}
	return io.EOF
}

func (v *verifyingReader) Close() error { return v.src.Close() }

// maxChunkHeader bounds one aws-chunked header line; a real one is
// "<≤16 hex>;chunk-signature=<64 hex>\r\n" (≤ 99 bytes). It bounds a
// trailer line too ("x-amz-trailer-signature:<64 hex>\r\n").
const maxChunkHeader = 256

// maxTrailerLines bounds the trailer: a checksum, a signature, blank lines.
const maxTrailerLines = 8

// chunkedReader decodes an aws-chunked body: signed chunks
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]), whose signatures, chained
// from the seed signature, are checked when each chunk ends, or unsigned ones
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER). With a trailer, the checksum it
// declares is checked against the decoded bytes (and, signed, the trailer's
// own signature). Chunk data is passed on as it arrives (a chunk may be
// large), so a bad chunk surfaces as an error before EOF, never as a clean EOF.
type chunkedReader struct {
	body      io.ReadCloser
	br        *bufio.Reader
	key       []byte
	signed    bool
	dateScope string // "<date>\n<scope>\n"
	prevSig   string
	left      int64 // decoded bytes still allowed by x-amz-decoded-content-length
	remaining int64 // bytes left in the current chunk
	inChunk   bool
	sig       string // declared signature of the current chunk
	hash      hash.Hash

	trailer string      // the trailer's checksum header (x-amz-trailer); "" without one
	sumAlg  checksumAlg // its algorithm
	sum     hash.Hash   // of all decoded bytes, when there is a trailer

	err error // sticky
}

func newChunkedReader(body io.ReadCloser, key []byte, amzDate, scope, seed string, decoded int64) *chunkedReader {
	return &chunkedReader{
		body:      body,
		br:        bufio.NewReaderSize(body, 4096),
		key:       key,
		signed:    true,
		dateScope: amzDate + "\n" + scope + "\n",
		prevSig:   seed,
		left:      decoded,
		hash:      sha256.New(),
	}
}

// withTrailer makes c expect, after the final chunk, the trailer header
// name (such as x-amz-checksum-crc32) declared in x-amz-trailer.
func (c *chunkedReader) withTrailer(name string, a checksumAlg) *chunkedReader {
	c.trailer, c.sumAlg, c.sum = name, a, a.new()
	return c
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.read(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

func (c *chunkedReader) read(p []byte) (int, error) {
	if !c.inChunk {
		if err := c.header(); err != nil {
			return 0, err
		}
		if c.remaining == 0 {
			return 0, c.final()
		}
	}
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.br.Read(p)
	if c.signed {
		c.hash.Write(p[:n])
	}
	if c.sum != nil {
		c.sum.Write(p[:n])
	}
	c.remaining -= int64(n)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, err
	}
	if c.remaining == 0 {
		c.inChunk = false
		if err := c.crlf(); err != nil {
			return n, err
		}
		if c.signed {
			if err := c.check(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// header reads "<hex size>;chunk-signature=<sig>\r\n", or "<hex size>\r\n"
// when unsigned.
func (c *chunkedReader) header() error {
	line, err := c.br.ReadSlice('\n')
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	if err == bufio.ErrBufferFull || len(line) > maxChunkHeader {
		return fmt.Errorf("%w: aws-chunked header too long", ErrMalformed)
	}
	if err != nil {
		return err
	}
	line, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return fmt.Errorf("%w: aws-chunked header not CRLF-terminated", ErrMalformed)
	}
	size, sig, ok := line, []byte(nil), true
	if c.signed {
		size, sig, ok = bytes.Cut(line, []byte(";chunk-signature="))
		ok = ok && len(sig) == 64
	}
	if !ok || len(size) == 0 || len(size) > 16 {
		return fmt.Errorf("%w: bad aws-chunked header", ErrMalformed)
	}
	var n int64
	for _, ch := range size {
		if !isHex(ch) {
			return fmt.Errorf("%w: bad aws-chunked size", ErrMalformed)
		}
		if n > c.left>>4 {
			return fmt.Errorf("%w: aws-chunked data exceeds x-amz-decoded-content-length", ErrMalformed)
		}
		n = n<<4 | int64(unhex(ch))
	}
	if n > c.left {
		return fmt.Errorf("%w: aws-chunked data exceeds x-amz-decoded-content-length", ErrMalformed)
	}
	c.left -= n
	c.remaining = n
	c.sig = string(sig)
	c.hash.Reset()
	c.inChunk = n > 0
	return nil
}

func (c *chunkedReader) crlf() error {
	var b [2]byte
	if _, err := io.ReadFull(c.br, b[:]); err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if b != [2]byte{'\r', '\n'} {
		return fmt.Errorf("%w: aws-chunked data not followed by CRLF", ErrMalformed)
	}
	return nil
}

func (c *chunkedReader) check() error {
	want := hmacHex(c.key, "AWS4-HMAC-SHA256-PAYLOAD\n"+c.dateScope+c.prevSig+"\n"+emptySHA256+"\n"+hex.EncodeToString(c.hash.Sum(nil)))
	if !equalSig(want, c.sig) {
		return fmt.Errorf("%w: chunk signature", ErrSignatureMismatch)
	}
	c.prevSig = want
	return nil
}

// final checks the zero-size chunk that ends the stream, its trailer if
// one was declared, and that nothing follows.
func (c *chunkedReader) final() error {
	if c.signed {
		if err := c.check(); err != nil {
			return err
		}
	}
	if c.trailer != "" {
		if err := c.readTrailer(); err != nil {
			return err
		}
	} else if err := c.crlf(); err != nil {
		return err
	}
	if c.left != 0 {
		return fmt.Errorf("%w: aws-chunked data shorter than x-amz-decoded-content-length", ErrMalformed)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		if err == nil {
			return fmt.Errorf("%w: data after the final aws-chunked chunk", ErrMalformed)
		}
		return err
	}
	return io.EOF
}

func (c *chunkedReader) Close() error { return c.body.Close() }

// readTrailer reads the trailer after the final chunk: the declared checksum
// header and, when signed, x-amz-trailer-signature, each on its own line,
// then a blank line. Clients differ in their line ends (the AWS SDKs send
// "\r\n", minio-go "\n" then a blank "\r\n"), so both are taken and blank
// lines between them skipped. The trailer's signature covers
// "<name>:<value>\n" per header, chained from the final chunk's signature.
func (c *chunkedReader) readTrailer() error {
	var value, sig, canonical string
	var gotValue, gotSig bool
	for i := 0; ; i++ {
		if i == maxTrailerLines {
			return fmt.Errorf("%w: aws-chunked trailer too long", ErrInvalidChecksum)
		}
		line, err := c.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull || len(line) > maxChunkHeader {
			return fmt.Errorf("%w: aws-chunked trailer line too long", ErrInvalidChecksum)
		}
		done := gotValue && (gotSig || !c.signed)
		if err == io.EOF && len(line) == 0 {
			if done {
				break // a client that leaves off the last blank line
			}
			return fmt.Errorf("%w: missing aws-chunked trailer %s", ErrInvalidChecksum, c.trailer)
		}
		if err != nil && err != io.EOF {
			return err
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 {
			if done {
				break
			}
			continue
		}
		name, val, ok := strings.Cut(string(line), ":")
		name, val = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(val)
		switch {
		case !ok:
			return fmt.Errorf("%w: malformed aws-chunked trailer line", ErrInvalidChecksum)
		case name == "x-amz-trailer-signature" && c.signed && !gotSig && gotValue:
			sig, gotSig = val, true
		case name == c.trailer && !gotValue:
			value, gotValue = val, true
			canonical = name + ":" + val + "\n"
		default:
			return fmt.Errorf("%w: unexpected aws-chunked trailer %q", ErrInvalidChecksum, name)
		}
		if err == io.EOF {
			if gotValue && (gotSig || !c.signed) {
				break
			}
			return fmt.Errorf("%w: truncated aws-chunked trailer", ErrInvalidChecksum)
		}
	}
	if c.signed {
		want := hmacHex(c.key, "AWS4-HMAC-SHA256-TRAILER\n"+c.dateScope+c.prevSig+"\n"+hexSHA256([]byte(canonical)))
		if !equalSig(want, sig) {
			return fmt.Errorf("%w: trailer signature", ErrSignatureMismatch)
		}
	}
	wantSum, err := decodeChecksum(c.sumAlg, value)
	if err != nil {
		return err
	}
	if !hmac.Equal(c.sum.Sum(nil), wantSum) {
		return &ChecksumError{Algorithm: c.sumAlg.name}
	}
	return nil
}
