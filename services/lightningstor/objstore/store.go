// Package objstore is LightningSTOR's storage engine: bucket and object
// metadata in bbolt, object bytes in immutable files named by random ids. It
// knows nothing of HTTP or auth, so the S3 front end stays a thin translator.
//
// Layout under the data dir:
//
//	meta.db                          bbolt: "buckets" name→bucket,
//	                                 "versions"/<bucket id>/key NUL ^seq→version (every version),
//	                                 "objects"/<bucket id>/key→current version (none if a delete marker)
//	objects/<bucket id>/<2 hex>/<id> bodies, written once under a fresh name and never modified
//
// A body is written and fsynced under its final name before the metadata
// that names it commits; until then it is an orphan that Open removes. A
// key's text never reaches the file system, so no key can escape the data dir.
package objstore

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Canned ACLs a bucket can carry.
const (
	ACLPrivate    = "private"
	ACLPublicRead = "public-read"
)

// Errors the S3 layer maps to S3 error codes.
var (
	ErrBucketExists       = errors.New("bucket already exists")
	ErrBucketNotFound     = errors.New("no such bucket")
	ErrBucketNotEmpty     = errors.New("bucket not empty")
	ErrNoSuchKey          = errors.New("no such key")
	ErrInvalidBucketName  = errors.New("invalid bucket name")
	ErrKeyTooLong         = errors.New("key too long")
	ErrInvalidKey         = errors.New("invalid key")
	ErrInvalidACL         = errors.New("invalid canned ACL")
	ErrBadDigest          = errors.New("content MD5 does not match the body")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrPreconditionFailed = errors.New("precondition failed")
	ErrClosed             = errors.New("store closed")
	ErrEntityTooLarge     = errors.New("object larger than allowed")
)

// MaxObjectSize is S3's limit on a single PUT (and on a copy).
const MaxObjectSize = 5 << 30

var (
	bktBuckets = []byte("buckets")
	bktObjects = []byte("objects")
)

// Bucket is a bucket's metadata. Names are global across projects, as in S3.
type Bucket struct {
	Name      string
	ProjectID string
	CreatedAt time.Time
	ACL       string // ACLPrivate or ACLPublicRead
	// Versioning is "", VersioningEnabled or VersioningSuspended.
	Versioning string `json:",omitempty"`
}

// bucketRecord adds the random id that names the bucket's data directory, so
// a bucket deleted and re-created under the same name never sees old files.
type bucketRecord struct {
	Bucket
	ID string
}

// ObjectMeta is what HEAD returns about an object.
type ObjectMeta struct {
	Bucket, Key  string
	Size         int64
	ETag         string            // quoted hex MD5, as S3 shows it
	ContentType  string            //
	UserMeta     map[string]string // x-amz-meta-* (names without the prefix)
	Headers      map[string]string // Content-Encoding, Content-Disposition, Cache-Control, Content-Language, Expires
	Tags         map[string]string // the object's tag set
	LastModified time.Time
	VersionID    string // NullVersion unless written while versioning was Enabled
	DeleteMarker bool   // only in version listings and DeleteMarkerError
	IsLatest     bool   // only in version listings
}

// objectRecord is the stored form of a version; FileID names the body file
// (none for a delete marker).
type objectRecord struct {
	FileID       string            `json:"f,omitempty"`
	VersionID    string            `json:"v,omitempty"`
	DeleteMarker bool              `json:"d,omitempty"`
	Size         int64             `json:"s"`
	ETag         string            `json:"e"`
	ContentType  string            `json:"t,omitempty"`
	UserMeta     map[string]string `json:"u,omitempty"`
	Headers      map[string]string `json:"h,omitempty"`
	Tags         map[string]string `json:"g,omitempty"`
	LastModified time.Time         `json:"m"`
}

