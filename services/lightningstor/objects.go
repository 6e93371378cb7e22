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

func (h *handler) putObject(w http.ResponseWriter, req *request) error {
	b, err := h.bucketFor(req, permObjectsPut)
	if err != nil {
		return err
	}
	if _, err := parseTagHeader(req.r.Header.Get("x-amz-tagging")); err != nil {
		return err
	}
	var wantMD5 []byte
	if s := req.r.Header.Get("Content-MD5"); s != "" {
		if wantMD5, err = base64.StdEncoding.DecodeString(s); err != nil || len(wantMD5) != 16 {
			return ErrInvalidDigest.with(req.bucket+"/"+req.key, "")
		}
	}
	m, err := h.store.PutObject(b.Name, req.key, req.body, metaFrom(req.r), wantMD5)
	if err != nil {
		return err
	}
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
	src, err := url.PathUnescape(strings.TrimPrefix(req.r.Header.Get("x-amz-copy-source"), "/"))
	if err != nil {
		return ErrInvalidArgument.with(req.bucket+"/"+req.key, "x-amz-copy-source is not a bucket/key")
	}
	src, _, _ = strings.Cut(src, "?versionId=")
	sb, sk, ok := strings.Cut(src, "/")
	if !ok || sb == "" || sk == "" {
		return ErrInvalidArgument.with(req.bucket+"/"+req.key, "x-amz-copy-source is not a bucket/key")
	}
	srcBucket, err := h.store.Bucket(sb)
	if err != nil {
		return err
	}
	if err := h.authorize(req, permObjectsGet, srcBucket); err != nil {
		return err
	}
	var meta *objstore.ObjectMeta
	switch d := req.r.Header.Get("x-amz-metadata-directive"); d {
	case "", "COPY":
		if sb == req.bucket && sk == req.key {
			return ErrInvalidArgument.with(req.bucket+"/"+req.key, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.")
		}
	case "REPLACE":
		m := metaFrom(req.r)
		meta = &m
	default:
		return ErrInvalidArgument.with(req.bucket+"/"+req.key, "Unknown metadata directive.")
	}
	sm, err := h.store.HeadObject(sb, sk)
	if err != nil {
		return err
	}
	if err := preconditions(req.r, sm, "x-amz-copy-source-"); err != nil {
		return err
	}
	m, err := h.store.CopyObject(sb, sk, dst.Name, req.key, meta)
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, copyObjectResult{NS: s3NS, LastModified: s3Time(m.LastModified), ETag: m.ETag})
	return nil
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
	m, f, err := h.store.GetObject(b.Name, req.key)
	if err != nil {
		return err
	}
	defer f.Close()
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
	if err := h.store.DeleteObject(b.Name, req.key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
