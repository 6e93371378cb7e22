package objstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A bucket's versioning state, as S3 names it. A bucket that was never
// versioned has "" and cannot return to it.
const (
	VersioningEnabled   = "Enabled"
	VersioningSuspended = "Suspended"
)

// NullVersion is the version id of an object written while the bucket was
// unversioned or suspended: a key has at most one.
const NullVersion = "null"

// Versioning errors.
var (
	ErrNoSuchVersion    = errors.New("no such version")
	ErrInvalidVersionID = errors.New("invalid version id")
)

// DeleteMarkerError is a read that found a delete marker: the key's current
// version (Explicit false; S3 answers 404) or the version asked for by id
// (Explicit true; S3 answers 405).
type DeleteMarkerError struct {
	Meta     ObjectMeta
	Explicit bool
}

func (e *DeleteMarkerError) Error() string {
	return fmt.Sprintf("%s/%s: version %s is a delete marker", e.Meta.Bucket, e.Meta.Key, e.Meta.VersionID)
}

// Is makes a current delete marker an ErrNoSuchKey for callers that only
// care that the key is absent.
func (e *DeleteMarkerError) Is(target error) bool { return target == ErrNoSuchKey && !e.Explicit }

// bktVersions holds, per bucket id, every version of every key (delete
// markers too) under versionKey: the key, NUL, then the inverted sequence
// number, so a key's versions sort newest first and keys in byte order.
// The "objects" index holds each key's current version unless that is a
// delete marker; reads and ListObjects use it, ListObjectVersions this.
var bktVersions = []byte("versions")

func versionKey(key string, seq uint64) []byte {
	b := make([]byte, 0, len(key)+9)
	b = append(b, key...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint64(b, ^seq)
}

// versionPrefix is what every version key of key starts with (keys never
// contain NUL).
func versionPrefix(key string) []byte { return append([]byte(key), 0) }

func keyOfVersion(vk []byte) string { return string(vk[:len(vk)-9]) }

// Generated version ids are the sequence number in hex: opaque to clients,
// and they find their record without a scan.
func formatVersionID(seq uint64) string { return fmt.Sprintf("%016x", seq) }

// ValidateVersionID checks a version id from a request.
func ValidateVersionID(id string) error {
	if id == NullVersion {
		return nil
	}
	if _, err := strconv.ParseUint(id, 16, 64); err != nil || len(id) != 16 {
		return fmt.Errorf("%w: %q", ErrInvalidVersionID, id)
	}
	return nil
}

func versionsOf(tx *bolt.Tx, bucketID string) *bolt.Bucket {
	return tx.Bucket(bktVersions).Bucket([]byte(bucketID))
}

func objectsOf(tx *bolt.Tx, bucketID string) *bolt.Bucket {
	return tx.Bucket(bktObjects).Bucket([]byte(bucketID))
}

// putVersion records rec as key's newest version under br's versioning
// state and makes it the current object (a delete marker removes the
// current object from the index). Outside Enabled it replaces the key's
// null version, whose body file it returns to be unlinked after commit.
func putVersion(tx *bolt.Tx, br bucketRecord, key string, rec *objectRecord) (freed string, err error) {
	vb := versionsOf(tx, br.ID)
	seq, err := vb.NextSequence()
	if err != nil {
		return "", err
	}
	if br.Versioning == VersioningEnabled {
		rec.VersionID = formatVersionID(seq)
	} else {
		rec.VersionID = NullVersion
		vk, old, found, err := findVersion(vb, key, NullVersion)
		if err != nil {
			return "", err
		}
		if found {
			if err := vb.Delete(vk); err != nil {
				return "", err
			}
			if !old.DeleteMarker {
				freed = old.FileID
			}
		}
	}
	if err := putJSON(vb, versionKey(key, seq), rec); err != nil {
		return "", err
	}
	ob := objectsOf(tx, br.ID)
	if rec.DeleteMarker {
		return freed, ob.Delete([]byte(key))
	}
	return freed, putJSON(ob, []byte(key), rec)
}

// findVersion finds key's version id in vb.
func findVersion(vb *bolt.Bucket, key, id string) (vk []byte, rec objectRecord, found bool, err error) {
	if id != NullVersion {
		seq, perr := strconv.ParseUint(id, 16, 64)
		if perr != nil {
			return nil, rec, false, fmt.Errorf("%w: %q", ErrInvalidVersionID, id)
		}
		vk = versionKey(key, seq)
		v := vb.Get(vk)
		if v == nil {
			return nil, rec, false, nil
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, rec, false, err
		}
		return vk, rec, rec.VersionID == id, nil
	}
	// A key has at most one null version, somewhere in its stack.
	p := versionPrefix(key)
	c := vb.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, rec, false, err
		}
		if rec.VersionID == NullVersion {
			return bytes.Clone(k), rec, true, nil
		}
	}
	return nil, objectRecord{}, false, nil
}