func (r objectRecord) meta(bucket, key string) ObjectMeta {
	return ObjectMeta{Bucket: bucket, Key: key, Size: r.Size, ETag: r.ETag, ContentType: r.ContentType,
		UserMeta: copyMap(r.UserMeta), Headers: copyMap(r.Headers), Tags: copyMap(r.Tags), LastModified: r.LastModified,
		VersionID: r.VersionID, DeleteMarker: r.DeleteMarker}
}

// Store is one node's object store. It is safe for concurrent use.
type Store struct {
	dir string
	db  *bolt.DB

	// unlinkMu orders "read metadata, then open its file" (readers, shared)
	// against "unlink a file the committed metadata no longer names"
	// (exclusive), so a reader never finds its file already gone.
	unlinkMu sync.RWMutex
}

// Open opens (creating if needed) the store in dir and repairs what a crash
// can leave: temp files of unfinished PUTs and body files no metadata names.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "objects"), 0o700); err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("objstore: open meta.db: %w", err)
	}
	// Concurrent PUTs commit together (one fsync for all of them); a
	// lone PUT waits at most this long for company.
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(initMeta)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("objstore: init meta.db: %w", err)
	}
	s := &Store{dir: dir, db: db}
	if err := s.collectGarbage(); err != nil {
		db.Close()
		return nil, fmt.Errorf("objstore: recover: %w", err)
	}
	return s, nil
}

// initMeta creates the top-level bbolt buckets, and the version stack of a
// bucket made before versions were kept: its objects become null versions.
func initMeta(tx *bolt.Tx) error {
	for _, name := range [][]byte{bktBuckets, bktObjects, bktVersions} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return forEachBucket(tx, func(br bucketRecord) error {
		if versionsOf(tx, br.ID) != nil {
			return nil
		}
		vb, err := tx.Bucket(bktVersions).CreateBucket([]byte(br.ID))
		if err != nil {
			return err
		}
		return objectsOf(tx, br.ID).ForEach(func(k, v []byte) error {
			var rec objectRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			rec.VersionID = NullVersion
			seq, err := vb.NextSequence()
			if err != nil {
				return err
			}
			if err := putJSON(vb, versionKey(string(k), seq), rec); err != nil {
				return err
			}
			return putJSON(objectsOf(tx, br.ID), k, rec)
		})
	})
}

// Close releases the metadata database. Open files from GetObject stay valid.
func (s *Store) Close() error { return s.db.Close() }

