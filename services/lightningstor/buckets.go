package lightningstor

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/photoncloud/photon/services/lightningstor/objstore"
)

// dispatch picks the operation from the method, the bucket and key, and
// the query's subresources.
func (h *handler) dispatch(w http.ResponseWriter, req *request) error {
	r, q := req.r, req.query
	switch {
	case req.bucket == "":
		if r.Method == http.MethodGet {
			return h.listBuckets(w, req)
		}
		return ErrMethodNotAllowed
	case req.key == "":
		switch {
		case has(q, "location") && r.Method == http.MethodGet:
			return h.bucketLocation(w, req)
		case has(q, "acl"):
			return h.bucketACL(w, req)
		case has(q, "delete") && r.Method == http.MethodPost:
			return h.deleteObjects(w, req)
		case has(q, "uploads"):
			if r.Method == http.MethodGet {
				return h.listUploads(w, req)
			}
			return ErrMethodNotAllowed
		case has(q, "versioning"):
			return h.bucketVersioning(w, req)
		case has(q, "versions"):
			if r.Method == http.MethodGet {
				return h.listVersions(w, req)
			}
			return ErrMethodNotAllowed
		case has(q, "lifecycle"), has(q, "policy"), has(q, "cors"), has(q, "tagging"):
			return ErrNotImplemented.with(req.bucket, "")
		}
		switch r.Method {
		case http.MethodPut:
			return h.createBucket(w, req)
		case http.MethodDelete:
			return h.deleteBucket(w, req)
		case http.MethodHead:
			return h.headBucket(w, req)
		case http.MethodGet:
			return h.listObjects(w, req)
		}
		return ErrMethodNotAllowed
	}
	if has(q, "uploads") || has(q, "uploadId") {
		return h.multipart(w, req)
	}
	if has(q, "tagging") {
		return h.objectTagging(w, req)
	}
	if has(q, "acl") {
		return ErrNotImplemented.with(req.bucket+"/"+req.key, "")
	}
	switch r.Method {
	case http.MethodPut:
		if r.Header.Get("x-amz-copy-source") != "" {
			return h.copyObject(w, req)
		}
		return h.putObject(w, req)
	case http.MethodGet:
		return h.getObject(w, req, true)
	case http.MethodHead:
		return h.getObject(w, req, false)
	case http.MethodDelete:
		return h.deleteObject(w, req)
	}
	return ErrMethodNotAllowed
}

func has(q url.Values, k string) bool { _, ok := q[k]; return ok }

// bucketFor reads the bucket after checking perm on it.
func (h *handler) bucketFor(req *request, perm string) (objstore.Bucket, error) {
	b, err := h.store.Bucket(req.bucket)
	if err != nil {
		return b, err
	}
	return b, h.authorize(req, perm, b)
}

