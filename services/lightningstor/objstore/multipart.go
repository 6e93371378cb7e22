package objstore

// Multipart uploads.
//
// Layout (in addition to store.go's):
//
//	meta.db  "uploads"/<bucket id>/<key>\x00<upload id> → uploadRecord
//	         "parts"/<upload id>/<part number, 4 bytes BE> → partRecord
//	multipart/<bucket id>/<upload id>/<file id>            part bodies
//
// Part files live outside objects/ because Open's garbage collection
// removes everything there that no object names; uploads must survive a
// restart. Upload ids are validated hex before they name a directory, and
// keys never name files. Metadata is keyed by the bucket's id, so deleting a
// bucket (allowed with uploads in progress, as in S3) makes its uploads
// unreachable at once; SweepUploads then removes their records and files.

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Limits of S3's multipart uploads.
const (
	MinPartSize    = 5 << 20 // every part but the last
	MaxPartNumber  = 10000
	MaxListParts   = 1000
	MaxListUploads = 1000
)

// Errors of multipart uploads.
var (
	ErrNoSuchUpload     = errors.New("no such upload")
	ErrInvalidPart      = errors.New("invalid part")
	ErrInvalidPartOrder = errors.New("parts not in ascending order")
	ErrEntityTooSmall   = errors.New("part too small")
)

var (
	bktUploads = []byte("uploads")
	bktParts   = []byte("parts")
)

// Upload is a multipart upload in progress.
type Upload struct {
	Bucket, Key, UploadID string
	Initiated             time.Time
	// Meta holds the final object's ContentType, UserMeta and Headers,
	// taken when the upload was created.
	Meta ObjectMeta
}

// Part is an uploaded part.
type Part struct {
	Number       int
	ETag         string // quoted hex MD5
	Size         int64
	LastModified time.Time
}

// CompletePart is one entry of CompleteMultipartUpload's list.
type CompletePart struct {
	Number int
	ETag   string // quoted or not
}

type uploadRecord struct {
	Initiated   time.Time         `json:"i"`
	ContentType string            `json:"t,omitempty"`
	UserMeta    map[string]string `json:"u,omitempty"`
	Headers     map[string]string `json:"h,omitempty"`
	Tags        map[string]string `json:"g,omitempty"`
}

type partRecord struct {
	FileID       string    `json:"f"`
	Size         int64     `json:"s"`
	ETag         string    `json:"e"`
	LastModified time.Time `json:"m"`
}

func uploadKey(key, id string) []byte { return []byte(key + "\x00" + id) }

func partKey(n int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }

// newUploadID is time-ordered (nanoseconds first), so a key's uploads list
// in the order they were initiated, as S3 lists them.
func newUploadID() string {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(time.Now().UnixNano()))
	return hex.EncodeToString(ts[:]) + newID()[:16]
}

// validUploadID keeps anything but our own ids out of file paths.
func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

func (s *Store) uploadDir(bucketID, uploadID string) string {
	return filepath.Join(s.dir, "multipart", bucketID, uploadID)
}

func (r uploadRecord) upload(bucket, key, id string) Upload {
	return Upload{Bucket: bucket, Key: key, UploadID: id, Initiated: r.Initiated,
		Meta: ObjectMeta{Bucket: bucket, Key: key, ContentType: r.ContentType, UserMeta: copyMap(r.UserMeta), Headers: copyMap(r.Headers)}}
}

// CreateUpload starts a multipart upload of bucket/key; meta's ContentType,
// UserMeta and Headers become the final object's.
func (s *Store) CreateUpload(bucket, key string, meta ObjectMeta) (Upload, error) {
	if err := ValidateKey(key); err != nil {
		return Upload{}, err
	}
	id := newUploadID()
	rec := uploadRecord{Initiated: time.Now().UTC(), ContentType: meta.ContentType,
		UserMeta: copyMap(meta.UserMeta), Headers: copyMap(meta.Headers), Tags: copyMap(meta.Tags)}
	err := s.db.Update(func(tx *bolt.Tx) error {
		br, err := getBucket(tx, bucket)
		if err != nil {
			return err
		}
		ub, err := uploadsOf(tx, br.ID, true)
		if err != nil {
			return err
		}
		return putJSON(ub, uploadKey(key, id), rec)
	})
	if err != nil {
		return Upload{}, err
	}
	return rec.upload(bucket, key, id), nil
}

