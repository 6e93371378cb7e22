package lightningstor

import (
	"errors"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/services/lightningstor/objstore"
	"github.com/photoncloud/photon/services/lightningstor/sigv4"
)

func isStoreErr(err, target error) bool { return errors.Is(err, target) }

// mapStoreError is the object store's errors as S3's.
func mapStoreError(err error) *S3Error {
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
