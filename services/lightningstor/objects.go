package lightningstor

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/photoncloud/photon/services/lightningstor/objstore"
)

// The headers an object keeps and gives back as they were sent.
var keptHeaders = []string{"Content-Encoding", "Content-Disposition", "Cache-Control", "Content-Language", "Expires"}

// metaFrom reads an object's metadata from a request's headers.
func metaFrom(r *http.Request) objstore.ObjectMeta {
	m := objstore.ObjectMeta{ContentType: r.Header.Get("Content-Type"), UserMeta: map[string]string{}, Headers: map[string]string{}}
	if m.ContentType == "" {
		m.ContentType = "binary/octet-stream"
	}
	for k, v := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-meta-") && len(v) > 0 {
			m.UserMeta[strings.TrimPrefix(lk, "x-amz-meta-")] = v[0]
		}
	}
	for _, k := range keptHeaders {
		if v := r.Header.Get(k); v != "" {
			m.Headers[k] = v
		}
	}
	if tags, err := parseTagHeader(r.Header.Get("x-amz-tagging")); err == nil {
		m.Tags = tags
	}
	// aws-chunked is how a signed stream was framed on the wire, not how
	// the object is encoded: it is not the object's.
	if ce := m.Headers["Content-Encoding"]; ce != "" {
		var kept []string
		for _, e := range strings.Split(ce, ",") {
			if e = strings.TrimSpace(e); e != "" && !strings.EqualFold(e, "aws-chunked") {
				kept = append(kept, e)
			}
		}
		if len(kept) == 0 {
			delete(m.Headers, "Content-Encoding")
		} else {
			m.Headers["Content-Encoding"] = strings.Join(kept, ",")
		}
	}
	return m
}

// putBody is the payload of a PUT or UploadPart and its Content-MD5 (nil
// when none). A body over S3's 5 GiB limit is refused with EntityTooLarge
// before a byte is read when its declared length says so, else when its
// bytes do.
func putBody(w http.ResponseWriter, req *request) (body io.Reader, wantMD5 []byte, err error) {
	if req.size > objstore.MaxObjectSize {
		return nil, nil, ErrEntityTooLarge.with(req.bucket+"/"+req.key, "")
	}
	if s := req.r.Header.Get("Content-MD5"); s != "" {
		if wantMD5, err = base64.StdEncoding.DecodeString(s); err != nil || len(wantMD5) != 16 {
			return nil, nil, ErrInvalidDigest.with(req.bucket+"/"+req.key, "")
		}
	}
	return http.MaxBytesReader(w, req.body, objstore.MaxObjectSize), wantMD5, nil
}

func (h *handler) putObject(w http.ResponseWriter, req *request) error {
	b, err := h.bucketFor(req, permObjectsPut)
	if err != nil {
		return err
	}
	if _, err := parseTagHeader(req.r.Header.Get("x-amz-tagging")); err != nil {
		return err
	}
	body, wantMD5, err := putBody(w, req)
	if err != nil {
		return err
	}
	m, err := h.store.PutObject(b.Name, req.key, body, metaFrom(req.r), wantMD5)
	if err != nil {
		return err
	}
	setVersionHeader(w, b, m.VersionID)
	w.Header().Set("ETag", m.ETag)
	w.WriteHeader(http.StatusOK)
	return nil
}

// copyObject is PutObject with x-amz-copy-source: the metadata is the
// source's (COPY, the default) or the request's (REPLACE).
func (h *handler) copyObject(w http.ResponseWriter, req *request) error {
	dst, err := h.bucketFor(req, permObjectsPut)
	if err != nil {
		return err
	}
	src, err := h.copySource(req)
	if err != nil {
		return err
	}
	var meta *objstore.ObjectMeta
	switch d := req.r.Header.Get("x-amz-metadata-directive"); d {
	case "", "COPY":
		if src.bucket.Name == req.bucket && src.key == req.key && src.versionID == "" {
			return ErrInvalidArgument.with(req.bucket+"/"+req.key, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.")
		}
	case "REPLACE":
		m := metaFrom(req.r)
		meta = &m
	default:
		return ErrInvalidArgument.with(req.bucket+"/"+req.key, "Unknown metadata directive.")
	}
	sm, err := h.store.HeadObject(src.bucket.Name, src.key, src.versionID)
	if err != nil {
		return err
	}
	if err := preconditions(req.r, sm, "x-amz-copy-source-"); err != nil {
		return err
	}
	m, err := h.store.CopyObject(src.bucket.Name, src.key, sm.VersionID, dst.Name, req.key, meta)
	if err != nil {
		return err
	}
	setVersionHeader(w, dst, m.VersionID)
	if src.bucket.Versioning != "" {
		w.Header().Set("x-amz-copy-source-version-id", sm.VersionID)
	}
	writeXML(w, http.StatusOK, copyObjectResult{NS: s3NS, LastModified: s3Time(m.LastModified), ETag: m.ETag})
	return nil
}

// copySourceRef is a request's x-amz-copy-source: "bucket/key", URL-encoded,
// optionally with "?versionId=".
type copySourceRef struct {
	bucket    objstore.Bucket
	key       string
	versionID string
}

// copySource reads x-amz-copy-source and checks the caller may read it.
func (h *handler) copySource(req *request) (copySourceRef, error) {
	var ref copySourceRef
	bad := ErrInvalidArgument.with(req.bucket+"/"+req.key, "x-amz-copy-source is not a bucket/key")
	raw, query, _ := strings.Cut(strings.TrimPrefix(req.r.Header.Get("x-amz-copy-source"), "/"), "?")
	src, err := url.PathUnescape(raw)
	if err != nil {
		return ref, bad
	}
	sb, sk, ok := strings.Cut(src, "/")
	if !ok || sb == "" || sk == "" {
		return ref, bad
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil || !has(q, "versionId") || q.Get("versionId") == "" {
			return ref, bad
		}
		if err := objstore.ValidateVersionID(q.Get("versionId")); err != nil {
			return ref, err
		}
		ref.versionID = q.Get("versionId")
	}
	if ref.bucket, err = h.store.Bucket(sb); err != nil {
		return ref, err
	}
	ref.key = sk
	return ref, h.authorize(req, permObjectsGet, ref.bucket)
}

// errNotModified is a conditional GET's 304, which has no S3 error body.
var errNotModified = errors.New("not modified")

// preconditions checks If-Match, If-None-Match, If-Modified-Since and
// If-Unmodified-Since (with prefix, the copy-source variants) as S3 does:
// 412 PreconditionFailed, or 304 for a GET whose If-None-Match or
// If-Modified-Since does not hold.
func preconditions(r *http.Request, m objstore.ObjectMeta, prefix string) error {
	get := func(k string) string { return r.Header.Get(prefix + k) }
	etagIn := func(list string) bool {
		for _, e := range strings.Split(list, ",") {
			e = strings.TrimSpace(e)
			if e == "*" || e == m.ETag || "\""+strings.Trim(e, "\"")+"\"" == m.ETag {
				return true
			}
		}
		return false
	}
	lm := m.LastModified.Truncate(time.Second)
	if v := get("If-Match"); v != "" {
		if !etagIn(v) {
			return ErrPreconditionFailed
		}
	} else if v := get("If-Unmodified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && lm.After(t) {
			return ErrPreconditionFailed
		}
	}
	notModified := ErrPreconditionFailed
	if prefix == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		notModified = nil
	}
	if v := get("If-None-Match"); v != "" {
		if etagIn(v) {
			if notModified == nil {
				return errNotModified
			}
			return notModified
		}
	} else if v := get("If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && !lm.After(t) {
			if notModified == nil {
				return errNotModified
			}
			return notModified
		}
	}
	return nil
}

