package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	// maxSinglePut is S3's largest single-PUT object: 5 GiB.
	maxSinglePut = 5 << 30
	// memBudget is the bound on the extra memory a 5 GiB PUT or
	// GET may cost the process.
	memBudget = 100 << 20
	// minFreeForBigObject is the free disk the test needs: the 5 GiB
	// object, the refused 5 GiB + 1 byte one if the server buffers it to a
	// temp file first, and headroom.
	minFreeForBigObject = 12 << 30
)

// TestS3FiveGiBStreams proves that object bytes stream through photon up's
// LightningSTOR: one 5 GiB single PUT and its GET (whole and a range) come
// back byte-exact while the photon process's resident memory stays within
// 100 MiB of what it was before, and a 5 GiB + 1 byte single PUT is refused
// with EntityTooLarge and stores nothing.
func TestS3FiveGiBStreams(t *testing.T) {
	if free := freeBytes(t, os.TempDir()); free < minFreeForBigObject {
		t.Skipf("needs %d GiB free under %s for a 5 GiB object; %.1f GiB free", minFreeForBigObject>>30, os.TempDir(), float64(free)/(1<<30))
	}
	s := startUpStack(t)
	pid := s.proc.cmd.Process.Pid
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !bytes.Contains(cmdline, []byte("\x00up\x00")) {
		t.Fatalf("pid %d is not photon up (%q, %v)", pid, cmdline, err)
	}
	id, secret := s3Key(t, s.dataDir)
	c, err := minio.New(s.s3Addr, &minio.Options{Creds: credentials.NewStaticV4(id, secret, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	const bucket, key = "big", "five-gib.bin"
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.RemoveObject(context.Background(), bucket, key, minio.RemoveObjectOptions{}) })

	// Warm up the PUT and GET paths (pools, code pages, bbolt) so the
	// baseline is the serving process, not the idle one.
	for i := 0; i < 3; i++ {
		sum, etag := presignedPut(ctx, t, c, bucket, "warm", 8<<20, int64(i)<<30)
		if etag != sum {
			t.Fatalf("warm-up PUT: ETag %s, sent MD5 %s", etag, sum)
		}
		if got := getMD5(ctx, t, c, bucket, "warm"); got != sum {
			t.Fatalf("warm-up GET: MD5 %s, sent %s", got, sum)
		}
	}
	if err := c.RemoveObject(ctx, bucket, "warm", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	w := watchRSS(t, pid)
	start := time.Now()
	sum, etag := presignedPut(ctx, t, c, bucket, key, maxSinglePut, 0)
	putTime := time.Since(start)
	putPeak := w.peak()
	if etag != sum {
		t.Fatalf("5 GiB PUT: ETag %s, sent MD5 %s", etag, sum)
	}
	st, err := c.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != maxSinglePut {
		t.Fatalf("stored size %d, want %d", st.Size, int64(maxSinglePut))
	}

	start = time.Now()
	if got := getMD5(ctx, t, c, bucket, key); got != sum {
		t.Fatalf("5 GiB GET: MD5 %s, sent %s", got, sum)
	}
	getTime := time.Since(start)

	// The last MiB, checked against the generator at that offset.
	const tail = 1 << 20
	var ro minio.GetObjectOptions
	if err := ro.SetRange(maxSinglePut-tail, maxSinglePut-1); err != nil {
		t.Fatal(err)
	}
	o, err := c.GetObject(ctx, bucket, key, ro)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(o)
	o.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, tail)
	if _, err := io.ReadFull(newKeystream(maxSinglePut-tail), want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ranged GET of the last MiB: %d bytes that differ from what was sent", len(got))
	}
	m := w.stop(t)
	t.Logf("photon pid %d: VmRSS baseline %.1f MiB; peak during PUT %.1f MiB, during PUT+GET %.1f MiB sampled (%d samples), VmHWM %.1f MiB; extra %.1f MiB (budget %d MiB)",
		pid, mib(m.baseline), mib(putPeak), mib(m.sampledPeak), m.samples, mib(m.hwm), mib(m.extra()), memBudget>>20)
	t.Logf("PUT 5 GiB in %v (%.0f MiB/s), GET in %v (%.0f MiB/s)",
		putTime.Round(time.Millisecond), float64(maxSinglePut>>20)/putTime.Seconds(), getTime.Round(time.Millisecond), float64(maxSinglePut>>20)/getTime.Seconds())
	if m.extra() >= memBudget {
		t.Errorf("a 5 GiB PUT and GET grew photon's resident memory by %.1f MiB (baseline %.1f MiB, peak %.1f MiB); the budget is %d MiB",
			mib(m.extra()), mib(m.baseline), mib(m.peak()), memBudget>>20)
	}

	if err := c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StatObject(ctx, bucket, key, minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
		t.Fatalf("after delete, HEAD: %v, want NoSuchKey", err)
	}

	// One byte over S3's single-PUT maximum: EntityTooLarge, and nothing
	// of it kept — no object, and no file of its size in the data dir.
	before := dirBytes(t, s.dataDir)
	status, code := presignedPutStatus(ctx, t, c, bucket, "too-large.bin", maxSinglePut+1)
	if status != http.StatusBadRequest || code != "EntityTooLarge" {
		t.Errorf("5 GiB + 1 byte single PUT: %d %s, want 400 EntityTooLarge", status, code)
	}
	if _, err := c.StatObject(ctx, bucket, "too-large.bin", minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
		t.Errorf("after the refused PUT, HEAD: %v, want NoSuchKey", err)
	}
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		t.Errorf("after the refused PUT, %s (%d bytes) is listed", o.Key, o.Size)
	}
	if after := dirBytes(t, s.dataDir); after-before > 64<<20 {
		t.Errorf("the refused PUT left %.1f MiB more in the data dir", mib(after-before))
	}
	_ = c.RemoveObject(ctx, bucket, "too-large.bin", minio.RemoveObjectOptions{})
}

