package objstore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// MaxListKeys is S3's cap on MaxKeys, and the default when it is not set.
const MaxListKeys = 1000

// ListOptions selects a page of ListObjects (V1 or V2).
type ListOptions struct {
	Prefix, Delimiter string
	// StartAfter is V2's start-after and V1's marker: listing begins after it.
	StartAfter string
	// ContinuationToken, when set, replaces StartAfter (as in S3).
	ContinuationToken string
	// MaxKeys counts keys and common prefixes; <= 0 or > 1000 means 1000.
	MaxKeys int
}

// ListResult is one page of keys and common prefixes, in byte order.
type ListResult struct {
	Objects               []ObjectMeta
	CommonPrefixes        []string
	IsTruncated           bool
	NextContinuationToken string // set when IsTruncated
	NextMarker            string // V1: last key or prefix returned, set when IsTruncated and Delimiter != ""
	KeyCount              int
}

// List returns one page of bucket's keys under ListObjectsV2 semantics. The
// bbolt cursor seeks to the start and jumps over each common prefix's keys,
// so a page costs O(page) seeks however many keys the bucket holds.
//
// An entry (key or common prefix) is listed only if it sorts after the start
// point; when the start point is itself a common prefix (a V1 NextMarker or
// our continuation token), its whole group is skipped, so pages never repeat.
func (s *Store) List(bucket string, o ListOptions) (ListResult, error) {
	var res ListResult
	start := o.StartAfter
	if o.ContinuationToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(o.ContinuationToken)
		if err != nil || len(b) == 0 {
			return res, fmt.Errorf("%w: continuation token", ErrInvalidArgument)
		}
		start = string(b)
	}
	max := o.MaxKeys
	if max <= 0 || max > MaxListKeys {
		max = MaxListKeys
	}
	prefix := []byte(o.Prefix)
	err := s.db.View(func(tx *bolt.Tx) error {
		br, err := getBucket(tx, bucket)
		if err != nil {
			return err
		}
		c := tx.Bucket(bktObjects).Bucket([]byte(br.ID)).Cursor()

		var k, v []byte
		switch {
		case start == "" || start < o.Prefix:
			k, v = c.Seek(prefix)
		case commonPrefix(start, o.Prefix, o.Delimiter) == start:
			k, v = seekPast(c, []byte(start))
		default:
			k, v = c.Seek([]byte(start))
			if k != nil && string(k) == start {
				k, v = c.Next()
			}
		}
		last := ""
		for k != nil && bytes.HasPrefix(k, prefix) {
			if res.KeyCount == max {
				res.IsTruncated = true
				break
			}
			key := string(k)
			if cp := commonPrefix(key, o.Prefix, o.Delimiter); cp != "" {
				res.CommonPrefixes = append(res.CommonPrefixes, cp)
				res.KeyCount++
				last = cp
				// Jump over the rest of the group instead of reading it.
				k, v = seekPast(c, []byte(cp))
				continue
			}
			var rec objectRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("objstore: object %q: %w", key, err)
			}
			res.Objects = append(res.Objects, rec.meta(bucket, key))
			res.KeyCount++
			last = key
			k, v = c.Next()
		}
		if res.IsTruncated {
			res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(last))
			if o.Delimiter != "" {
				res.NextMarker = last
			}
		}
		return nil
	})
	return res, err
}

// commonPrefix returns the common prefix key rolls up to under prefix and
// delim, or "" if key is listed as itself.
func commonPrefix(key, prefix, delim string) string {
	if delim == "" || !strings.HasPrefix(key, prefix) {
		return ""
	}
	i := strings.Index(key[len(prefix):], delim)
	if i < 0 {
		return ""
	}
	return key[:len(prefix)+i+len(delim)]
}

// seekPast positions c at the first key that does not start with p.
func seekPast(c *bolt.Cursor, p []byte) ([]byte, []byte) {
	succ := prefixSuccessor(p)
	if succ == nil {
		return nil, nil
	}
	return c.Seek(succ)
}

// prefixSuccessor is the smallest byte string greater than every string that
// starts with p, or nil if there is none (p is all 0xff).
func prefixSuccessor(p []byte) []byte {
	s := bytes.Clone(p)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] < 0xff {
			s[i]++
			return s[:i+1]
		}
	}
	return nil
}
