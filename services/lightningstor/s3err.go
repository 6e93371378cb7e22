package lightningstor

import (
	"encoding/xml"
	"errors"
	"net/http"

	"github.com/photoncloud/photon/internal/apierr"
)

// S3Error is an error as S3 answers it: a code clients switch on, an HTTP
// status and a message, in S3's XML.
type S3Error struct {
	Code    string
	Status  int
	Message string
	// Resource is the bucket or key the error is about, when there is one.
	Resource string
	// Headers go out with the error (a delete marker's, for one).
	Headers map[string]string
}

func (e *S3Error) Error() string { return e.Code + ": " + e.Message }

// The S3 errors LightningSTOR answers.
var (
	ErrAccessDenied          = &S3Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Access Denied"}
	ErrNoSuchBucket          = &S3Error{Code: "NoSuchBucket", Status: http.StatusNotFound, Message: "The specified bucket does not exist"}
	ErrNoSuchKey             = &S3Error{Code: "NoSuchKey", Status: http.StatusNotFound, Message: "The specified key does not exist."}
	ErrBucketAlreadyExists   = &S3Error{Code: "BucketAlreadyExists", Status: http.StatusConflict, Message: "The requested bucket name is not available."}
	ErrBucketAlreadyOwned    = &S3Error{Code: "BucketAlreadyOwnedByYou", Status: http.StatusConflict, Message: "Your previous request to create the named bucket succeeded and you already own it."}
	ErrBucketNotEmpty        = &S3Error{Code: "BucketNotEmpty", Status: http.StatusConflict, Message: "The bucket you tried to delete is not empty"}
	ErrInvalidBucketName     = &S3Error{Code: "InvalidBucketName", Status: http.StatusBadRequest, Message: "The specified bucket is not valid."}
	ErrKeyTooLong            = &S3Error{Code: "KeyTooLongError", Status: http.StatusBadRequest, Message: "Your key is too long"}
	ErrInvalidArgument       = &S3Error{Code: "InvalidArgument", Status: http.StatusBadRequest, Message: "Invalid Argument"}
	ErrInvalidAccessKeyID    = &S3Error{Code: "InvalidAccessKeyId", Status: http.StatusForbidden, Message: "The AWS Access Key Id you provided does not exist in our records."}
	ErrSignatureDoesNotMatch = &S3Error{Code: "SignatureDoesNotMatch", Status: http.StatusForbidden, Message: "The request signature we calculated does not match the signature you provided."}
	ErrRequestTimeTooSkewed  = &S3Error{Code: "RequestTimeTooSkewed", Status: http.StatusForbidden, Message: "The difference between the request time and the server's time is too large."}
	ErrExpiredPresigned      = &S3Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Request has expired"}
	ErrAuthMalformed         = &S3Error{Code: "AuthorizationHeaderMalformed", Status: http.StatusBadRequest, Message: "The authorization header is malformed."}
	ErrContentSHA256Mismatch = &S3Error{Code: "XAmzContentSHA256Mismatch", Status: http.StatusBadRequest, Message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
	ErrBadDigest             = &S3Error{Code: "BadDigest", Status: http.StatusBadRequest, Message: "The Content-MD5 you specified did not match what we received."}
	ErrInvalidDigest         = &S3Error{Code: "InvalidDigest", Status: http.StatusBadRequest, Message: "The Content-MD5 you specified is not valid."}
	ErrInvalidRange          = &S3Error{Code: "InvalidRange", Status: http.StatusRequestedRangeNotSatisfiable, Message: "The requested range is not satisfiable"}
	ErrPreconditionFailed    = &S3Error{Code: "PreconditionFailed", Status: http.StatusPreconditionFailed, Message: "At least one of the pre-conditions you specified did not hold"}
	ErrMalformedXML          = &S3Error{Code: "MalformedXML", Status: http.StatusBadRequest, Message: "The XML you provided was not well-formed or did not validate against our published schema."}
	ErrNotImplemented        = &S3Error{Code: "NotImplemented", Status: http.StatusNotImplemented, Message: "A header you provided implies functionality that is not implemented."}
	ErrMethodNotAllowed      = &S3Error{Code: "MethodNotAllowed", Status: http.StatusMethodNotAllowed, Message: "The specified method is not allowed against this resource."}
	ErrInternal              = &S3Error{Code: "InternalError", Status: http.StatusInternalServerError, Message: "We encountered an internal error. Please try again."}
	ErrServiceUnavailable    = &S3Error{Code: "ServiceUnavailable", Status: http.StatusServiceUnavailable, Message: "Please reduce your request rate."}
	ErrEntityTooLarge        = &S3Error{Code: "EntityTooLarge", Status: http.StatusBadRequest, Message: "Your proposed upload exceeds the maximum allowed object size."}
	ErrNoSuchUpload          = &S3Error{Code: "NoSuchUpload", Status: http.StatusNotFound, Message: "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."}
	ErrInvalidPart           = &S3Error{Code: "InvalidPart", Status: http.StatusBadRequest, Message: "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."}
	ErrInvalidPartOrder      = &S3Error{Code: "InvalidPartOrder", Status: http.StatusBadRequest, Message: "The list of parts was not in ascending order. The parts list must be specified in order by part number."}
	ErrEntityTooSmall        = &S3Error{Code: "EntityTooSmall", Status: http.StatusBadRequest, Message: "Your proposed upload is smaller than the minimum allowed object size."}
	ErrInvalidTag            = &S3Error{Code: "InvalidTag", Status: http.StatusBadRequest, Message: "The tag provided was not a valid tag."}
	ErrNoSuchVersion         = &S3Error{Code: "NoSuchVersion", Status: http.StatusNotFound, Message: "The specified version does not exist."}
	ErrInvalidRequest        = &S3Error{Code: "InvalidRequest", Status: http.StatusBadRequest, Message: "Invalid Request"}
	ErrIncompleteBody        = &S3Error{Code: "IncompleteBody", Status: http.StatusBadRequest, Message: "You did not provide the number of bytes specified by the Content-Length HTTP header."}
)

// with is e about resource, with another message when msg is not "".
func (e *S3Error) with(resource, msg string) *S3Error {
	c := *e
	c.Resource = resource
	if msg != "" {
		c.Message = msg
	}
	return &c
}

// errorXML is S3's error document.
type errorXML struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
}

// writeError answers err as S3 does: mapped to S3's code in one place
// (s3ErrorOf); a HEAD gets the status without a body, as S3 sends it.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := s3ErrorOf(err)
	id := w.Header().Get("x-amz-request-id")
	for k, v := range e.Headers {
		w.Header().Set(k, v)
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(e.Status)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(errorXML{Code: e.Code, Message: e.Message, Resource: e.Resource, RequestID: id})
}

// s3ErrorOf maps any error to the S3 error a client sees.
func s3ErrorOf(err error) *S3Error {
	var se *S3Error
	if errors.As(err, &se) {
		return se
	}
	if m := mapStoreError(err); m != nil {
		return m
	}
	if m := mapAuthError(err); m != nil {
		return m
	}
	switch apierr.CodeOf(err) {
	case apierr.CodeForbidden, apierr.CodeUnauthenticated, apierr.CodeNotFound:
		return ErrAccessDenied
	case apierr.CodeUnavailable:
		return ErrServiceUnavailable
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return ErrEntityTooLarge
	}
	return ErrInternal
}
