package lightningstor

import (
	"encoding/xml"
	"io"
	"net/http"

	"github.com/photoncloud/photon/services/lightningstor/objstore"
)

// versionID reads a request's ?versionId: "" when there is none.
func (req *request) versionID() (string, error) {
	if !has(req.query, "versionId") {
		return "", nil
	}
	id := req.query.Get("versionId")
	if id == "" {
		return "", ErrInvalidArgument.with(req.bucket+"/"+req.key, "Version id cannot be the empty string")
	}
	if err := objstore.ValidateVersionID(id); err != nil {
		return "", err
	}
	return id, nil
}

// setVersionHeader answers x-amz-version-id as S3 does: only for buckets
// whose versioning was ever configured.
func setVersionHeader(w http.ResponseWriter, b objstore.Bucket, versionID string) {
	if b.Versioning != "" && versionID != "" {
		w.Header().Set("x-amz-version-id", versionID)
	}
}

type versioningXML struct {
	XMLName   xml.Name `xml:"VersioningConfiguration"`
	NS        string   `xml:"xmlns,attr,omitempty"`
	Status    string   `xml:"Status,omitempty"`
	MfaDelete string   `xml:"MfaDelete,omitempty"`
}

// bucketVersioning is GET and PUT of a bucket's ?versioning.
func (h *handler) bucketVersioning(w http.ResponseWriter, req *request) error {
	switch req.r.Method {
	case http.MethodGet:
		b, err := h.bucketFor(req, permBucketsGet)
		if err != nil {
			return err
		}
		writeXML(w, http.StatusOK, versioningXML{NS: s3NS, Status: b.Versioning})
		return nil
	case http.MethodPut:
		if _, err := h.bucketFor(req, permBucketsUpdate); err != nil {
			return err
		}
		var in versioningXML
		if err := xml.NewDecoder(io.LimitReader(req.body, 64<<10)).Decode(&in); err != nil {
			return ErrMalformedXML.with(req.bucket, "")
		}
		if in.Status != objstore.VersioningEnabled && in.Status != objstore.VersioningSuspended {
			return ErrMalformedXML.with(req.bucket, "")
		}
		if in.MfaDelete == "Enabled" {
			return ErrNotImplemented.with(req.bucket, "MFA delete is not supported")
		}
		if err := h.store.SetBucketVersioning(req.bucket, in.Status); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	return ErrMethodNotAllowed
}

// versionXML is a Version or a DeleteMarker of ListVersionsResult; the two
// are interleaved in key order, so each carries its own element name.
type versionXML struct {
	XMLName      xml.Name
	Key          string `xml:"Key"`
	VersionID    string `xml:"VersionId"`
	IsLatest     bool   `xml:"IsLatest"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag,omitempty"`
	Size         *int64 `xml:"Size,omitempty"`
	StorageClass string `xml:"StorageClass,omitempty"`
	Owner        owner  `xml:"Owner"`
}

type listVersionsResult struct {
	XMLName             xml.Name     `xml:"ListVersionsResult"`
	NS                  string       `xml:"xmlns,attr"`
	Name                string       `xml:"Name"`
	Prefix              string       `xml:"Prefix"`
	KeyMarker           string       `xml:"KeyMarker"`
	VersionIDMarker     string       `xml:"VersionIdMarker"`
	NextKeyMarker       string       `xml:"NextKeyMarker,omitempty"`
	NextVersionIDMarker string       `xml:"NextVersionIdMarker,omitempty"`
	MaxKeys             int          `xml:"MaxKeys"`
	Delimiter           string       `xml:"Delimiter,omitempty"`
	EncodingType        string       `xml:"EncodingType,omitempty"`
	IsTruncated         bool         `xml:"IsTruncated"`
	Entries             []versionXML // each names itself
	CommonPrefixes      []prefixXML  `xml:"CommonPrefixes"`
}

// listVersions is ListObjectVersions (GET ?versions).
func (h *handler) listVersions(w http.ResponseWriter, req *request) error {
	b, err := h.bucketFor(req, permObjectsList)
	if err != nil {
		return err
	}
	q := req.query
	enc, maxKeys, err := req.listing("max-keys", objstore.MaxListKeys)
	if err != nil {
		return err
	}
	o := objstore.VersionListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"),
		KeyMarker: q.Get("key-marker"), VersionIDMarker: q.Get("version-id-marker"), MaxKeys: maxKeys}
	out := listVersionsResult{NS: s3NS, Name: b.Name, MaxKeys: maxKeys, EncodingType: enc,
		Prefix: encodeKey(o.Prefix, enc), Delimiter: encodeKey(o.Delimiter, enc),
		KeyMarker: encodeKey(o.KeyMarker, enc), VersionIDMarker: o.VersionIDMarker}
	if maxKeys > 0 {
		res, err := h.store.ListVersions(b.Name, o)
		if err != nil {
			return err
		}
		own := owner{ID: b.ProjectID, DisplayName: b.ProjectID}
		for _, m := range res.Versions {
			v := versionXML{Key: encodeKey(m.Key, enc), VersionID: m.VersionID, IsLatest: m.IsLatest,
				LastModified: s3Time(m.LastModified), Owner: own}
			if m.DeleteMarker {
				v.XMLName.Local = "DeleteMarker"
			} else {
				size := m.Size
				v.XMLName.Local, v.ETag, v.Size, v.StorageClass = "Version", m.ETag, &size, "STANDARD"
			}
			out.Entries = append(out.Entries, v)
		}
		for _, p := range res.CommonPrefixes {
			out.CommonPrefixes = append(out.CommonPrefixes, prefixXML{Prefix: encodeKey(p, enc)})
		}
		out.IsTruncated = res.IsTruncated
		out.NextKeyMarker, out.NextVersionIDMarker = encodeKey(res.NextKeyMarker, enc), res.NextVersionIDMarker
	}
	writeXML(w, http.StatusOK, out)
	return nil
}
