// Package sigv4 verifies AWS Signature Version 4 on incoming S3 requests
// (Authorization header, presigned query strings and aws-chunked streaming
// payloads) on the server side, trusting nothing the client claims: the
// payload is checked while it streams, so no body is ever buffered whole.
package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Secrets finds the secret of an access key id; it returns ErrUnknownKey
// (or an error wrapping it) when there is none. Any other error is passed
// through unchanged, so a failing store is not reported as a bad key.
type Secrets func(ctx context.Context, accessKeyID string) (secret string, err error)

// Errors returned by Verify and by reading the body it returns. The S3 layer
// maps each to one S3 error code (named in the comment).
var (
	// ErrUnknownKey: InvalidAccessKeyId.
	ErrUnknownKey = errors.New("sigv4: unknown access key id")
	// ErrSignatureMismatch: SignatureDoesNotMatch (also a bad chunk signature).
	ErrSignatureMismatch = errors.New("sigv4: signature does not match")
	// ErrRequestTimeTooSkewed: RequestTimeTooSkewed.
	ErrRequestTimeTooSkewed = errors.New("sigv4: request time too skewed")
	// ErrExpired: AccessDenied (presigned URL expired).
	ErrExpired = errors.New("sigv4: request has expired")
	// ErrMalformed: AuthorizationHeaderMalformed (bad header, query or aws-chunked framing).
	ErrMalformed = errors.New("sigv4: authorization malformed")
	// ErrUnsupported: NotImplemented (SigV2, SigV4A).
	ErrUnsupported = errors.New("sigv4: unsupported authentication mode")
	// ErrContentSHA256Mismatch: XAmzContentSHA256Mismatch.
	ErrContentSHA256Mismatch = errors.New("sigv4: x-amz-content-sha256 does not match the body")
	// ErrBadDigest: BadDigest (Content-MD5 mismatch or malformed Content-MD5).
	ErrBadDigest = errors.New("sigv4: Content-MD5 does not match the body")
)

// Result says who made the request.
type Result struct {
	// AccessKeyID is the verified key; empty when Anonymous.
	AccessKeyID string
	// Anonymous is true when the request carried no SigV4 authentication.
	Anonymous bool
	// Region is the region of the credential scope (any region is accepted).
	Region string
	// ContentLength is the length of the payload the returned reader yields
	// (the decoded length for aws-chunked bodies, whose Content-Length counts
	// the framing); -1 when unknown.
	ContentLength int64
}