// collectGarbage removes body files that no version names (left by a crash
// before their commit or before an unlink), and directories of buckets that
// no longer exist. It runs before the store is shared, so nothing races it.
func (s *Store) collectGarbage() error {
	live := map[string]map[string]bool{} // bucket id → file ids
	err := s.db.View(func(tx *bolt.Tx) error {
		return forEachBucket(tx, func(br bucketRecord) error {
			ids := map[string]bool{}
			live[br.ID] = ids
			return versionsOf(tx, br.ID).ForEach(func(_, v []byte) error {
				var r objectRecord
				if err := json.Unmarshal(v, &r); err != nil {
					return err
				}
				ids[r.FileID] = true
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	root := filepath.Join(s.dir, "objects")
	bdirs, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	var removed int
	for _, bd := range bdirs {
		ids, ok := live[bd.Name()]
		if !ok {
			if err := os.RemoveAll(filepath.Join(root, bd.Name())); err != nil {
				return err
			}
			removed++
			continue
		}
		subs, err := os.ReadDir(filepath.Join(root, bd.Name()))
		if err != nil {
			return err
		}
		for _, sub := range subs {
			n, err := removeContents(filepath.Join(root, bd.Name(), sub.Name()), ids)
			if err != nil {
				return err
			}
			removed += n
		}
	}
	if removed > 0 {
		slog.Info("objstore: removed leftovers after unclean shutdown", "dir", s.dir, "count", removed)
	}
	return nil
}

// removeContents deletes every entry of dir whose name is not in keep.
func removeContents(dir string, keep map[string]bool) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if keep[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// CreateBucket creates a bucket owned by project. Names are global.
func (s *Store) CreateBucket(name, project, acl string) (Bucket, error) {
	if err := ValidateBucketName(name); err != nil {
		return Bucket{}, err
	}
	acl, err := validateACL(acl)
	if err != nil {
		return Bucket{}, err
	}
	br := bucketRecord{
		Bucket: Bucket{Name: name, ProjectID: project, CreatedAt: time.Now().UTC(), ACL: acl},
		ID:     newID(),
	}
	// The directory comes first: a crash before the commit leaves only an
	// empty directory that Open removes.
	bdir := filepath.Join(s.dir, "objects", br.ID)
	if err := os.MkdirAll(bdir, 0o700); err != nil {
		return Bucket{}, err
	}
	if err := syncDir(filepath.Join(s.dir, "objects")); err != nil {
		return Bucket{}, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		bb := tx.Bucket(bktBuckets)
		if bb.Get([]byte(name)) != nil {
			return fmt.Errorf("%w: %s", ErrBucketExists, name)
		}
		if _, err := tx.Bucket(bktObjects).CreateBucket([]byte(br.ID)); err != nil {
			return err
		}
		if _, err := tx.Bucket(bktVersions).CreateBucket([]byte(br.ID)); err != nil {
			return err
		}
		return putJSON(bb, []byte(name), br)
	})
	if err != nil {
		os.RemoveAll(bdir)
		return Bucket{}, err
	}
	return br.Bucket, nil
}

// Bucket returns a bucket's metadata.
func (s *Store) Bucket(name string) (Bucket, error) {
	var br bucketRecord
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		br, err = getBucket(tx, name)
		return err
	})
	return br.Bucket, err
}

// DeleteBucket deletes a bucket with no versions left (delete markers
// count, as in S3).
func (s *Store) DeleteBucket(name string) error {
	var br bucketRecord
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		if br, err = getBucket(tx, name); err != nil {
			return err
		}
		if k, _ := versionsOf(tx, br.ID).Cursor().First(); k != nil {
			return fmt.Errorf("%w: %s", ErrBucketNotEmpty, name)
		}
		if err := tx.Bucket(bktObjects).DeleteBucket([]byte(br.ID)); err != nil {
			return err
		}
		if err := tx.Bucket(bktVersions).DeleteBucket([]byte(br.ID)); err != nil {
			return err
		}
		return tx.Bucket(bktBuckets).Delete([]byte(name))
	})
	if err != nil {
		return err
	}
	// Only bodies of PUTs that will now fail can be left; Open would also
	// remove the directory if this does not.
	return os.RemoveAll(filepath.Join(s.dir, "objects", br.ID))
}

// ListBuckets returns a project's buckets sorted by name.
func (s *Store) ListBuckets(project string) ([]Bucket, error) {
	var out []Bucket
	err := s.db.View(func(tx *bolt.Tx) error {
		return forEachBucket(tx, func(br bucketRecord) error {
			if br.ProjectID == project {
				out = append(out, br.Bucket)
			}
			return nil
		})
	})
	return out, err // bbolt iterates in key (= name) order
}

// SetBucketACL replaces a bucket's canned ACL.
func (s *Store) SetBucketACL(name, acl string) error {
	acl, err := validateACL(acl)
	if err != nil {
		return err
	}
	return s.updateBucket(name, func(br *bucketRecord) { br.ACL = acl })
}

// updateBucket changes a bucket's record in one transaction.
func (s *Store) updateBucket(name string, change func(*bucketRecord)) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		br, err := getBucket(tx, name)
		if err != nil {
			return err
		}
		change(&br)
		return putJSON(tx.Bucket(bktBuckets), []byte(name), br)
	})
}

