package lightningstor_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestSDKVersioning drives versioning through the AWS SDK: the
// configuration, version ids, reads and copies by id, delete markers in
// ListObjectVersions (with its paginator), DeleteObjects by version and the
// errors.
func TestSDKVersioning(t *testing.T) {
	e := startS3(t)
	c := e.sdkBootstrap()
	ctx := context.Background()
	bkt := aws.String("sdk-versions")
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bkt})
	mustSDK(t, err)
	_, err = c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: bkt,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	mustSDK(t, err)
	gv, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: bkt})
	if err != nil || gv.Status != types.BucketVersioningStatusEnabled {
		t.Fatalf("GetBucketVersioning = %+v, %v", gv, err)
	}
	put := func(key, body string) string {
		t.Helper()
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: bkt, Key: aws.String(key), Body: strings.NewReader(body)})
		mustSDK(t, err)
		return aws.ToString(out.VersionId)
	}
	get := func(key, id string) (string, error) {
		t.Helper()
		in := &s3.GetObjectInput{Bucket: bkt, Key: aws.String(key)}
		if id != "" {
			in.VersionId = aws.String(id)
		}
		out, err := c.GetObject(ctx, in)
		if err != nil {
			return "", err
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		return string(b), err
	}

	// 30 keys with 3 versions each and a delete marker on every third key:
	// enough for ListObjectVersions to page at MaxKeys 7.
	ids := map[string][]string{}
	for round := 0; round < 3; round++ {
		for i := 0; i < 30; i++ {
			k := "k" + string(rune('a'+i/10)) + string(rune('0'+i%10))
			ids[k] = append(ids[k], put(k, k+"-"+string(rune('0'+round))))
		}
	}
	markers := map[string]string{}
	for k := range ids {
		if k[2]%3 == 0 {
			out, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bkt, Key: aws.String(k)})
			if err != nil || !aws.ToBool(out.DeleteMarker) || out.VersionId == nil {
				t.Fatalf("DeleteObject %s = %+v, %v", k, out, err)
			}
			markers[k] = *out.VersionId
		}
	}
	var versions, dms, latest int
	p := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: bkt, MaxKeys: aws.Int32(7)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		mustSDK(t, err)
		pages++
		for _, v := range out.Versions {
			versions++
			if aws.ToBool(v.IsLatest) {
				latest++
				if want := ids[*v.Key][2]; *v.VersionId != want {
					t.Fatalf("latest of %s = %s, want %s", *v.Key, *v.VersionId, want)
				}
			}
		}
		for _, d := range out.DeleteMarkers {
			dms++
			if !aws.ToBool(d.IsLatest) || markers[*d.Key] != *d.VersionId {
				t.Fatalf("delete marker %s@%s latest=%v", *d.Key, *d.VersionId, aws.ToBool(d.IsLatest))
			}
		}
	}
	if versions != 90 || dms != len(markers) || latest != 30-len(markers) || pages < 13 {
		t.Fatalf("listed %d versions, %d markers (want %d), %d latest, %d pages", versions, dms, len(markers), latest, pages)
	}

	// Reads: the current one, an old one by id, a deleted key's 404.
	if got, err := get("ka1", ids["ka1"][0]); err != nil || got != "ka1-0" {
		t.Fatalf("old version = %q, %v", got, err)
	}
	if _, err := get("ka0", ""); apiCode(err) != "NoSuchKey" {
		t.Fatalf("GET of a deleted key: %v", err)
	}
	if _, err := get("ka0", markers["ka0"]); httpStatus(err) != 405 {
		t.Fatalf("GET of a delete marker: %v", err)
	}
	if _, err := get("ka1", "0000000000ffffff"); apiCode(err) != "NoSuchVersion" {
		t.Fatalf("GET of an unknown version: %v", err)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bkt, Key: aws.String("ka1"), VersionId: aws.String(ids["ka1"][1])})
	if err != nil || aws.ToString(head.VersionId) != ids["ka1"][1] {
		t.Fatalf("HEAD by version = %+v, %v", head, err)
	}

	// Restore a deleted key's first version by copying it onto the key.
	cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bkt, Key: aws.String("ka0"),
		CopySource: aws.String("sdk-versions/ka0?versionId=" + ids["ka0"][0])})
	if err != nil || aws.ToString(cp.CopySourceVersionId) != ids["ka0"][0] || aws.ToString(cp.VersionId) == "" {
		t.Fatalf("CopyObject of a version = %+v, %v", cp, err)
	}
	if got, err := get("ka0", ""); err != nil || got != "ka0-0" {
		t.Fatalf("after restore = %q, %v", got, err)
	}

	// Tagging a version leaves the others alone.
	_, err = c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: bkt, Key: aws.String("ka1"), VersionId: aws.String(ids["ka1"][0]),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("old"), Value: aws.String("yes")}}}})
	mustSDK(t, err)
	for id, want := range map[string]int{ids["ka1"][0]: 1, ids["ka1"][2]: 0} {
		tg, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: bkt, Key: aws.String("ka1"), VersionId: aws.String(id)})
		if err != nil || len(tg.TagSet) != want {
			t.Fatalf("tags of %s = %+v, %v; want %d", id, tg, err, want)
		}
	}

	// DeleteObjects by version: every version of ka1, then it is gone.
	var objs []types.ObjectIdentifier
	for _, id := range ids["ka1"] {
		objs = append(objs, types.ObjectIdentifier{Key: aws.String("ka1"), VersionId: aws.String(id)})
	}
	del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: bkt, Delete: &types.Delete{Objects: objs}})
	if err != nil || len(del.Deleted) != 3 || len(del.Errors) != 0 {
		t.Fatalf("DeleteObjects by version = %+v, %v", del, err)
	}
	for i, d := range del.Deleted {
		if aws.ToString(d.VersionId) != ids["ka1"][i] {
			t.Fatalf("deleted[%d] = %s", i, aws.ToString(d.VersionId))
		}
	}
	lv, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: bkt, Prefix: aws.String("ka1")})
	if err != nil || len(lv.Versions)+len(lv.DeleteMarkers) != 0 {
		t.Fatalf("versions of ka1 after deleting them = %+v, %v", lv, err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: bkt}); apiCode(err) != "BucketNotEmpty" {
		t.Fatalf("DeleteBucket with versions: %v", err)
	}
	// Suspending: the next PUT is the null version.
	_, err = c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: bkt,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusSuspended}})
	mustSDK(t, err)
	if id := put("kb1", "null"); id != "null" {
		t.Fatalf("PUT while suspended: version %q", id)
	}
}