const (
	algorithm       = "AWS4-HMAC-SHA256"
	iso8601         = "20060102T150405Z"
	yyyymmdd        = "20060102"
	maxSkew         = 15 * time.Minute
	maxPresignedAge = 7 * 24 * time.Hour

	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingPayload         = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	emptySHA256              = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// unsupportedPayloads are the x-amz-content-sha256 modes AWS defines that we
// refuse with NotImplemented rather than mis-verify.
var unsupportedPayloads = map[string]bool{
	"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD":         true,
	"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER": true,
}

// auth is what either form of SigV4 authentication carries.
type auth struct {
	accessKey     string
	date          string // yyyymmdd of the scope
	region        string
	signedHeaders []string
	signature     string
	amzDate       string // ISO 8601 request time as signed
	t             time.Time
	presigned     bool
	expires       time.Duration
}

// Verify authenticates r at time now and returns a reader of the payload
// that fails (instead of returning io.EOF) when the body does not match what
// was signed; callers must read it to EOF before committing anything.
// The caller keeps responsibility for closing r.Body via the returned reader.
func Verify(ctx context.Context, r *http.Request, secrets Secrets, now time.Time) (Result, io.ReadCloser, error) {
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	query, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return Result{}, nil, err
	}
	authz := r.Header.Get("Authorization")
	_, presigned := query["X-Amz-Algorithm"]
	switch {
	case authz != "" && presigned:
		return Result{}, nil, fmt.Errorf("%w: both Authorization header and X-Amz-Algorithm query", ErrMalformed)
	case authz == "" && !presigned:
		if _, v2 := query["AWSAccessKeyId"]; v2 {
			return Result{}, nil, fmt.Errorf("%w: signature version 2 presigned URL", ErrUnsupported)
		}
		return anonymous(r, body)
	}

	var a auth
	if presigned {
		a, err = parsePresigned(query)
	} else {
		a, err = parseHeader(r, authz)
	}
	if err != nil {
		return Result{}, nil, err
	}
	if err := checkTime(a, now); err != nil {
		return Result{}, nil, err
	}
	if err := checkUnsignedAmzHeaders(r, a.signedHeaders); err != nil {
		return Result{}, nil, err
	}

	payload := unsignedPayload
	if !presigned {
		payload = r.Header.Get("X-Amz-Content-Sha256")
		if payload == "" {
			return Result{}, nil, fmt.Errorf("%w: missing x-amz-content-sha256", ErrMalformed)
		}
	} else if v, ok := query["X-Amz-Content-Sha256"]; ok && len(v) == 1 {
		// Some clients sign a payload hash into the URL itself.
		payload = v[0]
	}
	if unsupportedPayloads[payload] {
		return Result{}, nil, fmt.Errorf("%w: x-amz-content-sha256 %s", ErrUnsupported, payload)
	}
	var wantSHA []byte
	trailer := payload == streamingSignedTrailer || payload == streamingUnsignedTrailer
	streaming := payload == streamingPayload || trailer
	switch {
	case payload == unsignedPayload || streaming:
	default:
		if wantSHA, err = hex.DecodeString(payload); err != nil || len(wantSHA) != sha256.Size {
			return Result{}, nil, fmt.Errorf("%w: x-amz-content-sha256 is neither a SHA-256 nor a known mode", ErrMalformed)
		}
	}
	if streaming && presigned {
		return Result{}, nil, fmt.Errorf("%w: aws-chunked payload with presigned URL", ErrMalformed)
	}
	wantMD5, err := contentMD5(r)
	if err != nil {
		return Result{}, nil, err
	}
	var trailerName string
	var trailerAlg checksumAlg
	if trailer {
		trailerName = strings.ToLower(strings.TrimSpace(r.Header.Get("X-Amz-Trailer")))
		if trailerAlg, err = algOfHeader(trailerName); err != nil {
			return Result{}, nil, fmt.Errorf("x-amz-trailer: %w", err)
		}
	}
	sumAlg, wantSum, hasSum, err := bodyChecksum(r, query, trailer)
	if err != nil {
		return Result{}, nil, err
	}

	secret, err := secrets(ctx, a.accessKey)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return Result{}, nil, err
		}
		return Result{}, nil, fmt.Errorf("sigv4: looking up access key: %w", err)
	}

	key := signingKey(secret, a.date, a.region)
	scope := a.date + "/" + a.region + "/s3/aws4_request"
	canonical := canonicalRequest(r, query, a, payload)
	sts := algorithm + "\n" + a.amzDate + "\n" + scope + "\n" + hexSHA256([]byte(canonical))
	if !equalSig(hmacHex(key, sts), a.signature) {
		return Result{}, nil, ErrSignatureMismatch
	}

	res := Result{AccessKeyID: a.accessKey, Region: a.region, ContentLength: r.ContentLength}
	var src io.ReadCloser = body
	if streaming {
		decoded, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		if err != nil || decoded < 0 {
			return Result{}, nil, fmt.Errorf("%w: missing or bad x-amz-decoded-content-length", ErrMalformed)
		}
		res.ContentLength = decoded
		cr := newChunkedReader(body, key, a.amzDate, scope, a.signature, decoded)
		cr.signed = payload != streamingUnsignedTrailer
		if trailer {
			cr.withTrailer(trailerName, trailerAlg)
		}
		src = cr
	}
	if wantSHA == nil && wantMD5 == nil && !hasSum && !streaming {
		return res, body, nil
	}
	return res, &verifyingReader{src: src, wantSHA: wantSHA, wantMD5: wantMD5, sumAlg: sumAlg, wantSum: wantSum, wantLen: res.ContentLength}, nil
}