// uploadsOf is the bucket id's uploads, created if create is set; nil if
// there are none and create is not set.
func uploadsOf(tx *bolt.Tx, bucketID string, create bool) (*bolt.Bucket, error) {
	if !create {
		top := tx.Bucket(bktUploads)
		if top == nil {
			return nil, nil
		}
		return top.Bucket([]byte(bucketID)), nil
	}
	top, err := tx.CreateBucketIfNotExists(bktUploads)
	if err != nil {
		return nil, err
	}
	return top.CreateBucketIfNotExists([]byte(bucketID))
}

// getUpload finds bucket/key's upload id in tx.
func getUpload(tx *bolt.Tx, bucket, key, id string) (bucketRecord, uploadRecord, error) {
	var rec uploadRecord
	br, err := getBucket(tx, bucket)
	if err != nil {
		return br, rec, err
	}
	if !validUploadID(id) {
		return br, rec, fmt.Errorf("%w: %s", ErrNoSuchUpload, id)
	}
	ub, _ := uploadsOf(tx, br.ID, false)
	if ub == nil {
		return br, rec, fmt.Errorf("%w: %s", ErrNoSuchUpload, id)
	}
	v := ub.Get(uploadKey(key, id))
	if v == nil {
		return br, rec, fmt.Errorf("%w: %s", ErrNoSuchUpload, id)
	}
	err = json.Unmarshal(v, &rec)
	return br, rec, err
}

// Upload returns an upload in progress.
func (s *Store) Upload(bucket, key, uploadID string) (Upload, error) {
	var rec uploadRecord
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		_, rec, err = getUpload(tx, bucket, key, uploadID)
		return err
	})
	if err != nil {
		return Upload{}, err
	}
	return rec.upload(bucket, key, uploadID), nil
}

// PutPart stores r's bytes as part n of an upload, replacing an earlier
// part n. The body streams to a fresh file in the upload's directory,
// fsynced before the metadata that names it commits.
func (s *Store) PutPart(bucket, key, uploadID string, n int, r io.Reader, wantMD5 []byte) (Part, error) {
	if n < 1 || n > MaxPartNumber {
		return Part{}, fmt.Errorf("%w: part number %d not in 1..%d", ErrInvalidArgument, n, MaxPartNumber)
	}
	var br bucketRecord
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		br, _, err = getUpload(tx, bucket, key, uploadID)
		return err
	})
	if err != nil {
		return Part{}, err
	}
	dir := s.uploadDir(br.ID, uploadID)
	if err := s.ensureUploadDir(dir); err != nil {
		return Part{}, err
	}
	rec := partRecord{FileID: newID()}
	path := filepath.Join(dir, rec.FileID)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) { // aborted meanwhile
			return Part{}, fmt.Errorf("%w: %s", ErrNoSuchUpload, uploadID)
		}
		return Part{}, fmt.Errorf("objstore: part file: %w", err)
	}
	h := md5.New()
	rec.Size, err = copyBody(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(path)
		return Part{}, fmt.Errorf("objstore: write part: %w", err)
	}
	sum := h.Sum(nil)
	if wantMD5 != nil && !bytes.Equal(sum, wantMD5) {
		os.Remove(path)
		return Part{}, ErrBadDigest
	}
	rec.ETag = `"` + hex.EncodeToString(sum) + `"`
	var old string
	err = s.db.Update(func(tx *bolt.Tx) error {
		cur, _, err := getUpload(tx, bucket, key, uploadID)
		if err != nil {
			return err
		}
		if cur.ID != br.ID {
			return fmt.Errorf("%w: %s", ErrNoSuchUpload, uploadID)
		}
		top, err := tx.CreateBucketIfNotExists(bktParts)
		if err != nil {
			return err
		}
		pb, err := top.CreateBucketIfNotExists([]byte(uploadID))
		if err != nil {
			return err
		}
		if v := pb.Get(partKey(n)); v != nil {
			var prev partRecord
			if err := json.Unmarshal(v, &prev); err != nil {
				return err
			}
			old = prev.FileID
		}
		rec.LastModified = time.Now().UTC()
		return putJSON(pb, partKey(n), rec)
	})
	if err != nil {
		os.Remove(path)
		return Part{}, err
	}
	if old != "" {
		// A completion reading the old file meanwhile sees it vanish
		// and answers InvalidPart: the part it was asked for is gone.
		if err := os.Remove(filepath.Join(dir, old)); err != nil {
			slog.Warn("objstore: remove replaced part", "err", err)
		}
	}
	return Part{Number: n, ETag: rec.ETag, Size: rec.Size, LastModified: rec.LastModified}, nil
}

