package lightningstor

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/photoncloud/photon/services/lightningstor/objstore"
)

// DefaultUploadExpiry is how long a multipart upload may stay unfinished
// before the sweep aborts it (S3 leaves that to lifecycle rules; an
// abandoned upload here would otherwise hold its parts' disk forever).
const DefaultUploadExpiry = 7 * 24 * time.Hour

// SweepUploadsEvery aborts uploads older than maxAge now and then every
// interval, until ctx ends. The server runs it for as long as it serves.
func SweepUploadsEvery(ctx context.Context, st *objstore.Store, maxAge, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := st.SweepUploads(time.Now().Add(-maxAge))
		if err != nil {
			slog.Warn("lightningstor: sweep multipart uploads", "err", err)
		} else if n > 0 {
			slog.Info("lightningstor: aborted stale multipart uploads", "count", n, "max_age", maxAge)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// multipart answers the object-level requests with ?uploads or ?uploadId.
func (h *handler) multipart(w http.ResponseWriter, req *request) error {
	q := req.query
	switch m := req.r.Method; {
	case has(q, "uploads") && m == http.MethodPost:
		return h.createUpload(w, req)
	case !has(q, "uploadId"):
		return ErrMethodNotAllowed
	case m == http.MethodPut:
		if req.r.Header.Get("x-amz-copy-source") != "" {
			return h.uploadPartCopy(w, req)
		}
		return h.uploadPart(w, req)
	case m == http.MethodPost:
		return h.completeUpload(w, req)
	case m == http.MethodDelete:
		return h.abortUpload(w, req)
	case m == http.MethodGet:
		return h.listParts(w, req)
	}
	return ErrMethodNotAllowed
}

func (h *handler) createUpload(w http.ResponseWriter, req *request) error {
	b, err := h.bucketFor(req, permObjectsPut)
	if err != nil {
		return err
	}
	u, err := h.store.CreateUpload(b.Name, req.key, metaFrom(req.r))
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, initiateUploadResult{NS: s3NS, Bucket: b.Name, Key: req.key, UploadID: u.UploadID})
	return nil
}

// partNumber reads ?partNumber: 1 to 10000.
func (req *request) partNumber() (int, error) {
	n, err := strconv.Atoi(req.query.Get("partNumber"))
	if err != nil || n < 1 || n > objstore.MaxPartNumber {
		return 0, ErrInvalidArgument.with(req.bucket+"/"+req.key, "Part number must be an integer between 1 and 10000, inclusive")
	}
	return n, nil
}

func (h *handler) uploadPart(w http.ResponseWriter, req *request) error {
	b, err := h.bucketFor(req, permObjectsPut)
	if err != nil {
		return err
	}
	n, err := req.partNumber()
	if err != nil {
		return err
	}
	body, wantMD5, err := putBody(w, req)
	if err != nil {
		return err
	}
	p, err := h.store.PutPart(b.Name, req.key, req.query.Get("uploadId"), n, body, wantMD5)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", p.ETag)
	w.WriteHeader(http.StatusOK)
	return nil
}

// uploadPartCopy is UploadPart with its bytes from an object, whole or
// the x-amz-copy-source-range "bytes=first-last".
func (h *handler) uploadPartCopy(w http.ResponseWriter, req *request) error {
	b, err := h.bucketFor(req, permObjectsPut)
	if err != nil {
		return err
	}
	n, err := req.partNumber()
	if err != nil {
		return err
	}
	uploadID := req.query.Get("uploadId")
	// Unknown uploads fail before the source is read.
	if _, err := h.store.Upload(b.Name, req.key, uploadID); err != nil {
		return err
	}
	res := req.bucket + "/" + req.key
	src, err := h.copySource(req)
	if err != nil {
		return err
	}
	sm, f, err := h.store.GetObject(src.bucket.Name, src.key, src.versionID)
	if err != nil {
		return err
	}
	defer f.Close()
	if src.bucket.Versioning != "" {
		w.Header().Set("x-amz-copy-source-version-id", sm.VersionID)
	}
	if err := preconditions(req.r, sm, "x-amz-copy-source-"); err != nil {
		return err
	}
	start, length := int64(0), sm.Size
	if rg := req.r.Header.Get("x-amz-copy-source-range"); rg != "" {
		var ok bool
		if start, length, ok = copyRange(rg, sm.Size); !ok {
			return ErrInvalidArgument.with(res, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy, within the source object of size "+strconv.FormatInt(sm.Size, 10))
		}
	}
	p, err := h.store.PutPart(b.Name, req.key, uploadID, n, io.NewSectionReader(f, start, length), nil)
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, copyPartResult{NS: s3NS, LastModified: s3Time(p.LastModified), ETag: p.ETag})
	return nil
}

// copyRange parses "bytes=first-last" strictly, as S3 does for
// x-amz-copy-source-range (no suffix or open-ended forms).
func copyRange(s string, size int64) (start, length int64, ok bool) {
	spec, found := strings.CutPrefix(s, "bytes=")
	a, b, found2 := strings.Cut(spec, "-")
	if !found || !found2 {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first || last >= size {
		return 0, 0, false
	}
	return first, last - first + 1, true
}

// maxCompleteBody bounds CompleteMultipartUpload's XML: 10,000 parts of a
// few hundred bytes each.
const maxCompleteBody = 8 << 20

func (h *handler) completeUpload(w http.ResponseWriter, req *request) error {
	b, err := h.bucketFor(req, permObjectsPut)
	if err != nil {
		return err
	}
	uploadID := req.query.Get("uploadId")
	var body completeUploadXML
	if err := xml.NewDecoder(io.LimitReader(req.body, maxCompleteBody)).Decode(&body); err != nil || len(body.Parts) == 0 {
		// A missing upload is the better answer than the body's shape.
		if _, uerr := h.store.Upload(b.Name, req.key, uploadID); uerr != nil {
			return uerr
		}
		return ErrMalformedXML.with(req.bucket+"/"+req.key, "")
	}
	parts := make([]objstore.CompletePart, len(body.Parts))
	for i, p := range body.Parts {
		parts[i] = objstore.CompletePart{Number: p.PartNumber, ETag: p.ETag}
	}
	m, err := h.store.CompleteUpload(b.Name, req.key, uploadID, parts)
	if err != nil {
		if errors.Is(err, objstore.ErrInvalidPartOrder) || errors.Is(err, objstore.ErrInvalidPart) {
			// Order and part checks come after the upload's existence.
			if _, uerr := h.store.Upload(b.Name, req.key, uploadID); uerr != nil {
				return uerr
			}
		}
		return err
	}
	setVersionHeader(w, b, m.VersionID)
	loc := "http://" + req.r.Host + "/" + url.PathEscape(b.Name) + "/" + strings.ReplaceAll(url.PathEscape(req.key), "%2F", "/")
	writeXML(w, http.StatusOK, completeUploadResult{NS: s3NS, Location: loc, Bucket: b.Name, Key: req.key, ETag: m.ETag})
	return nil
}

func (h *handler) abortUpload(w http.ResponseWriter, req *request) error {
	b, err := h.bucketFor(req, permObjectsPut)
	if err != nil {
		return err
	}
	if err := h.store.AbortUpload(b.Name, req.key, req.query.Get("uploadId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// intParam reads an optional non-negative integer query parameter.
// listing reads what every list call shares: encoding-type (only "url")
// and its page size param, capped at max (also its default).
func (req *request) listing(sizeParam string, max int) (enc string, size int, err error) {
	enc = req.query.Get("encoding-type")
	if enc != "" && enc != "url" {
		return "", 0, ErrInvalidArgument.with(req.bucket, "Invalid Encoding Method specified in Request")
	}
	size, err = req.intParam(sizeParam, max)
	return enc, min(size, max), err
}

func (req *request) intParam(name string, def int) (int, error) {
	s := req.query.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, ErrInvalidArgument.with(req.bucket, name+" must be a non-negative integer")
	}
	return n, nil
}

func (h *handler) listParts(w http.ResponseWriter, req *request) error {
	b, err := h.bucketFor(req, permObjectsList)
	if err != nil {
		return err
	}
	maxParts, err := req.intParam("max-parts", objstore.MaxListParts)
	if err != nil {
		return err
	}
	marker, err := req.intParam("part-number-marker", 0)
	if err != nil {
		return err
	}
	maxParts = min(maxParts, objstore.MaxListParts)
	uploadID := req.query.Get("uploadId")
	out := listPartsResult{NS: s3NS, Bucket: b.Name, Key: req.key, UploadID: uploadID,
		Initiator: owner{ID: b.ProjectID, DisplayName: b.ProjectID}, Owner: owner{ID: b.ProjectID, DisplayName: b.ProjectID},
		StorageClass: "STANDARD", PartNumberMarker: marker, MaxParts: maxParts}
	if maxParts == 0 {
		// S3 answers an empty page; the upload must still exist.
		if _, err := h.store.Upload(b.Name, req.key, uploadID); err != nil {
			return err
		}
	} else {
		pl, err := h.store.ListParts(b.Name, req.key, uploadID, marker, maxParts)
		if err != nil {
			return err
		}
		for _, p := range pl.Parts {
			out.Parts = append(out.Parts, partXML{PartNumber: p.Number, LastModified: s3Time(p.LastModified), ETag: p.ETag, Size: p.Size})
		}
		out.IsTruncated = pl.IsTruncated
		out.NextPartNumberMarker = pl.NextPartNumberMarker
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

// listUploads is ListMultipartUploads (GET /bucket?uploads).
func (h *handler) listUploads(w http.ResponseWriter, req *request) error {
	b, err := h.bucketFor(req, permObjectsList)
	if err != nil {
		return err
	}
	q := req.query
	enc, maxUploads, err := req.listing("max-uploads", objstore.MaxListUploads)
	if err != nil {
		return err
	}
	o := objstore.UploadListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"),
		KeyMarker: q.Get("key-marker"), UploadIDMarker: q.Get("upload-id-marker"), MaxUploads: maxUploads}
	if o.KeyMarker == "" {
		o.UploadIDMarker = "" // S3 ignores an upload-id-marker without a key-marker
	}
	out := listUploadsResult{NS: s3NS, Bucket: b.Name, KeyMarker: encodeKey(o.KeyMarker, enc), UploadIDMarker: o.UploadIDMarker,
		Prefix: encodeKey(o.Prefix, enc), Delimiter: encodeKey(o.Delimiter, enc), MaxUploads: maxUploads, EncodingType: enc}
	if maxUploads > 0 {
		l, err := h.store.ListUploads(b.Name, o)
		if err != nil {
			return err
		}
		own := owner{ID: b.ProjectID, DisplayName: b.ProjectID}
		for _, u := range l.Uploads {
			out.Uploads = append(out.Uploads, uploadXML{Key: encodeKey(u.Key, enc), UploadID: u.UploadID, Initiator: own, Owner: own,
				StorageClass: "STANDARD", Initiated: s3Time(u.Initiated)})
		}
		for _, p := range l.CommonPrefixes {
			out.CommonPrefixes = append(out.CommonPrefixes, prefixXML{Prefix: encodeKey(p, enc)})
		}
		out.IsTruncated = l.IsTruncated
		out.NextKeyMarker, out.NextUploadIDMarker = encodeKey(l.NextKeyMarker, enc), l.NextUploadIDMarker
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

type initiateUploadResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	NS       string   `xml:"xmlns,attr"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	NS           string   `xml:"xmlns,attr"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

// completeUploadXML is CompleteMultipartUpload's body. The namespace is
// optional: clients send it with and without.
type completeUploadXML struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber int    `xml:"PartNumber"`
		ETag       string `xml:"ETag"`
	} `xml:"Part"`
}

type completeUploadResult struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	NS       string   `xml:"xmlns,attr"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

type partXML struct {
	PartNumber   int    `xml:"PartNumber"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
}

type listPartsResult struct {
	XMLName              xml.Name  `xml:"ListPartsResult"`
	NS                   string    `xml:"xmlns,attr"`
	Bucket               string    `xml:"Bucket"`
	Key                  string    `xml:"Key"`
	UploadID             string    `xml:"UploadId"`
	Initiator            owner     `xml:"Initiator"`
	Owner                owner     `xml:"Owner"`
	StorageClass         string    `xml:"StorageClass"`
	PartNumberMarker     int       `xml:"PartNumberMarker"`
	NextPartNumberMarker int       `xml:"NextPartNumberMarker"`
	MaxParts             int       `xml:"MaxParts"`
	IsTruncated          bool      `xml:"IsTruncated"`
	Parts                []partXML `xml:"Part"`
}

type uploadXML struct {
	Key          string `xml:"Key"`
	UploadID     string `xml:"UploadId"`
	Initiator    owner  `xml:"Initiator"`
	Owner        owner  `xml:"Owner"`
	StorageClass string `xml:"StorageClass"`
	Initiated    string `xml:"Initiated"`
}

type listUploadsResult struct {
	XMLName            xml.Name    `xml:"ListMultipartUploadsResult"`
	NS                 string      `xml:"xmlns,attr"`
	Bucket             string      `xml:"Bucket"`
	KeyMarker          string      `xml:"KeyMarker"`
	UploadIDMarker     string      `xml:"UploadIdMarker"`
	NextKeyMarker      string      `xml:"NextKeyMarker"`
	NextUploadIDMarker string      `xml:"NextUploadIdMarker"`
	Prefix             string      `xml:"Prefix"`
	Delimiter          string      `xml:"Delimiter,omitempty"`
	MaxUploads         int         `xml:"MaxUploads"`
	EncodingType       string      `xml:"EncodingType,omitempty"`
	IsTruncated        bool        `xml:"IsTruncated"`
	Uploads            []uploadXML `xml:"Upload"`
	CommonPrefixes     []prefixXML `xml:"CommonPrefixes"`
}