// newestVersion is key's newest version, if it has any.
func newestVersion(vb *bolt.Bucket, key string) (rec objectRecord, found bool, err error) {
	p := versionPrefix(key)
	k, v := vb.Cursor().Seek(p)
	if k == nil || !bytes.HasPrefix(k, p) {
		return rec, false, nil
	}
	return rec, true, json.Unmarshal(v, &rec)
}

// removeVersion deletes one version for good and makes the newest remaining
// one current (or none, if that is a delete marker or there is none).
func removeVersion(tx *bolt.Tx, br bucketRecord, key string, vk []byte) error {
	vb := versionsOf(tx, br.ID)
	if err := vb.Delete(vk); err != nil {
		return err
	}
	ob := objectsOf(tx, br.ID)
	cur, found, err := newestVersion(vb, key)
	if err != nil {
		return err
	}
	if !found || cur.DeleteMarker {
		return ob.Delete([]byte(key))
	}
	return putJSON(ob, []byte(key), cur)
}

// readVersion is the record a read of key (at version id, or the current
// one when id is "") sees.
func readVersion(tx *bolt.Tx, bucket, key, id string) (bucketRecord, objectRecord, error) {
	var rec objectRecord
	br, err := getBucket(tx, bucket)
	if err != nil {
		return br, rec, err
	}
	if id == "" {
		if v := objectsOf(tx, br.ID).Get([]byte(key)); v != nil {
			return br, rec, json.Unmarshal(v, &rec)
		}
		newest, found, err := newestVersion(versionsOf(tx, br.ID), key)
		if err != nil {
			return br, rec, err
		}
		if found && newest.DeleteMarker {
			return br, rec, &DeleteMarkerError{Meta: newest.meta(bucket, key)}
		}
		return br, rec, fmt.Errorf("%w: %s/%s", ErrNoSuchKey, bucket, key)
	}
	_, rec, found, err := findVersion(versionsOf(tx, br.ID), key, id)
	if err != nil {
		return br, rec, err
	}
	if !found {
		return br, rec, fmt.Errorf("%w: %s/%s?versionId=%s", ErrNoSuchVersion, bucket, key, id)
	}
	if rec.DeleteMarker {
		return br, rec, &DeleteMarkerError{Meta: rec.meta(bucket, key), Explicit: true}
	}
	return br, rec, nil
}

// SetBucketVersioning sets a bucket's versioning to Enabled or Suspended.
// Objects already stored keep their versions; suspending only changes
// what later writes and deletes do.
func (s *Store) SetBucketVersioning(name, status string) error {
	if status != VersioningEnabled && status != VersioningSuspended {
		return fmt.Errorf("%w: versioning status %q", ErrInvalidArgument, status)
	}
	return s.updateBucket(name, func(br *bucketRecord) { br.Versioning = status })
}

// DeleteResult says what a DeleteObject did, for S3's response headers.
type DeleteResult struct {
	// VersionID is the version removed (with a version id) or the delete
	// marker created (without one, in a versioning bucket).
	VersionID string
	// DeleteMarker: a marker was created, or the version removed was one.
	DeleteMarker bool
}

// DeleteObject deletes bucket/key as S3 does. With versionID it removes that
// version for good. Without one it removes the object in a bucket that was
// never versioned, and otherwise adds a delete marker (replacing the null
// version when suspended). A missing key or version is not an error.
func (s *Store) DeleteObject(bucket, key, versionID string) (DeleteResult, error) {
	if err := ValidateKey(key); err != nil {
		return DeleteResult{}, err
	}
	if versionID != "" {
		if err := ValidateVersionID(versionID); err != nil {
			return DeleteResult{}, err
		}
	}
	var br bucketRecord
	var res DeleteResult
	var freed string
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		res, freed = DeleteResult{}, ""
		if br, err = getBucket(tx, bucket); err != nil {
			return err
		}
		vb := versionsOf(tx, br.ID)
		if versionID == "" && br.Versioning != "" {
			marker := objectRecord{DeleteMarker: true, LastModified: time.Now().UTC()}
			if freed, err = putVersion(tx, br, key, &marker); err != nil {
				return err
			}
			res = DeleteResult{VersionID: marker.VersionID, DeleteMarker: true}
			return nil
		}
		id := versionID
		if id == "" {
			id = NullVersion
		}
		vk, rec, found, err := findVersion(vb, key, id)
		if err != nil || !found {
			return err
		}
		if err := removeVersion(tx, br, key, vk); err != nil {
			return err
		}
		if !rec.DeleteMarker {
			freed = rec.FileID
		}
		if versionID != "" {
			res = DeleteResult{VersionID: versionID, DeleteMarker: rec.DeleteMarker}
		}
		return nil
	})
	if err != nil {
		return DeleteResult{}, err
	}
	if freed != "" {
		s.unlink(br.ID, freed)
	}
	return res, nil
}