// ensureUploadDir creates an upload's directory (and its bucket's) durably.
func (s *Store) ensureUploadDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("objstore: %w", err)
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("objstore: %w", err)
		}
		if d == s.dir {
			return nil
		}
	}
}

// PartList is one page of ListParts.
type PartList struct {
	Upload               Upload
	Parts                []Part
	IsTruncated          bool
	NextPartNumberMarker int
}

// ListParts lists an upload's parts after marker, at most max (<= 0 or
// > 1000 means 1000).
func (s *Store) ListParts(bucket, key, uploadID string, marker, max int) (PartList, error) {
	if max <= 0 || max > MaxListParts {
		max = MaxListParts
	}
	var out PartList
	err := s.db.View(func(tx *bolt.Tx) error {
		_, rec, err := getUpload(tx, bucket, key, uploadID)
		if err != nil {
			return err
		}
		out.Upload = rec.upload(bucket, key, uploadID)
		pb := partsOf(tx, uploadID)
		if pb == nil {
			return nil
		}
		c := pb.Cursor()
		for k, v := c.Seek(partKey(marker + 1)); k != nil; k, v = c.Next() {
			if len(out.Parts) == max {
				out.IsTruncated = true
				out.NextPartNumberMarker = out.Parts[len(out.Parts)-1].Number
				break
			}
			var pr partRecord
			if err := json.Unmarshal(v, &pr); err != nil {
				return err
			}
			out.Parts = append(out.Parts, Part{Number: int(binary.BigEndian.Uint32(k)), ETag: pr.ETag, Size: pr.Size, LastModified: pr.LastModified})
		}
		return nil
	})
	return out, err
}

func partsOf(tx *bolt.Tx, uploadID string) *bolt.Bucket {
	top := tx.Bucket(bktParts)
	if top == nil {
		return nil
	}
	return top.Bucket([]byte(uploadID))
}