// parseRange reads a single "bytes=a-b", "bytes=a-" or "bytes=-n" range
// of an object of size; ok false means serve the whole object (S3 ignores
// ranges it cannot parse), err an unsatisfiable range.
func parseRange(s string, size int64) (start, length int64, ok bool, err error) {
	spec, found := strings.CutPrefix(s, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false, nil
	}
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil {
			return 0, 0, false, nil
		}
		if n <= 0 || size == 0 {
			return 0, 0, false, ErrInvalidRange
		}
		n = min(n, size)
		return size - n, n, true, nil
	default:
		first, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return 0, 0, false, nil
		}
		last := size - 1
		if b != "" {
			if last, err = strconv.ParseInt(b, 10, 64); err != nil || last < first {
				return 0, 0, false, nil
			}
			last = min(last, size-1)
		}
		if first >= size {
			return 0, 0, false, ErrInvalidRange
		}
		return first, last - first + 1, true, nil
	}
}

// setObjectHeaders writes an object's headers as S3 answers GET and HEAD.
func setObjectHeaders(w http.ResponseWriter, m objstore.ObjectMeta) {
	hd := w.Header()
	hd.Set("ETag", m.ETag)
	hd.Set("Last-Modified", m.LastModified.UTC().Format(http.TimeFormat))
	hd.Set("Content-Type", m.ContentType)
	hd.Set("Accept-Ranges", "bytes")
	for k, v := range m.Headers {
		hd.Set(k, v)
	}
	for k, v := range m.UserMeta {
		hd["X-Amz-Meta-"+k] = []string{v}
	}
	if len(m.Tags) > 0 {
		hd.Set("x-amz-tagging-count", strconv.Itoa(len(m.Tags)))
	}
}

func (h *handler) getObject(w http.ResponseWriter, req *request, body bool) error {
	b, err := h.bucketFor(req, permObjectsGet)
	if err != nil {
		return err
	}
	vid, err := req.versionID()
	if err != nil {
		return err
	}
	m, f, err := h.store.GetObject(b.Name, req.key, vid)
	if err != nil {
		return err
	}
	defer f.Close()
	setVersionHeader(w, b, m.VersionID)
	if err := preconditions(req.r, m, ""); err != nil {
		if errors.Is(err, errNotModified) {
			w.Header().Set("ETag", m.ETag)
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		return err
	}
	start, length, partial, err := parseRange(req.r.Header.Get("Range"), m.Size)
	if err != nil {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", m.Size))
		return err
	}
	setObjectHeaders(w, m)
	status := http.StatusOK
	if !partial {
		start, length = 0, m.Size
	} else {
		status = http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, m.Size))
	}
	w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(status)
	if body {
		// The file itself (not a SectionReader) lets Go's server send it
		// with sendfile, as nginx does.
		if _, err := f.Seek(start, io.SeekStart); err == nil {
			_, _ = io.Copy(w, io.LimitReader(f, length))
		}
	}
	return nil
}

func (h *handler) deleteObject(w http.ResponseWriter, req *request) error {
	b, err := h.bucketFor(req, permObjectsDelete)
	if err != nil {
		return err
	}
	vid, err := req.versionID()
	if err != nil {
		return err
	}
	res, err := h.store.DeleteObject(b.Name, req.key, vid)
	if err != nil {
		return err
	}
	if res.VersionID != "" {
		w.Header().Set("x-amz-version-id", res.VersionID)
	}
	if res.DeleteMarker {
		w.Header().Set("x-amz-delete-marker", "true")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