// keystream is a deterministic, seekable stream of pseudo-random bytes:
// AES-128-CTR under a fixed key, so the bytes at any offset can be made
// again without keeping the ones before.
type keystream struct{ ctr cipher.Stream }

// newKeystream is the stream from byte off (a multiple of 16) on.
func newKeystream(off int64) *keystream {
	if off%aes.BlockSize != 0 {
		panic("keystream offset not block-aligned")
	}
	blk, err := aes.NewCipher([]byte("lightningstor-5g"))
	if err != nil {
		panic(err)
	}
	iv := make([]byte, aes.BlockSize)
	binary.BigEndian.PutUint64(iv[8:], uint64(off/aes.BlockSize))
	return &keystream{ctr: cipher.NewCTR(blk, iv)}
}

func (k *keystream) Read(p []byte) (int, error) {
	clear(p)
	k.ctr.XORKeyStream(p, p)
	return len(p), nil
}

// hashingBody is size bytes of the keystream from offset seed, hashed as
// they are read.
type hashingBody struct {
	r   io.Reader
	md5 interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newHashingBody(size, seed int64) *hashingBody {
	return &hashingBody{r: io.LimitReader(newKeystream(seed), size), md5: md5.New()}
}

func (b *hashingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.md5.Write(p[:n])
	return n, err
}

func (b *hashingBody) sum() string { return `"` + hex.EncodeToString(b.md5.Sum(nil)) + `"` }

// presignedPut sends size keystream bytes as one PUT (never multipart) to
// a presigned URL with a declared Content-Length, and returns the MD5 of
// what it sent and the ETag the server answered, both quoted.
func presignedPut(ctx context.Context, t *testing.T, c *minio.Client, bucket, key string, size, seed int64) (sum, etag string) {
	t.Helper()
	body := newHashingBody(size, seed)
	resp, err := doPresignedPut(ctx, t, c, bucket, key, size, body)
	if err != nil {
		t.Fatalf("PUT %s (%d bytes): %v", key, size, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s (%d bytes): %s\n%s", key, size, resp.Status, b)
	}
	return body.sum(), resp.Header.Get("ETag")
}

// presignedPutStatus sends size keystream bytes as one PUT and returns the
// status and the S3 error code of the answer ("" for none; the error
// when there was no answer).
func presignedPutStatus(ctx context.Context, t *testing.T, c *minio.Client, bucket, key string, size int64) (int, string) {
	t.Helper()
	// With "Expect: 100-continue" the refusal, sent before the body is
	// read, reaches the client before it writes 5 GiB into a connection
	// the server is closing.
	resp, err := doPresignedPut(ctx, t, c, bucket, key, size, newHashingBody(size, 1<<40))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var e struct{ Code string }
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = xml.Unmarshal(b, &e)
	return resp.StatusCode, e.Code
}

// doPresignedPut PUTs body to a presigned URL for bucket/key with
// Content-Length size, on a connection of its own, with "Expect:
// 100-continue" as the AWS SDKs send large PUTs.
func doPresignedPut(ctx context.Context, t *testing.T, c *minio.Client, bucket, key string, size int64, body io.Reader) (*http.Response, error) {
	t.Helper()
	u, err := c.PresignedPutObject(ctx, bucket, key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Expect", "100-continue")
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, WriteBufferSize: 1 << 20, ExpectContinueTimeout: time.Minute}}
	t.Cleanup(hc.CloseIdleConnections)
	return hc.Do(req)
}

// getMD5 GETs an object whole, hashing it as it arrives, and returns its
// MD5 quoted as an ETag is.
func getMD5(ctx context.Context, t *testing.T, c *minio.Client, bucket, key string) string {
	t.Helper()
	o, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	h := md5.New()
	if _, err := io.CopyBuffer(h, o, make([]byte, 1<<20)); err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	return `"` + hex.EncodeToString(h.Sum(nil)) + `"`
}

// rssWatch samples a process's VmRSS every 100 ms from a baseline on,
// with the kernel's own peak (VmHWM, reset at the baseline) as a backstop
// for what falls between samples.
type rssWatch struct {
	pid      int
	baseline int64
	hwmReset bool
	max      atomic.Int64
	n        atomic.Int64
	quit     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// rssFigures are a watch's results, in bytes.
type rssFigures struct {
	baseline, sampledPeak, hwm int64
	hwmReset                   bool
	samples                    int64
}

// peak is the highest resident size seen: sampled, or VmHWM when it was
// reset at the baseline (otherwise it may be from start-up).
func (f rssFigures) peak() int64 {
	if f.hwmReset && f.hwm > f.sampledPeak {
		return f.hwm
	}
	return f.sampledPeak
}

func (f rssFigures) extra() int64 { return f.peak() - f.baseline }

func watchRSS(t *testing.T, pid int) *rssWatch {
	t.Helper()
	// "5" resets VmHWM to the current RSS (proc(5), clear_refs).
	err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	if err != nil {
		t.Logf("cannot reset VmHWM (%v): the peak is the sampled one only", err)
	}
	w := &rssWatch{pid: pid, hwmReset: err == nil, quit: make(chan struct{}), done: make(chan struct{})}
	w.baseline = procStatus(t, pid)["VmRSS"]
	w.max.Store(w.baseline)
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.quit:
				return
			case <-tick.C:
				if rss, err := readProcStatus(pid); err == nil {
					w.sample(rss["VmRSS"])
				}
			}
		}
	}()
	t.Cleanup(func() { w.halt() })
	return w
}