// CompleteUpload assembles the listed parts into bucket/key: parts must
// ascend, exist with the given ETags, and all but the last be at least
// MinPartSize. The bytes stream into one body file that is fsynced and
// committed like PutObject's, in the same transaction that ends the
// upload, so a crash leaves the old object (and the upload) or the new one.
// The ETag is S3's: the MD5 of the parts' binary MD5s, "-" and the count.
func (s *Store) CompleteUpload(bucket, key, uploadID string, list []CompletePart) (ObjectMeta, error) {
	if len(list) == 0 {
		return ObjectMeta{}, fmt.Errorf("%w: no parts", ErrInvalidPart)
	}
	for i := range list {
		if list[i].Number < 1 || list[i].Number > MaxPartNumber {
			return ObjectMeta{}, fmt.Errorf("%w: part number %d", ErrInvalidPart, list[i].Number)
		}
		if i > 0 && list[i].Number <= list[i-1].Number {
			return ObjectMeta{}, ErrInvalidPartOrder
		}
	}
	br, urec, used, err := s.checkParts(bucket, key, uploadID, list)
	if err != nil {
		return ObjectMeta{}, err
	}
	obj := objectRecord{FileID: newID(), ContentType: urec.ContentType, UserMeta: urec.UserMeta, Headers: urec.Headers, Tags: urec.Tags}
	body, err := s.createBody(br, obj.FileID)
	if err != nil {
		return ObjectMeta{}, err
	}
	etags := md5.New()
	var size int64
	for i := range used {
		// One part file open at a time: 10,000 at once would exceed
		// the process's file limit.
		n, err := s.appendPart(body, br.ID, uploadID, used[i])
		if errors.Is(err, os.ErrNotExist) {
			// Aborted, or the part re-uploaded, since checkParts.
			if _, uerr := s.Upload(bucket, key, uploadID); uerr != nil {
				err = uerr
			} else {
				err = fmt.Errorf("%w: part %d changed during completion", ErrInvalidPart, list[i].Number)
			}
		} else if err == nil && n != used[i].Size {
			err = fmt.Errorf("objstore: part %d has %d bytes, want %d", list[i].Number, n, used[i].Size)
		}
		if err != nil {
			body.Close()
			os.Remove(body.Name())
			return ObjectMeta{}, err
		}
		size += n
		sum, _ := hex.DecodeString(strings.Trim(used[i].ETag, `"`))
		etags.Write(sum)
	}
	err = body.Sync()
	if cerr := body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(body.Name())
		return ObjectMeta{}, fmt.Errorf("objstore: assemble: %w", err)
	}
	obj.Size, obj.ETag = size, fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(etags.Sum(nil)), len(list))
	m, err := s.commit(br, key, obj, func(tx *bolt.Tx) error {
		cur, _, err := getUpload(tx, bucket, key, uploadID)
		if err != nil {
			return err
		}
		if cur.ID != br.ID {
			return fmt.Errorf("%w: %s", ErrNoSuchUpload, uploadID)
		}
		// A part re-uploaded while we assembled: the listed ETag may
		// no longer be what we read.
		pb := partsOf(tx, uploadID)
		for i, p := range list {
			var pr partRecord
			if pb == nil || json.Unmarshal(pb.Get(partKey(p.Number)), &pr) != nil || pr.FileID != used[i].FileID {
				return fmt.Errorf("%w: part %d changed during completion", ErrInvalidPart, p.Number)
			}
		}
		return deleteUploadTx(tx, br.ID, key, uploadID)
	})
	if err != nil {
		return ObjectMeta{}, err
	}
	s.removeUploadDir(br.ID, uploadID)
	return m, nil
}

// appendPart copies a part file's bytes to w.
func (s *Store) appendPart(w io.Writer, bucketID, uploadID string, p partRecord) (int64, error) {
	f, err := os.Open(filepath.Join(s.uploadDir(bucketID, uploadID), p.FileID))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return n, fmt.Errorf("objstore: assemble: %w", err)
	}
	return n, nil
}

// checkParts checks the listed parts against the upload's records.
func (s *Store) checkParts(bucket, key, uploadID string, list []CompletePart) (bucketRecord, uploadRecord, []partRecord, error) {
	var br bucketRecord
	var urec uploadRecord
	used := make([]partRecord, len(list))
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		if br, urec, err = getUpload(tx, bucket, key, uploadID); err != nil {
			return err
		}
		pb := partsOf(tx, uploadID)
		for i, p := range list {
			var v []byte
			if pb != nil {
				v = pb.Get(partKey(p.Number))
			}
			if v == nil {
				return fmt.Errorf("%w: part %d was not uploaded", ErrInvalidPart, p.Number)
			}
			if err := json.Unmarshal(v, &used[i]); err != nil {
				return err
			}
			if strings.Trim(p.ETag, `"`) != strings.Trim(used[i].ETag, `"`) {
				return fmt.Errorf("%w: part %d has ETag %s, not %s", ErrInvalidPart, p.Number, used[i].ETag, p.ETag)
			}
			if i < len(list)-1 && used[i].Size < MinPartSize {
				return fmt.Errorf("%w: part %d has %d bytes, below the minimum %d", ErrEntityTooSmall, p.Number, used[i].Size, MinPartSize)
			}
		}
		return nil
	})
	if err != nil {
		return br, urec, nil, err
	}
	return br, urec, used, nil
}

