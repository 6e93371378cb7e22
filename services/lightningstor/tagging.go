package lightningstor

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"sort"
	"unicode/utf8"
)

// S3's limits on an object's tag set.
const (
	maxTags        = 10
	maxTagKeyLen   = 128
	maxTagValueLen = 256
)

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

// taggingXML is the body of PUT and GET ?tagging.
type taggingXML struct {
	XMLName xml.Name `xml:"Tagging"`
	NS      string   `xml:"xmlns,attr,omitempty"`
	TagSet  []tagXML `xml:"TagSet>Tag"`
}

// validTags checks a tag set as S3 does: at most 10 tags, keys 1–128 and
// values 0–256 characters, no key twice.
func validTags(tags []tagXML) (map[string]string, error) {
	if len(tags) > maxTags {
		return nil, ErrInvalidTag.with("", "Object tags cannot be greater than 10")
	}
	out := map[string]string{}
	for _, t := range tags {
		if n := utf8.RuneCountInString(t.Key); n == 0 || n > maxTagKeyLen {
			return nil, ErrInvalidTag.with("", "The TagKey you have provided is invalid")
		}
		if utf8.RuneCountInString(t.Value) > maxTagValueLen {
			return nil, ErrInvalidTag.with("", "The TagValue you have provided is invalid")
		}
		if _, dup := out[t.Key]; dup {
			return nil, ErrInvalidTag.with("", "Cannot provide multiple Tags with the same key")
		}
		out[t.Key] = t.Value
	}
	return out, nil
}

// parseTagHeader reads x-amz-tagging ("k1=v1&k2=v2", URL-encoded).
func parseTagHeader(h string) (map[string]string, error) {
	if h == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(h)
	if err != nil {
		return nil, ErrInvalidTag.with("", "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
	}
	var tags []tagXML
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, ErrInvalidTag.with("", "Cannot provide multiple Tags with the same key")
		}
		tags = append(tags, tagXML{Key: k, Value: vs[0]})
	}
	return validTags(tags)
}

// objectTagging is PUT, GET and DELETE of an object's ?tagging.
func (h *handler) objectTagging(w http.ResponseWriter, req *request) error {
	perm := permObjectsPut
	if req.r.Method == http.MethodGet {
		perm = permObjectsGet
	}
	b, err := h.bucketFor(req, perm)
	if err != nil {
		return err
	}
	vid, err := req.versionID()
	if err != nil {
		return err
	}
	switch req.r.Method {
	case http.MethodGet:
		m, err := h.store.HeadObject(b.Name, req.key, vid)
		if err != nil {
			return err
		}
		setVersionHeader(w, b, m.VersionID)
		out := taggingXML{NS: s3NS, TagSet: []tagXML{}}
		for k, v := range m.Tags {
			out.TagSet = append(out.TagSet, tagXML{Key: k, Value: v})
		}
		sort.Slice(out.TagSet, func(i, j int) bool { return out.TagSet[i].Key < out.TagSet[j].Key })
		writeXML(w, http.StatusOK, out)
		return nil
	case http.MethodPut:
		var in taggingXML
		if err := xml.NewDecoder(io.LimitReader(req.body, 64<<10)).Decode(&in); err != nil {
			return ErrMalformedXML.with(req.bucket+"/"+req.key, "")
		}
		tags, err := validTags(in.TagSet)
		if err != nil {
			return err
		}
		m, err := h.store.SetObjectTags(b.Name, req.key, vid, tags)
		if err != nil {
			return err
		}
		setVersionHeader(w, b, m.VersionID)
		w.WriteHeader(http.StatusOK)
		return nil
	case http.MethodDelete:
		m, err := h.store.SetObjectTags(b.Name, req.key, vid, nil)
		if err != nil {
			return err
		}
		setVersionHeader(w, b, m.VersionID)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return ErrMethodNotAllowed
}
