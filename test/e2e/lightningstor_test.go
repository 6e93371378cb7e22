package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/photoncloud/photon/internal/platform"
)

// s3Key reads the bootstrap key photon up wrote to DATA/s3-credentials.
func s3Key(t *testing.T, dataDir string) (id, secret string) {
	t.Helper()
	id, secret, err := platform.ReadS3Credentials(filepath.Join(dataDir, platform.S3CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	return id, secret
}

// run runs a command and fails the test with its output if it fails.
func runCmd(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestS3CLIs drives LightningSTOR in photon up with the real S3 clients
// from Debian, s3cmd and rclone: mb, put, ls, get, sync, del, rb, with the
// key photon up wrote.
func TestS3CLIs(t *testing.T) {
	for _, tool := range []string{"s3cmd", "rclone"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/install-deps.sh installs it)", tool)
		}
	}
	s := startUpStack(t)
	id, secret := s3Key(t, s.dataDir)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for name, size := range map[string]int{"a.txt": 11, "sub/b.bin": 3 << 20, "sub/deep/c with space.txt": 5} {
		p := filepath.Join(src, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		b := make([]byte, size)
		_, _ = rand.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("s3cmd", func(t *testing.T) {
		cfg := filepath.Join(dir, "s3cfg")
		_ = os.WriteFile(cfg, []byte("[default]\naccess_key = "+id+"\nsecret_key = "+secret+"\nhost_base = "+s.s3Addr+
			"\nhost_bucket = "+s.s3Addr+"\nuse_https = False\nsignature_v2 = False\n"), 0o600)
		s3 := func(args ...string) string { return runCmd(t, nil, "s3cmd", append([]string{"-c", cfg}, args...)...) }
		s3("mb", "s3://cli-bucket")
		s3("put", filepath.Join(src, "a.txt"), "s3://cli-bucket/docs/a.txt")
		if out := s3("ls", "s3://cli-bucket/docs/"); !strings.Contains(out, "s3://cli-bucket/docs/a.txt") {
			t.Fatalf("ls: %s", out)
		}
		got := filepath.Join(dir, "a.got")
		s3("get", "s3://cli-bucket/docs/a.txt", got)
		want, _ := os.ReadFile(filepath.Join(src, "a.txt"))
		if b, _ := os.ReadFile(got); !bytes.Equal(b, want) {
			t.Fatal("s3cmd get: the bytes differ")
		}
		s3("sync", src+"/", "s3://cli-bucket/tree/")
		if out := s3("ls", "--recursive", "s3://cli-bucket/tree/"); !strings.Contains(out, "tree/sub/deep/c with space.txt") || !strings.Contains(out, "tree/sub/b.bin") {
			t.Fatalf("ls after sync: %s", out)
		}
		s3("del", "--recursive", "--force", "s3://cli-bucket/")
		s3("rb", "s3://cli-bucket")
		if out := s3("ls"); strings.Contains(out, "cli-bucket") {
			t.Fatalf("bucket still listed: %s", out)
		}
	})

	t.Run("rclone", func(t *testing.T) {
		env := []string{"RCLONE_CONFIG_PH_TYPE=s3", "RCLONE_CONFIG_PH_PROVIDER=Other", "RCLONE_CONFIG_PH_ENV_AUTH=false",
			"RCLONE_CONFIG_PH_ACCESS_KEY_ID=" + id, "RCLONE_CONFIG_PH_SECRET_ACCESS_KEY=" + secret,
			"RCLONE_CONFIG_PH_ENDPOINT=http://" + s.s3Addr, "RCLONE_CONFIG=/dev/null",
			// A CA bundle for HTTPS (some machines set one) makes rclone's
			// AWS SDK refuse its own transport; this endpoint is plain HTTP.
			"AWS_CA_BUNDLE="}
		rc := func(args ...string) string { return runCmd(t, env, "rclone", args...) }
		rc("mkdir", "ph:rclone-bucket")
		rc("sync", src, "ph:rclone-bucket/tree")
		rc("check", src, "ph:rclone-bucket/tree")
		if out := rc("ls", "ph:rclone-bucket"); !strings.Contains(out, "tree/sub/deep/c with space.txt") {
			t.Fatalf("ls: %s", out)
		}
		back := filepath.Join(dir, "back")
		rc("copy", "ph:rclone-bucket/tree", back)
		rc("check", src, back)
		// Sync after a local delete removes the remote copy.
		if err := os.Remove(filepath.Join(src, "a.txt")); err != nil {
			t.Fatal(err)
		}
		rc("sync", src, "ph:rclone-bucket/tree")
		if out := rc("ls", "ph:rclone-bucket"); strings.Contains(out, "tree/a.txt") {
			t.Fatalf("a.txt survived the sync: %s", out)
		}
		rc("purge", "ph:rclone-bucket")
		if out := rc("lsd", "ph:"); strings.Contains(out, "rclone-bucket") {
			t.Fatalf("bucket still there: %s", out)
		}
	})
}

// TestS3Kill9DuringPuts kills photon up with -9 while 8 clients PUT
// objects (each key written again and again, with bodies that say which
// write they are): after a restart every acknowledged write reads back
// byte-exact or was overwritten by a later one, and every listed object is
// one whole body that was sent — never a torn one.
func TestS3Kill9DuringPuts(t *testing.T) {
	s := startUpStack(t)
	id, secret := s3Key(t, s.dataDir)
	newClient := func() *minio.Client {
		c, err := minio.New(s.s3Addr, &minio.Options{Creds: credentials.NewStaticV4(id, secret, ""), BucketLookup: minio.BucketLookupPath})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := context.Background()
	if err := newClient().MakeBucket(ctx, "crash", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	// body is the n-th write of key: 64 KiB … 1 MiB of a pattern that
	// names them, so a torn body cannot pass for another.
	body := func(key string, n int) []byte {
		head := fmt.Sprintf("%s#%d|", key, n)
		size := 64<<10 + (n%16)*60<<10
		return bytes.Repeat([]byte(head), size/len(head)+1)[:size]
	}
	var mu sync.Mutex
	acked := map[string]int{} // key → the last write acknowledged
	sent := map[string]int{}  // key → the last write started
	var killed atomic.Bool
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient()
			for n := 0; !killed.Load(); n++ {
				key := fmt.Sprintf("g%d/k%d", g, n%5)
				mu.Lock()
				sent[key] = n
				mu.Unlock()
				b := body(key, n)
				if _, err := c.PutObject(ctx, "crash", key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
					return
				}
				mu.Lock()
				if !killed.Load() {
					acked[key] = n
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(3 * time.Second)
	killed.Store(true)
	if err := s.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.proc.done
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 8 {
		t.Fatalf("only %d keys acknowledged before the kill: the test proves nothing", len(acked))
	}
	s.start(t)
	c := newClient()
	for o := range c.ListObjects(ctx, "crash", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		r, err := c.GetObject(ctx, "crash", o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if _, err := fmt.Sscanf(string(got[len(o.Key)+1:]), "%d|", &n); err != nil || !bytes.Equal(got, body(o.Key, n)) {
			t.Fatalf("%s is not a whole body that was sent (%d bytes)", o.Key, len(got))
		}
		if a, ok := acked[o.Key]; ok && (n < a || n > sent[o.Key]) {
			t.Errorf("%s reads as write %d; %d was acknowledged, %d the last sent", o.Key, n, a, sent[o.Key])
		}
		delete(acked, o.Key)
	}
	for k := range acked {
		t.Errorf("acknowledged %s is gone", k)
	}
}