// deleteUploadTx removes an upload's records.
func deleteUploadTx(tx *bolt.Tx, bucketID, key, uploadID string) error {
	if ub, _ := uploadsOf(tx, bucketID, false); ub != nil {
		if err := ub.Delete(uploadKey(key, uploadID)); err != nil {
			return err
		}
	}
	if top := tx.Bucket(bktParts); top != nil && top.Bucket([]byte(uploadID)) != nil {
		return top.DeleteBucket([]byte(uploadID))
	}
	return nil
}

// removeUploadDir deletes an ended upload's part files. A failure leaves
// only files that SweepUploads removes later.
func (s *Store) removeUploadDir(bucketID, uploadID string) {
	if err := os.RemoveAll(s.uploadDir(bucketID, uploadID)); err != nil {
		slog.Warn("objstore: remove upload's parts", "err", err)
	}
}

// AbortUpload ends an upload and removes its parts.
func (s *Store) AbortUpload(bucket, key, uploadID string) error {
	var br bucketRecord
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		if br, _, err = getUpload(tx, bucket, key, uploadID); err != nil {
			return err
		}
		return deleteUploadTx(tx, br.ID, key, uploadID)
	})
	if err != nil {
		return err
	}
	s.removeUploadDir(br.ID, uploadID)
	return nil
}

// UploadListOptions selects a page of ListMultipartUploads.
type UploadListOptions struct {
	Prefix, Delimiter string
	// KeyMarker and UploadIDMarker: the listing starts after the upload
	// (KeyMarker, UploadIDMarker), or after every upload of KeyMarker
	// when UploadIDMarker is "".
	KeyMarker, UploadIDMarker string
	// MaxUploads counts uploads and common prefixes; <= 0 or > 1000 means 1000.
	MaxUploads int
}

// UploadList is one page of uploads, by key and then initiation.
type UploadList struct {
	Uploads                           []Upload
	CommonPrefixes                    []string
	IsTruncated                       bool
	NextKeyMarker, NextUploadIDMarker string
}

// ListUploads lists a bucket's uploads in progress.
func (s *Store) ListUploads(bucket string, o UploadListOptions) (UploadList, error) {
	max := o.MaxUploads
	if max <= 0 || max > MaxListUploads {
		max = MaxListUploads
	}
	var out UploadList
	err := s.db.View(func(tx *bolt.Tx) error {
		br, err := getBucket(tx, bucket)
		if err != nil {
			return err
		}
		ub, _ := uploadsOf(tx, br.ID, false)
		if ub == nil {
			return nil
		}
		c := ub.Cursor()
		var k, v []byte
		switch {
		case o.KeyMarker == "" || o.KeyMarker < o.Prefix:
			k, v = c.Seek([]byte(o.Prefix))
		case commonPrefix(o.KeyMarker, o.Prefix, o.Delimiter) == o.KeyMarker:
			// The marker is a common prefix an earlier page returned.
			k, v = seekPast(c, []byte(o.KeyMarker))
		case o.UploadIDMarker != "":
			k, v = c.Seek(uploadKey(o.KeyMarker, o.UploadIDMarker))
			if k != nil && string(k) == o.KeyMarker+"\x00"+o.UploadIDMarker {
				k, v = c.Next()
			}
		default:
			// Past every "KeyMarker\x00…": keys hold no NUL.
			k, v = c.Seek([]byte(o.KeyMarker + "\x01"))
		}
		n := 0
		var lastKey, lastID string
		for k != nil && bytes.HasPrefix(k, []byte(o.Prefix)) {
			if n == max {
				out.IsTruncated = true
				out.NextKeyMarker, out.NextUploadIDMarker = lastKey, lastID
				break
			}
			key, id, _ := strings.Cut(string(k), "\x00")
			if cp := commonPrefix(key, o.Prefix, o.Delimiter); cp != "" {
				out.CommonPrefixes = append(out.CommonPrefixes, cp)
				n++
				lastKey, lastID = cp, ""
				k, v = seekPast(c, []byte(cp))
				continue
			}
			var rec uploadRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			out.Uploads = append(out.Uploads, rec.upload(bucket, key, id))
			n++
			lastKey, lastID = key, id
			k, v = c.Next()
		}
		return nil
	})
	return out, err
}