// bodyChecksum is the x-amz-checksum-<alg> header that describes the
// request's body, if any. In trailer modes the trailer declares it instead;
// on CompleteMultipartUpload the header is the whole object's checksum, not
// the body's, so neither is checked here.
func bodyChecksum(r *http.Request, query map[string][]string, trailer bool) (checksumAlg, []byte, bool, error) {
	if _, complete := query["uploadId"]; trailer || (complete && r.Method == http.MethodPost) {
		return checksumAlg{}, nil, false, nil
	}
	return headerChecksum(r)
}

// anonymous still checks the digests a client sent, as S3 does.
func anonymous(r *http.Request, body io.ReadCloser) (Result, io.ReadCloser, error) {
	res := Result{Anonymous: true, ContentLength: r.ContentLength}
	wantMD5, err := contentMD5(r)
	if err != nil {
		return Result{}, nil, err
	}
	var wantSHA []byte
	switch p := r.Header.Get("X-Amz-Content-Sha256"); {
	case p == "" || p == unsignedPayload:
	case strings.HasPrefix(p, "STREAMING-"):
		return Result{}, nil, fmt.Errorf("%w: aws-chunked payload without a signature", ErrMalformed)
	default:
		if wantSHA, err = hex.DecodeString(p); err != nil || len(wantSHA) != sha256.Size {
			return Result{}, nil, fmt.Errorf("%w: bad x-amz-content-sha256", ErrMalformed)
		}
	}
	query, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return Result{}, nil, err
	}
	sumAlg, wantSum, hasSum, err := bodyChecksum(r, query, false)
	if err != nil {
		return Result{}, nil, err
	}
	if wantSHA == nil && wantMD5 == nil && !hasSum {
		return res, body, nil
	}
	return res, &verifyingReader{src: body, wantSHA: wantSHA, wantMD5: wantMD5, sumAlg: sumAlg, wantSum: wantSum, wantLen: r.ContentLength}, nil
}

func contentMD5(r *http.Request) ([]byte, error) {
	v, ok := r.Header["Content-Md5"]
	if !ok {
		return nil, nil
	}
	if len(v) != 1 {
		return nil, fmt.Errorf("%w: several Content-MD5 headers", ErrBadDigest)
	}
	sum, err := base64.StdEncoding.DecodeString(v[0])
	if err != nil || len(sum) != md5.Size {
		return nil, fmt.Errorf("%w: Content-MD5 is not the base64 of 16 bytes", ErrBadDigest)
	}
	return sum, nil
}

// parseHeader parses "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
func parseHeader(r *http.Request, authz string) (auth, error) {
	alg, rest, _ := strings.Cut(authz, " ")
	switch {
	case alg == "AWS":
		return auth{}, fmt.Errorf("%w: signature version 2", ErrUnsupported)
	case alg == "AWS4-ECDSA-P256-SHA256":
		return auth{}, fmt.Errorf("%w: signature version 4A", ErrUnsupported)
	case alg != algorithm:
		return auth{}, fmt.Errorf("%w: unknown algorithm %q", ErrMalformed, alg)
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return auth{}, fmt.Errorf("%w: bad Authorization component %q", ErrMalformed, part)
		}
		if _, dup := fields[k]; dup {
			return auth{}, fmt.Errorf("%w: repeated %s", ErrMalformed, k)
		}
		fields[k] = v
	}
	if len(fields) != 3 {
		return auth{}, fmt.Errorf("%w: Authorization needs exactly Credential, SignedHeaders, Signature", ErrMalformed)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	var t time.Time
	if amzDate != "" {
		var err error
		if t, err = time.Parse(iso8601, amzDate); err != nil {
			return auth{}, fmt.Errorf("%w: bad X-Amz-Date", ErrMalformed)
		}
	} else {
		// AWS accepts the Date header when X-Amz-Date is absent; the string to
		// sign then carries it in ISO 8601 form.
		d, err := http.ParseTime(r.Header.Get("Date"))
		if err != nil {
			return auth{}, fmt.Errorf("%w: missing X-Amz-Date and Date", ErrMalformed)
		}
		t, amzDate = d.UTC(), d.UTC().Format(iso8601)
	}
	return build(fields["Credential"], fields["SignedHeaders"], fields["Signature"], amzDate, t)
}