func (h *handler) listBuckets(w http.ResponseWriter, req *request) error {
	project, err := h.project(req)
	if err != nil {
		return err
	}
	if err := h.authorize(req, permBucketsList, objstore.Bucket{ProjectID: project}); err != nil {
		return err
	}
	bs, err := h.store.ListBuckets(project)
	if err != nil {
		return err
	}
	out := listAllMyBuckets{NS: s3NS, Owner: owner{ID: project, DisplayName: project}, Buckets: []bucketXML{}}
	for _, b := range bs {
		out.Buckets = append(out.Buckets, bucketXML{Name: b.Name, CreationDate: s3Time(b.CreatedAt)})
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

// cannedACL reads x-amz-acl: private (default) or public-read.
func cannedACL(r *http.Request) (string, error) {
	switch a := r.Header.Get("x-amz-acl"); a {
	case "", aclPrivate:
		return aclPrivate, nil
	case aclPublicRead:
		return aclPublicRead, nil
	default:
		return "", ErrNotImplemented.with("", "canned ACL "+a+" is not supported (private, public-read)")
	}
}

func (h *handler) createBucket(w http.ResponseWriter, req *request) error {
	project, err := h.project(req)
	if err != nil {
		return err
	}
	if err := h.authorize(req, permBucketsCreate, objstore.Bucket{ProjectID: project}); err != nil {
		return err
	}
	acl, err := cannedACL(req.r)
	if err != nil {
		return err
	}
	// An optional CreateBucketConfiguration names a region: any is taken
	// (there is one).
	if _, err := io.Copy(io.Discard, io.LimitReader(req.body, 64<<10)); err != nil {
		return err
	}
	if _, err := h.store.CreateBucket(req.bucket, project, acl); err != nil {
		if b, gerr := h.store.Bucket(req.bucket); gerr == nil && b.ProjectID == project && isStoreErr(err, objstore.ErrBucketExists) {
			return ErrBucketAlreadyOwned.with(req.bucket, "")
		}
		return err
	}
	w.Header().Set("Location", "/"+req.bucket)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *handler) deleteBucket(w http.ResponseWriter, req *request) error {
	if _, err := h.bucketFor(req, permBucketsDelete); err != nil {
		return err
	}
	if err := h.store.DeleteBucket(req.bucket); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) headBucket(w http.ResponseWriter, req *request) error {
	if _, err := h.bucketFor(req, permBucketsGet); err != nil {
		return err
	}
	w.Header().Set("x-amz-bucket-region", h.cfg.Region)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *handler) bucketLocation(w http.ResponseWriter, req *request) error {
	if _, err := h.bucketFor(req, permBucketsGet); err != nil {
		return err
	}
	// us-east-1 is S3's empty LocationConstraint.
	region := h.cfg.Region
	if region == "us-east-1" {
		region = ""
	}
	writeXML(w, http.StatusOK, locationXML{NS: s3NS, Region: region})
	return nil
}

// bucketACL reads (GET) or sets a canned ACL (PUT with x-amz-acl).
func (h *handler) bucketACL(w http.ResponseWriter, req *request) error {
	switch req.r.Method {
	case http.MethodGet:
		b, err := h.bucketFor(req, permBucketsGet)
		if err != nil {
			return err
		}
		out := aclXML{NS: s3NS, Owner: owner{ID: b.ProjectID, DisplayName: b.ProjectID}}
		var own grantXML
		own.Grantee.XMLNSXSI, own.Grantee.Type, own.Grantee.ID, own.Permission = "http://www.w3.org/2001/XMLSchema-instance", "CanonicalUser", b.ProjectID, "FULL_CONTROL"
		out.Grants = append(out.Grants, own)
		if b.ACL == aclPublicRead {
			var all grantXML
			all.Grantee.XMLNSXSI, all.Grantee.Type, all.Grantee.URI, all.Permission = "http://www.w3.org/2001/XMLSchema-instance", "Group", "http://acs.amazonaws.com/groups/global/AllUsers", "READ"
			out.Grants = append(out.Grants, all)
		}
		writeXML(w, http.StatusOK, out)
		return nil
	case http.MethodPut:
		if _, err := h.bucketFor(req, permBucketsUpdate); err != nil {
			return err
		}
		if req.r.Header.Get("x-amz-acl") == "" {
			return ErrNotImplemented.with(req.bucket, "only canned ACLs (x-amz-acl: private or public-read) are supported")
		}
		acl, err := cannedACL(req.r)
		if err != nil {
			return err
		}
		if err := h.store.SetBucketACL(req.bucket, acl); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	return ErrMethodNotAllowed
}

// listObjects is ListObjects V1 and (list-type=2) V2.
func (h *handler) listObjects(w http.ResponseWriter, req *request) error {
	b, err := h.bucketFor(req, permObjectsList)
	if err != nil {
		return err
	}
	q := req.query
	v2 := q.Get("list-type") == "2"
	enc, maxKeys, err := req.listing("max-keys", objstore.MaxListKeys)
	if err != nil {
		return err
	}
	o := objstore.ListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), MaxKeys: maxKeys}
	if v2 {
		o.StartAfter, o.ContinuationToken = q.Get("start-after"), q.Get("continuation-token")
	} else {
		o.StartAfter = q.Get("marker")
	}
	out := listBucketResult{NS: s3NS, Name: b.Name, MaxKeys: maxKeys, EncodingType: enc, Contents: []contentXML{}}
	if maxKeys > 0 {
		res, err := h.store.List(b.Name, o)
		if err != nil {
			return err
		}
		for _, m := range res.Objects {
			out.Contents = append(out.Contents, contentXML{Key: encodeKey(m.Key, enc), LastModified: s3Time(m.LastModified), ETag: m.ETag,
				Size: m.Size, StorageClass: "STANDARD", Owner: &owner{ID: b.ProjectID, DisplayName: b.ProjectID}})
		}
		for _, p := range res.CommonPrefixes {
			out.CommonPrefixes = append(out.CommonPrefixes, prefixXML{Prefix: encodeKey(p, enc)})
		}
		out.IsTruncated = res.IsTruncated
		if v2 {
			out.NextContinuationToken = res.NextContinuationToken
		} else if res.IsTruncated && o.Delimiter != "" {
			out.NextMarker = encodeKey(res.NextMarker, enc)
		}
	}
	out.Prefix, out.Delimiter = encodeKey(o.Prefix, enc), encodeKey(o.Delimiter, enc)
	if v2 {
		n := len(out.Contents) + len(out.CommonPrefixes)
		out.KeyCount, out.ContinuationToken, out.StartAfter = &n, o.ContinuationToken, encodeKey(o.StartAfter, enc)
	} else {
		m := encodeKey(o.StartAfter, enc)
		out.Marker = &m
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

// encodeKey is encoding-type=url: keys as S3 encodes them (spaces as +).
func encodeKey(s, enc string) string {
	if enc != "url" {
		return s
	}
	return strings.ReplaceAll(url.QueryEscape(s), "%2F", "/")
}

// deleteObjects is DeleteObjects (POST ?delete): each key's own result.
func (h *handler) deleteObjects(w http.ResponseWriter, req *request) error {
	b, err := h.bucketFor(req, permObjectsDelete)
	if err != nil {
		return err
	}
	var d deleteRequest
	if err := xml.NewDecoder(io.LimitReader(req.body, 2<<20)).Decode(&d); err != nil || len(d.Objects) == 0 || len(d.Objects) > 1000 {
		return ErrMalformedXML.with(req.bucket, "")
	}
	out := deleteResult{NS: s3NS}
	for _, o := range d.Objects {
		res, err := h.store.DeleteObject(b.Name, o.Key, o.VersionID)
		if err != nil {
			e := s3ErrorOf(err)
			out.Errors = append(out.Errors, deleteErrorXML{Key: o.Key, VersionID: o.VersionID, Code: e.Code, Message: e.Message})
			continue
		}
		if d.Quiet {
			continue
		}
		del := deletedXML{Key: o.Key, VersionID: o.VersionID}
		if res.DeleteMarker {
			del.DeleteMarker = true
			if o.VersionID == "" {
				del.DeleteMarkerVersionID = res.VersionID
			} else {
				del.DeleteMarkerVersionID = o.VersionID
			}
		}
		out.Deleted = append(out.Deleted, del)
	}
	writeXML(w, http.StatusOK, out)
	return nil
}