// VersionListOptions selects a page of ListObjectVersions.
type VersionListOptions struct {
	Prefix, Delimiter string
	// KeyMarker and VersionIDMarker: the listing starts after this
	// version of this key, or after all of the key's versions (or its
	// common prefix's keys) when VersionIDMarker is "".
	KeyMarker, VersionIDMarker string
	MaxKeys                    int // versions, delete markers and prefixes; <= 0 or > 1000 means 1000
}

// VersionListResult is one page of versions (delete markers among them, in
// order: by key, then newest first) and common prefixes.
type VersionListResult struct {
	Versions                           []ObjectMeta
	CommonPrefixes                     []string
	IsTruncated                        bool
	NextKeyMarker, NextVersionIDMarker string // set when IsTruncated
}

// ListVersions returns one page of a bucket's versions, as ListObjects
// does keys: seeks and common-prefix jumps, so a page costs O(page).
func (s *Store) ListVersions(bucket string, o VersionListOptions) (VersionListResult, error) {
	var res VersionListResult
	if o.VersionIDMarker != "" {
		if o.KeyMarker == "" {
			return res, fmt.Errorf("%w: a version-id-marker needs a key-marker", ErrInvalidArgument)
		}
		if err := ValidateVersionID(o.VersionIDMarker); err != nil {
			return res, err
		}
	}
	max := o.MaxKeys
	if max <= 0 || max > MaxListKeys {
		max = MaxListKeys
	}
	if bytes.IndexByte([]byte(o.Prefix), 0) >= 0 {
		return res, nil // no key contains NUL
	}
	prefix := []byte(o.Prefix)
	err := s.db.View(func(tx *bolt.Tx) error {
		br, err := getBucket(tx, bucket)
		if err != nil {
			return err
		}
		vb := versionsOf(tx, br.ID)
		c := vb.Cursor()
		var k, v []byte
		// midKey: the listing starts inside a key's stack, so its first
		// entry is not necessarily the key's newest.
		midKey := false
		switch {
		case o.KeyMarker == "" || o.KeyMarker < o.Prefix:
			k, v = c.Seek(prefix)
		case o.VersionIDMarker != "":
			vk, _, found, err := findVersion(vb, o.KeyMarker, o.VersionIDMarker)
			if err != nil {
				return err
			}
			if !found { // gone since the last page: start after the key
				k, v = c.Seek(append([]byte(o.KeyMarker), 1))
				break
			}
			c.Seek(vk)
			k, v = c.Next()
			midKey = true
		case commonPrefix(o.KeyMarker, o.Prefix, o.Delimiter) == o.KeyMarker:
			k, v = seekPast(c, []byte(o.KeyMarker))
		default:
			k, v = c.Seek(append([]byte(o.KeyMarker), 1))
		}
		n, lastKey, lastVersion := 0, "", ""
		// A version is its key's latest when the entry before it in the
		// stack is another key's (or there is none).
		prevKey, hasPrev := o.KeyMarker, midKey
		for k != nil && bytes.HasPrefix(k, prefix) {
			if n == max {
				res.IsTruncated = true
				break
			}
			key := keyOfVersion(k)
			if cp := commonPrefix(key, o.Prefix, o.Delimiter); cp != "" {
				res.CommonPrefixes = append(res.CommonPrefixes, cp)
				n++
				lastKey, lastVersion = cp, ""
				k, v = seekPast(c, []byte(cp))
				hasPrev = false
				continue
			}
			var rec objectRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("objstore: version of %q: %w", key, err)
			}
			m := rec.meta(bucket, key)
			m.IsLatest = !hasPrev || key != prevKey
			prevKey, hasPrev = key, true
			res.Versions = append(res.Versions, m)
			n++
			lastKey, lastVersion = key, rec.VersionID
			k, v = c.Next()
		}
		if res.IsTruncated {
			res.NextKeyMarker, res.NextVersionIDMarker = lastKey, lastVersion
		}
		return nil
	})
	return res, err
}