// PutObject stores r's bytes as bucket/key. The body streams (hashed on the
// way) into a file under a fresh name that is fsynced before the bbolt
// transaction that records it commits, so a crash leaves the old object or
// the new one. If r fails, nothing changes.
func (s *Store) PutObject(bucket, key string, r io.Reader, meta ObjectMeta, wantMD5 []byte) (ObjectMeta, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectMeta{}, err
	}
	br, err := s.lookupBucket(bucket)
	if err != nil {
		return ObjectMeta{}, err
	}
	rec := objectRecord{FileID: newID(), ContentType: meta.ContentType,
		UserMeta: copyMap(meta.UserMeta), Headers: copyMap(meta.Headers), Tags: copyMap(meta.Tags)}
	f, err := s.createBody(br, rec.FileID)
	if err != nil {
		return ObjectMeta{}, err
	}
	h := md5.New()
	// One byte past the limit tells a too-large body from one at it.
	n, err := copyBody(io.MultiWriter(f, h), io.LimitReader(r, MaxObjectSize+1))
	if err == nil && n > MaxObjectSize {
		err = ErrEntityTooLarge
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		if errors.Is(err, ErrEntityTooLarge) {
			return ObjectMeta{}, err
		}
		return ObjectMeta{}, fmt.Errorf("objstore: write body: %w", err)
	}
	sum := h.Sum(nil)
	if wantMD5 != nil && !bytes.Equal(sum, wantMD5) {
		os.Remove(f.Name())
		return ObjectMeta{}, ErrBadDigest
	}
	rec.Size, rec.ETag = n, `"`+hex.EncodeToString(sum)+`"`
	return s.commit(br, key, rec, nil)
}

// commit records rec, whose body file is written and fsynced under its
// fresh name, as key's newest version, then unlinks the body that version
// replaced (a null version's, outside Enabled). extra runs in the same
// transaction (multipart completion ends its upload there).
//
// Only the directory fsync that makes the file's name durable comes first,
// outside bbolt's single writer lock, so concurrent PUTs serialize only on
// the metadata commit, and bbolt's Batch gives them one fsync between them.
// Until the commit no metadata names the file, so a crash leaves an orphan
// that Open collects. On failure the file is removed.
func (s *Store) commit(br bucketRecord, key string, rec objectRecord, extra func(*bolt.Tx) error) (ObjectMeta, error) {
	path := s.objectPath(br.ID, rec.FileID)
	if err := syncDir(filepath.Dir(path)); err != nil {
		os.Remove(path)
		return ObjectMeta{}, fmt.Errorf("objstore: %w", err)
	}
	var freed string
	var out objectRecord
	// Batch: the function may run again (alone) if a batch it was in
	// fails, and it is written to give the same result when it does.
	err := s.db.Batch(func(tx *bolt.Tx) (err error) {
		cur, err := getBucket(tx, br.Name)
		if err != nil {
			return err
		}
		if cur.ID != br.ID { // deleted and re-created while we streamed
			return fmt.Errorf("%w: %s", ErrBucketNotFound, br.Name)
		}
		out = rec
		// Stamped under the writer lock so LastModified follows commit order.
		out.LastModified = time.Now().UTC()
		if freed, err = putVersion(tx, cur, key, &out); err != nil {
			return err
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return ObjectMeta{}, err
	}
	if freed != "" {
		s.unlink(br.ID, freed)
	}
	return out.meta(br.Name, key), nil
}

// HeadObject returns the metadata of an object's current version, or of
// the version versionID when that is not "".
func (s *Store) HeadObject(bucket, key, versionID string) (ObjectMeta, error) {
	if err := validateRead(key, versionID); err != nil {
		return ObjectMeta{}, err
	}
	var rec objectRecord
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		_, rec, err = readVersion(tx, bucket, key, versionID)
		return err
	})
	if err != nil {
		return ObjectMeta{}, err
	}
	return rec.meta(bucket, key), nil
}

