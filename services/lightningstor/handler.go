package lightningstor

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/rest"
	"github.com/photoncloud/photon/services/lightningstor/objstore"
	"github.com/photoncloud/photon/services/lightningstor/sigv4"
)

// Permissions LightningSTOR checks: "lightningstor.<resource>.<verb>".
const (
	permBucketsCreate = "lightningstor.buckets.create"
	permBucketsDelete = "lightningstor.buckets.delete"
	permBucketsList   = "lightningstor.buckets.list"
	permBucketsGet    = "lightningstor.buckets.get"
	permBucketsUpdate = "lightningstor.buckets.update"
	permObjectsGet    = "lightningstor.objects.get"
	permObjectsList   = "lightningstor.objects.list"
	permObjectsPut    = "lightningstor.objects.put"
	permObjectsDelete = "lightningstor.objects.delete"
)

// handler is the S3 API: routing (path-style and virtual-host-style),
// SigV4 authentication, and the operations over the object store.
type handler struct {
	cfg   Config
	store *objstore.Store
	authn *auth.Authenticator
	keys  sigv4.Secrets
	keyOf func(ctx context.Context, id string) (auth.AccessKey, error)
	now   func() time.Time
	rt    *rest.Router // /-/health and /-/metrics
}

// request is one S3 request as the operations see it.
type request struct {
	r      *http.Request
	ctx    context.Context // carries the caller for auth.Require
	anon   bool
	bucket string
	key    string
	query  url.Values
	size   int64 // the payload's declared (decoded) length; -1 when not declared
	body   interface {
		Read([]byte) (int, error)
		Close() error
	}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := strings.ToUpper(strings.ReplaceAll(uuid.NewString(), "-", "")[:16])
	w.Header().Set("x-amz-request-id", id)
	w.Header().Set("Server", "LightningSTOR")
	bucket, key := h.route(r)
	// Health and metrics live under "/-/": a bucket name cannot start
	// with '-', so they never shadow a bucket.
	if _, vhost := h.vhostBucket(r); bucket == "-" && !vhost {
		h.rt.ServeHTTP(w, r)
		return
	}
	req, err := h.authenticate(r, bucket, key)
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer req.body.Close()
	if err := h.dispatch(w, req); err != nil {
		writeError(w, r, err)
	}
}

// vhostBucket is the bucket r names in its Host ("<bucket>.<domain>",
// virtual-host style); ok is false for a path-style request.
func (h *handler) vhostBucket(r *http.Request) (bucket string, ok bool) {
	host := r.Host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	if h.cfg.Domain == "" {
		return "", false
	}
	return strings.CutSuffix(host, "."+h.cfg.Domain)
}

// route finds the bucket and key: virtual-host style when the Host is
// "<bucket>.<domain>", else path-style "/<bucket>/<key>".
func (h *handler) route(r *http.Request) (bucket, key string) {
	if b, ok := h.vhostBucket(r); ok {
		return b, strings.TrimPrefix(r.URL.Path, "/")
	}
	bucket, key, _ = strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return bucket, key
}

// authenticate verifies the request's signature and attaches its caller.
func (h *handler) authenticate(r *http.Request, bucket, key string) (*request, error) {
	res, body, err := sigv4.Verify(r.Context(), r, h.keys, h.now())
	if err != nil {
		return nil, err
	}
	req := &request{r: r, ctx: r.Context(), anon: res.Anonymous, bucket: bucket, key: key, query: r.URL.Query(), size: res.ContentLength, body: body}
	if isDocument(r, key, req.query) {
		if req.body, err = readDocument(body); err != nil {
			body.Close()
			return nil, err
		}
	}
	if !res.Anonymous {
		k, err := h.keyOf(r.Context(), res.AccessKeyID)
		if err != nil {
			body.Close()
			return nil, err
		}
		req.ctx = h.authn.WithKeySubject(r.Context(), k)
	}
	return req, nil
}

// maxDocumentBody bounds the XML bodies read whole before dispatch: the
// largest is CompleteMultipartUpload's (maxCompleteBody).
const maxDocumentBody = maxCompleteBody

// isDocument is a request whose body is an XML document to parse
// (DeleteObjects, CompleteMultipartUpload, tagging, ACL, bucket
// configuration), not object bytes to stream.
func isDocument(r *http.Request, key string, q url.Values) bool {
	return r.Method == http.MethodPost || r.Method == http.MethodPut && (key == "" || has(q, "tagging") || has(q, "acl"))
}

// readDocument reads a document body to its end before any operation sees
// it: an XML decoder stops at the closing tag, before the verifying reader
// reaches EOF, which is when the body's x-amz-checksum-*, Content-MD5 or
// x-amz-content-sha256 is checked; a body that fails them must not act.
// A body over the bound is passed on as it streams (the operations refuse
// one that large anyway).
func readDocument(body io.ReadCloser) (io.ReadCloser, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxDocumentBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDocumentBody {
		return struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), body), body}, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{bytes.NewReader(b), body}, nil
}

// authorize checks perm on a bucket of project: anonymous callers may only
// list and read public-read buckets; another project's bucket is
// AccessDenied, as S3 answers for a bucket one does not own.
func (h *handler) authorize(req *request, perm string, b objstore.Bucket) error {
	if req.anon {
		// public-read grants everyone READ: the bucket's listing and its
		// objects, nothing more.
		if b.ACL == aclPublicRead && (perm == permObjectsGet || perm == permObjectsList) {
			return nil
		}
		return ErrAccessDenied
	}
	if err := auth.Require(req.ctx, perm, policy.Target{ProjectID: b.ProjectID}); err != nil {
		return ErrAccessDenied
	}
	return nil
}

// project is the caller's project: where its buckets are made and listed.
func (h *handler) project(req *request) (string, error) {
	if req.anon {
		return "", ErrAccessDenied
	}
	s, err := auth.Caller(req.ctx)
	if err != nil || s.Scope == "" || s.Scope == policy.SystemScope {
		return "", ErrAccessDenied
	}
	return s.Scope, nil
}

// Canned ACLs.
const (
	aclPrivate    = "private"
	aclPublicRead = "public-read"
)