func (w *rssWatch) sample(rss int64) {
	w.n.Add(1)
	for {
		m := w.max.Load()
		if rss <= m || w.max.CompareAndSwap(m, rss) {
			return
		}
	}
}

func (w *rssWatch) peak() int64 { return w.max.Load() }

func (w *rssWatch) halt() {
	w.once.Do(func() { close(w.quit) })
	<-w.done
}

// stop ends sampling and returns the figures, with VmHWM read last.
func (w *rssWatch) stop(t *testing.T) rssFigures {
	t.Helper()
	w.halt()
	st := procStatus(t, w.pid)
	w.sample(st["VmRSS"])
	return rssFigures{baseline: w.baseline, sampledPeak: w.max.Load(), hwm: st["VmHWM"], hwmReset: w.hwmReset, samples: w.n.Load()}
}

func procStatus(t *testing.T, pid int) map[string]int64 {
	t.Helper()
	st, err := readProcStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// readProcStatus reads the "kB" fields of /proc/<pid>/status, in bytes.
func readProcStatus(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if f := strings.Fields(rest); ok && len(f) == 2 && f[1] == "kB" {
			if v, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				out[name] = v << 10
			}
		}
	}
	if out["VmRSS"] == 0 {
		return nil, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return out, sc.Err()
}

// freeBytes is the space an unprivileged writer has left on dir's filesystem.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// dirBytes is the total size of the regular files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a temp file came and went
			}
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