// GetObject returns an object's (or its version versionID's) metadata and
// its open body file; the caller closes it. The file stays readable even if
// the key is overwritten or deleted meanwhile, because committed files are
// immutable and unlinking an open file keeps its data.
func (s *Store) GetObject(bucket, key, versionID string) (ObjectMeta, *os.File, error) {
	if err := validateRead(key, versionID); err != nil {
		return ObjectMeta{}, nil, err
	}
	s.unlinkMu.RLock()
	defer s.unlinkMu.RUnlock()
	var br bucketRecord
	var rec objectRecord
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		br, rec, err = readVersion(tx, bucket, key, versionID)
		return err
	})
	if err != nil {
		return ObjectMeta{}, nil, err
	}
	f, err := os.Open(s.objectPath(br.ID, rec.FileID))
	if err != nil {
		return ObjectMeta{}, nil, fmt.Errorf("objstore: body of %s/%s: %w", bucket, key, err)
	}
	return rec.meta(bucket, key), f, nil
}

// validateRead checks a read's key and optional version id.
func validateRead(key, versionID string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if versionID != "" {
		return ValidateVersionID(versionID)
	}
	return nil
}

// CopyObject copies src (its current version, or srcVersion) to dst. With
// meta nil the source's content type, user metadata and headers are copied
// (S3's COPY directive); otherwise those three come from meta (REPLACE).
// Bodies are immutable, so the copy is a hard link, falling back to a byte
// copy where linking fails.
func (s *Store) CopyObject(srcBucket, srcKey, srcVersion, dstBucket, dstKey string, meta *ObjectMeta) (ObjectMeta, error) {
	if err := validateRead(srcKey, srcVersion); err != nil {
		return ObjectMeta{}, err
	}
	if err := ValidateKey(dstKey); err != nil {
		return ObjectMeta{}, err
	}
	dst, err := s.lookupBucket(dstBucket)
	if err != nil {
		return ObjectMeta{}, err
	}
	rec := objectRecord{FileID: newID()}
	if err := s.ensureShardDir(dst, rec.FileID); err != nil {
		return ObjectMeta{}, err
	}
	srcMeta, err := s.linkBody(srcBucket, srcKey, srcVersion, s.objectPath(dst.ID, rec.FileID))
	if err != nil {
		return ObjectMeta{}, err
	}
	rec.Size, rec.ETag, rec.ContentType = srcMeta.Size, srcMeta.ETag, srcMeta.ContentType
	rec.UserMeta, rec.Headers, rec.Tags = srcMeta.UserMeta, srcMeta.Headers, srcMeta.Tags
	if meta != nil {
		rec.ContentType, rec.UserMeta, rec.Headers = meta.ContentType, copyMap(meta.UserMeta), copyMap(meta.Headers)
		if meta.Tags != nil {
			rec.Tags = copyMap(meta.Tags)
		}
	}
	return s.commit(dst, dstKey, rec, nil)
}

// linkBody makes path a hard link to (or, where linking fails, a copy of) the
// body of bucket/key, holding unlinkMu so the body cannot vanish between
// reading the metadata and linking it.
func (s *Store) linkBody(bucket, key, versionID, path string) (ObjectMeta, error) {
	s.unlinkMu.RLock()
	defer s.unlinkMu.RUnlock()
	var br bucketRecord
	var rec objectRecord
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		br, rec, err = readVersion(tx, bucket, key, versionID)
		return err
	})
	if err != nil {
		return ObjectMeta{}, err
	}
	src := s.objectPath(br.ID, rec.FileID)
	if err := os.Link(src, path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(filepath.Dir(path)); serr != nil {
				return ObjectMeta{}, fmt.Errorf("%w: bucket directory gone", ErrBucketNotFound)
			}
		}
		if err := copyFile(src, path); err != nil {
			os.Remove(path)
			return ObjectMeta{}, fmt.Errorf("objstore: copy body: %w", err)
		}
	}
	return rec.meta(bucket, key), nil
}

func copyFile(srcPath, path string) error {
	src, err := os.Open(srcPath)
	if err != nil {
		return err
	}
	defer src.Close()
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, src)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *Store) lookupBucket(name string) (bucketRecord, error) {
	var br bucketRecord
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		br, err = getBucket(tx, name)
		return err
	})
	return br, err
}