func parsePresigned(q map[string][]string) (auth, error) {
	get := func(k string) (string, error) {
		v := q[k]
		if len(v) != 1 {
			return "", fmt.Errorf("%w: query needs exactly one %s", ErrMalformed, k)
		}
		return v[0], nil
	}
	vals := map[string]string{}
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		v, err := get(k)
		if err != nil {
			return auth{}, err
		}
		vals[k] = v
	}
	if vals["X-Amz-Algorithm"] != algorithm {
		return auth{}, fmt.Errorf("%w: X-Amz-Algorithm %q", ErrUnsupported, vals["X-Amz-Algorithm"])
	}
	t, err := time.Parse(iso8601, vals["X-Amz-Date"])
	if err != nil {
		return auth{}, fmt.Errorf("%w: bad X-Amz-Date", ErrMalformed)
	}
	exp, err := strconv.ParseInt(vals["X-Amz-Expires"], 10, 64)
	if err != nil || exp < 1 || exp > int64(maxPresignedAge/time.Second) {
		return auth{}, fmt.Errorf("%w: X-Amz-Expires must be 1..604800 seconds", ErrMalformed)
	}
	a, err := build(vals["X-Amz-Credential"], vals["X-Amz-SignedHeaders"], vals["X-Amz-Signature"], vals["X-Amz-Date"], t)
	a.presigned, a.expires = true, time.Duration(exp)*time.Second
	return a, err
}

func build(credential, signedHeaders, signature, amzDate string, t time.Time) (auth, error) {
	parts := strings.Split(credential, "/")
	if len(parts) < 5 {
		return auth{}, fmt.Errorf("%w: Credential must be key/date/region/s3/aws4_request", ErrMalformed)
	}
	n := len(parts)
	a := auth{
		accessKey: strings.Join(parts[:n-4], "/"),
		date:      parts[n-4],
		region:    parts[n-3],
		signature: signature,
		amzDate:   amzDate,
		t:         t,
	}
	switch {
	case a.accessKey == "":
		return auth{}, fmt.Errorf("%w: empty access key id", ErrMalformed)
	case a.date != t.Format(yyyymmdd):
		return auth{}, fmt.Errorf("%w: credential date %q is not the request date", ErrMalformed, a.date)
	case a.region == "":
		return auth{}, fmt.Errorf("%w: empty region", ErrMalformed)
	case parts[n-2] != "s3":
		return auth{}, fmt.Errorf("%w: credential service %q is not s3", ErrMalformed, parts[n-2])
	case parts[n-1] != "aws4_request":
		return auth{}, fmt.Errorf("%w: credential terminator %q", ErrMalformed, parts[n-1])
	case len(signature) != 64:
		return auth{}, fmt.Errorf("%w: signature is not 64 hex digits", ErrMalformed)
	}
	if signedHeaders == "" {
		return auth{}, fmt.Errorf("%w: empty SignedHeaders", ErrMalformed)
	}
	a.signedHeaders = strings.Split(signedHeaders, ";")
	host := false
	for i, h := range a.signedHeaders {
		if h == "" || h != strings.ToLower(h) || (i > 0 && a.signedHeaders[i-1] >= h) {
			return auth{}, fmt.Errorf("%w: SignedHeaders must be sorted, unique, lowercase", ErrMalformed)
		}
		host = host || h == "host"
	}
	if !host {
		return auth{}, fmt.Errorf("%w: SignedHeaders must include host", ErrMalformed)
	}
	return a, nil
}

