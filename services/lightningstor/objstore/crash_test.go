package objstore

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	envCrashDir  = "PHOTON_OBJSTORE_CRASH_DIR"
	envCrashBase = "PHOTON_OBJSTORE_CRASH_BASE"
	crashBucket  = "crash"
	crashWriters = 4
	crashKeys    = 3 // per writer
)

// TestMain doubles as the crash-test child: with envCrashDir set, the test
// binary loops PutObject until the parent kills it with SIGKILL.
func TestMain(m *testing.M) {
	if dir := os.Getenv(envCrashDir); dir != "" {
		base, _ := strconv.Atoi(os.Getenv(envCrashBase))
		crashChild(dir, base)
		os.Exit(2) // crashChild never returns normally
	}
	os.Exit(m.Run())
}

func crashKey(w, i int) string { return fmt.Sprintf("w%d/k%d", w, i) }

// crashBody is generation gen of key's body: self-describing so the parent
// can tell which write a body came from and whether it is whole.
func crashBody(key string, gen int) []byte {
	head := fmt.Sprintf("%s|%d|", key, gen)
	size := len(head) + (gen*7919)%(300<<10)
	b := bytes.Repeat([]byte(head), size/len(head)+1)
	return b[:size]
}

// slowReader trickles a body so that kills often land mid-stream.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(200 * time.Microsecond)
	return s.r.Read(p[:min(len(p), 16<<10)])
}

func crashChild(dir string, base int) {
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(1)
	}
	if _, err := s.CreateBucket(crashBucket, "p", ""); err != nil && !errors.Is(err, ErrBucketExists) {
		fmt.Fprintln(os.Stderr, "child bucket:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	for w := 0; w < crashWriters; w++ {
		go func() {
			for gen := base; ; gen++ {
				for i := 0; i < crashKeys; i++ {
					key := crashKey(w, i)
					var r io.Reader = bytes.NewReader(crashBody(key, gen))
					if gen%3 == 0 {
						r = slowReader{r}
					}
					if _, err := s.PutObject(crashBucket, key, r, ObjectMeta{}, nil); err != nil {
						fmt.Fprintln(os.Stderr, "child put:", err)
						os.Exit(1)
					}
					mu.Lock()
					fmt.Fprintf(os.Stdout, "ack %s %d\n", key, gen)
					mu.Unlock()
				}
			}
		}()
	}
	select {}
}

// runCrashRound starts a writer child, kills it with SIGKILL at a random
// moment and returns the last acknowledged generation of each key.
func runCrashRound(t *testing.T, dir string, base int, rng *rand.Rand) map[string]int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashBase+"="+strconv.Itoa(base))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acks := map[string]int{}
	firstAck := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		first := true
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ack" {
				continue
			}
			g, _ := strconv.Atoi(f[2])
			acks[f[1]] = g
			if first {
				close(firstAck)
				first = false
			}
		}
	}()
	select {
	case <-firstAck:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child made no progress; stderr: %s", stderr.String())
	}
	time.Sleep(time.Duration(150+rng.IntN(400)) * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup runs
		t.Fatal(err)
	}
	<-done // all acks written before the kill are read
	cmd.Wait()
	if strings.Contains(stderr.String(), "child") {
		t.Fatalf("child failed: %s", stderr.String())
	}
	return acks
}

func TestCrashDuringPuts(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns writer processes: skipped in -short mode")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	have := map[string]int{} // generation each key held after the last round
	for round := 0; round < 3; round++ {
		base := round * 1000000
		acks := runCrashRound(t, dir, base, rng)
		if len(acks) == 0 {
			t.Fatalf("round %d: no acknowledged puts", round)
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		live := 0
		for w := 0; w < crashWriters; w++ {
			for i := 0; i < crashKeys; i++ {
				key := crashKey(w, i)
				m, f, err := s.GetObject(crashBucket, key, "")
				ack, acked := acks[key]
				prev, existed := have[key]
				if errors.Is(err, ErrNoSuchKey) {
					if acked || existed {
						t.Fatalf("round %d: %s lost (acked gen %d, acked=%v, existed=%v)", round, key, ack, acked, existed)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(f)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				parts := strings.SplitN(string(body[:min(len(body), 64)]), "|", 3)
				gen, perr := strconv.Atoi(parts[min(1, len(parts)-1)])
				if parts[0] != key || perr != nil || !bytes.Equal(body, crashBody(key, gen)) {
					t.Fatalf("round %d: %s has a torn or foreign body (%d bytes)", round, key, len(body))
				}
				sum := md5.Sum(body)
				if m.ETag != `"`+hex.EncodeToString(sum[:])+`"` || m.Size != int64(len(body)) {
					t.Fatalf("round %d: %s metadata %+v does not match its body", round, key, m)
				}
				switch {
				case acked && (gen == ack || gen == ack+1): // ack+1: committed, ack not yet printed
				case !acked && (existed && gen == prev || gen == base):
				default:
					t.Fatalf("round %d: %s holds gen %d; acked %d (%v), before round %d (%v)", round, key, gen, ack, acked, prev, existed)
				}
				have[key] = gen
				live++
			}
		}
		// Listing shows exactly the live keys, whole.
		r, err := s.List(crashBucket, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Objects) != live {
			t.Fatalf("round %d: listed %d objects, %d live", round, len(r.Objects), live)
		}
		// Open removed temp files and orphans: one body file per live key.
		if files := bodyFiles(t, dir); len(files) != live {
			t.Fatalf("round %d: %d files on disk for %d objects: %v", round, len(files), live, files)
		}
		if ents, err := os.ReadDir(filepath.Join(dir, "objects")); err != nil || len(ents) != 1 {
			t.Fatalf("round %d: bucket dirs %v, %v", round, ents, err)
		}
		t.Logf("round %d: %d acks, %d live keys verified", round, len(acks), live)
		s.Close()
	}
}
