package lightningstor

import (
	"errors"
	"net/http"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/services/lightningstor/objstore"
	"github.com/photoncloud/photon/services/lightningstor/sigv4"
)

func isStoreErr(err, target error) bool { return errors.Is(err, target) }

// mapStoreError is the object store's errors as S3's.
func mapStoreError(err error) *S3Error {
	var dm *objstore.DeleteMarkerError
	if errors.As(err, &dm) {
		// S3 says which version is the marker; asked for by id, the
		// marker is there but cannot be read (405), else the key is
		// gone (404).
		e := *ErrNoSuchKey
		if dm.Explicit {
			e = *ErrMethodNotAllowed
			e.Headers = map[string]string{"Last-Modified": dm.Meta.LastModified.UTC().Format(http.TimeFormat)}
		} else {
			e.Headers = map[string]string{}
		}
		e.Headers["x-amz-delete-marker"] = "true"
		e.Headers["x-amz-version-id"] = dm.Meta.VersionID
		return &e
	}
	for _, m := range []struct {
		err error
		s3  *S3Error
	}{
		{objstore.ErrBucketNotFound, ErrNoSuchBucket},
		{objstore.ErrNoSuchKey, ErrNoSuchKey},
		{objstore.ErrBucketExists, ErrBucketAlreadyExists},
		{objstore.ErrBucketNotEmpty, ErrBucketNotEmpty},
		{objstore.ErrInvalidBucketName, ErrInvalidBucketName},
		{objstore.ErrKeyTooLong, ErrKeyTooLong},
		{objstore.ErrInvalidKey, ErrInvalidArgument},
		{objstore.ErrInvalidACL, ErrInvalidArgument},
		{objstore.ErrBadDigest, ErrBadDigest},
		{objstore.ErrInvalidArgument, ErrInvalidArgument},
		{objstore.ErrPreconditionFailed, ErrPreconditionFailed},
		{objstore.ErrNoSuchUpload, ErrNoSuchUpload},
		{objstore.ErrInvalidPart, ErrInvalidPart},
		{objstore.ErrInvalidPartOrder, ErrInvalidPartOrder},
		{objstore.ErrEntityTooSmall, ErrEntityTooSmall},
		{objstore.ErrEntityTooLarge, ErrEntityTooLarge},
		{objstore.ErrNoSuchVersion, ErrNoSuchVersion},
		{objstore.ErrInvalidVersionID, ErrInvalidArgument.with("", "Invalid version id specified")},
	} {
		if errors.Is(err, m.err) {
			return m.s3
		}
	}
	return nil
}

// mapAuthError is signature verification's and key lookup's errors as
// S3's.
func mapAuthError(err error) *S3Error {
	// A flexible checksum's mismatch names its algorithm, as S3's message does.
	var ce *sigv4.ChecksumError
	if errors.As(err, &ce) {
		return ErrBadDigest.with("", "The "+ce.Algorithm+" you specified did not match the calculated checksum.")
	}
	for _, m := range []struct {
		err error
		s3  *S3Error
	}{
		{sigv4.ErrUnknownKey, ErrInvalidAccessKeyID},
		{sigv4.ErrSignatureMismatch, ErrSignatureDoesNotMatch},
		{sigv4.ErrRequestTimeTooSkewed, ErrRequestTimeTooSkewed},
		{sigv4.ErrExpired, ErrExpiredPresigned},
		{sigv4.ErrMalformed, ErrAuthMalformed},
		{sigv4.ErrUnsupported, ErrNotImplemented},
		{sigv4.ErrContentSHA256Mismatch, ErrContentSHA256Mismatch},
		{sigv4.ErrBadDigest, ErrBadDigest},
		{sigv4.ErrChecksumMismatch, ErrBadDigest},
		{sigv4.ErrInvalidChecksum, ErrInvalidRequest},
	} {
		if errors.Is(err, m.err) {
			return m.s3
		}
	}
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return ErrInvalidAccessKeyID // an access key IAM does not have
	}
	return nil
}