// createBody creates the body file fileID under its final name.
func (s *Store) createBody(br bucketRecord, fileID string) (*os.File, error) {
	if err := s.ensureShardDir(br, fileID); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.objectPath(br.ID, fileID), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrBucketNotFound, br.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("objstore: body file: %w", err)
	}
	return f, nil
}

func (s *Store) objectPath(bucketID, fileID string) string {
	return filepath.Join(s.dir, "objects", bucketID, fileID[:2], fileID)
}

// ensureShardDir creates the <2 hex> directory durably the first time.
func (s *Store) ensureShardDir(br bucketRecord, fileID string) error {
	d := filepath.Join(s.dir, "objects", br.ID, fileID[:2])
	err := os.Mkdir(d, 0o700)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if errors.Is(err, os.ErrNotExist) { // the bucket was deleted
		return fmt.Errorf("%w: %s", ErrBucketNotFound, br.Name)
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(d))
}

// unlink removes a body the committed metadata no longer names. A failure
// only leaves an orphan that the next Open collects.
func (s *Store) unlink(bucketID, fileID string) {
	s.unlinkMu.Lock()
	defer s.unlinkMu.Unlock()
	if err := os.Remove(s.objectPath(bucketID, fileID)); err != nil {
		slog.Warn("objstore: remove replaced body", "err", err)
	}
}

// forEachBucket calls fn with every bucket's record, in name order.
func forEachBucket(tx *bolt.Tx, fn func(bucketRecord) error) error {
	return tx.Bucket(bktBuckets).ForEach(func(_, v []byte) error {
		var br bucketRecord
		if err := json.Unmarshal(v, &br); err != nil {
			return err
		}
		return fn(br)
	})
}

func getBucket(tx *bolt.Tx, name string) (bucketRecord, error) {
	var br bucketRecord
	v := tx.Bucket(bktBuckets).Get([]byte(name))
	if v == nil {
		return br, fmt.Errorf("%w: %s", ErrBucketNotFound, name)
	}
	err := json.Unmarshal(v, &br)
	return br, err
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// SetObjectTags replaces the tag set (nil or empty removes it) of an
// object's current version, or of its version versionID when that is not
// "". The body and the rest of the metadata stay.
func (s *Store) SetObjectTags(bucket, key, versionID string, tags map[string]string) (ObjectMeta, error) {
	if err := validateRead(key, versionID); err != nil {
		return ObjectMeta{}, err
	}
	var rec objectRecord
	err := s.db.Update(func(tx *bolt.Tx) error {
		var br bucketRecord
		var err error
		br, rec, err = readVersion(tx, bucket, key, versionID)
		if err != nil {
			return err
		}
		rec.Tags = copyMap(tags)
		vk, _, found, err := findVersion(versionsOf(tx, br.ID), key, rec.VersionID)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("objstore: %s/%s: version %s missing from its stack", bucket, key, rec.VersionID)
		}
		if err := putJSON(versionsOf(tx, br.ID), vk, rec); err != nil {
			return err
		}
		// The index holds a copy of the current version.
		ob := objectsOf(tx, br.ID)
		if v := ob.Get([]byte(key)); v != nil {
			var cur objectRecord
			if err := json.Unmarshal(v, &cur); err != nil {
				return err
			}
			if cur.VersionID == rec.VersionID {
				return putJSON(ob, []byte(key), rec)
			}
		}
		return nil
	})
	return rec.meta(bucket, key), err
}

// bodyBufs are the buffers bodies are copied with: 1 MiB, so a body is
// written (and hashed) in few large calls instead of io.Copy's 32 KiB
// ones, and pooled, so a busy server does not allocate one per request.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// copyBody copies r to w through a pooled 1 MiB buffer.
func copyBody(w io.Writer, r io.Reader) (int64, error) {
	b := bodyBufs.Get().(*[]byte)
	defer bodyBufs.Put(b)
	return io.CopyBuffer(w, r, *b)
}