// SweepUploads aborts uploads initiated before cutoff and removes the
// records and part files of uploads whose bucket is gone or that ended
// without their files being removed (a crash, a failed unlink). It returns
// how many uploads it aborted. The server calls it periodically.
func (s *Store) SweepUploads(cutoff time.Time) (int, error) {
	// Directories are listed before the records are read: an upload's
	// record is written before its directory, so a directory seen here
	// whose record is then missing belongs to an upload that has ended.
	root := filepath.Join(s.dir, "multipart")
	dirs := map[string][]string{} // bucket id → upload ids with a directory
	bents, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	for _, be := range bents {
		uents, err := os.ReadDir(filepath.Join(root, be.Name()))
		if err != nil {
			return 0, err
		}
		dirs[be.Name()] = nil
		for _, ue := range uents {
			dirs[be.Name()] = append(dirs[be.Name()], ue.Name())
		}
	}
	type ended struct{ bucketID, uploadID string }
	var gone []ended
	var aborted int
	liveBuckets := map[string]bool{}
	live := map[string]bool{} // upload ids with a record
	err = s.db.Update(func(tx *bolt.Tx) error {
		err := forEachBucket(tx, func(br bucketRecord) error {
			liveBuckets[br.ID] = true
			return nil
		})
		if err != nil {
			return err
		}
		top := tx.Bucket(bktUploads)
		if top == nil {
			return nil
		}
		var bids [][]byte
		_ = top.ForEach(func(k, _ []byte) error { bids = append(bids, bytes.Clone(k)); return nil })
		for _, bid := range bids {
			ub := top.Bucket(bid)
			var del []ended
			var keys [][]byte
			err := ub.ForEach(func(k, v []byte) error {
				_, id, _ := strings.Cut(string(k), "\x00")
				var rec uploadRecord
				if err := json.Unmarshal(v, &rec); err != nil {
					return err
				}
				if !liveBuckets[string(bid)] || rec.Initiated.Before(cutoff) {
					del = append(del, ended{string(bid), id})
					keys = append(keys, bytes.Clone(k))
					return nil
				}
				live[id] = true
				return nil
			})
			if err != nil {
				return err
			}
			for i, k := range keys {
				if err := ub.Delete(k); err != nil {
					return err
				}
				if pt := tx.Bucket(bktParts); pt != nil && pt.Bucket([]byte(del[i].uploadID)) != nil {
					if err := pt.DeleteBucket([]byte(del[i].uploadID)); err != nil {
						return err
					}
				}
				if liveBuckets[string(bid)] {
					aborted++
				}
			}
			gone = append(gone, del...)
			if !liveBuckets[string(bid)] {
				if err := top.DeleteBucket(bid); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, g := range gone {
		s.removeUploadDir(g.bucketID, g.uploadID)
	}
	for bid, ids := range dirs {
		if !liveBuckets[bid] {
			if err := os.RemoveAll(filepath.Join(root, bid)); err != nil {
				slog.Warn("objstore: remove deleted bucket's parts", "err", err)
			}
			continue
		}
		for _, id := range ids {
			if !live[id] && !slices.ContainsFunc(gone, func(g ended) bool { return g.uploadID == id }) {
				s.removeUploadDir(bid, id)
			}
		}
	}
	return aborted, nil
}