func checkTime(a auth, now time.Time) error {
	if a.presigned {
		if a.t.Sub(now) > maxSkew {
			return fmt.Errorf("%w: presigned URL dated in the future", ErrRequestTimeTooSkewed)
		}
		if now.After(a.t.Add(a.expires)) {
			return ErrExpired
		}
		return nil
	}
	if d := now.Sub(a.t); d > maxSkew || d < -maxSkew {
		return ErrRequestTimeTooSkewed
	}
	return nil
}

// checkUnsignedAmzHeaders refuses x-amz-* headers outside the signature, as
// S3 does: otherwise anyone replaying a captured request could add, say,
// x-amz-copy-source or x-amz-acl to it.
func checkUnsignedAmzHeaders(r *http.Request, signed []string) error {
	for k := range r.Header {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-amz-") {
			continue
		}
		if (lk == "x-amz-date" || lk == "x-amz-content-sha256") && len(r.Header[k]) == 1 {
			// Both are bound by the string to sign and canonical request themselves.
			continue
		}
		i := sort.SearchStrings(signed, lk)
		if i == len(signed) || signed[i] != lk {
			return fmt.Errorf("%w: header %s is present but not signed", ErrSignatureMismatch, lk)
		}
	}
	return nil
}

func canonicalRequest(r *http.Request, query map[string][]string, a auth, payload string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(uriEncode(r.URL.Path, false))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(query, a.presigned))
	b.WriteByte('\n')
	for _, h := range a.signedHeaders {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(headerValue(r, h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(a.signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String()
}

// headerValue recovers a header as the client sent it: net/http moves Host,
// Content-Length and Transfer-Encoding out of r.Header.
func headerValue(r *http.Request, h string) string {
	switch h {
	case "host":
		return r.Host
	case "content-length":
		if v := r.Header.Values("Content-Length"); len(v) > 0 {
			return trimAll(v[0])
		}
		if r.ContentLength >= 0 {
			return strconv.FormatInt(r.ContentLength, 10)
		}
		return ""
	case "transfer-encoding":
		if v := r.Header.Values("Transfer-Encoding"); len(v) > 0 {
			return joinTrimmed(v)
		}
		return strings.Join(r.TransferEncoding, ",")
	}
	return joinTrimmed(r.Header.Values(h))
}

func joinTrimmed(vs []string) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = trimAll(v)
	}
	return strings.Join(out, ",")
}

// trimAll trims a value and collapses runs of spaces, as SigV4 defines.
func trimAll(v string) string { return strings.Join(strings.Fields(v), " ") }

func canonicalQuery(q map[string][]string, presigned bool) string {
	type kv struct{ k, v string }
	var pairs []kv
	for k, vs := range q {
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, kv{uriEncode(k, true), uriEncode(v, true)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// parseQuery decodes the raw query once, with '+' meaning space as every
// SigV4 client assumes; unlike url.ParseQuery it keeps ';' as data.
func parseQuery(raw string) (map[string][]string, error) {
	q := map[string][]string{}
	if raw == "" {
		return q, nil
	}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err1 := unescapeQuery(k)
		dv, err2 := unescapeQuery(v)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: bad escape in query", ErrMalformed)
		}
		q[dk] = append(q[dk], dv)
	}
	return q, nil
}

func unescapeQuery(s string) (string, error) {
	if !strings.ContainsAny(s, "%+") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b.WriteByte(' ')
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", errors.New("bad escape")
			}
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// uriEncode is SigV4's UriEncode: every byte but A-Z a-z 0-9 - _ . ~ is
// %XX-encoded in upper case; '/' too unless encoding a path. Applied once to
// the decoded path, it matches what S3 clients sign (S3 never double-encodes).
func uriEncode(s string, slash bool) string {
	const hexdig = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !slash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdig[c>>4])
		b.WriteByte(hexdig[c&15])
	}
	return b.String()
}

func signingKey(secret, date, region string) []byte {
	k := hmacSum([]byte("AWS4"+secret), date)
	k = hmacSum(k, region)
	k = hmacSum(k, "s3")
	return hmacSum(k, "aws4_request")
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func hmacHex(key []byte, data string) string { return hex.EncodeToString(hmacSum(key, data)) }

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func equalSig(want, got string) bool {
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}
