// Package testutil starts real PhotonCloud components for tests: an
// in-process ChainFire in a temp dir, a whole `photon up` stack on random
// loopback ports, and the built photon binary.
package testutil

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/services/chainfire"
	"github.com/photoncloud/photon/services/iam"
)

// FreeAddr returns a 127.0.0.1:port that was free a moment ago. etcd cannot
// listen on port 0 and advertise the result, so its ports are picked here.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ChainFireConfig is a single-node config on free ports in a temp dir.
func ChainFireConfig(t testing.TB) chainfire.Config {
	t.Helper()
	return chainfire.Config{
		NodeID:   1,
		DataDir:  t.TempDir(),
		HTTPAddr: FreeAddr(t),
		GRPCAddr: FreeAddr(t),
		PeerAddr: FreeAddr(t),
		Version:  "test",
	}
}

// StartChainFire starts an in-process single-node ChainFire, stopped when
// the test ends.
func StartChainFire(t testing.TB) *chainfire.Server {
	t.Helper()
	return StartChainFireWith(t, ChainFireConfig(t))
}

// StartChainFireWith starts a node from cfg, stopped when the test ends.
func StartChainFireWith(t testing.TB, cfg chainfire.Config) *chainfire.Server {
	t.Helper()
	s, err := chainfire.New(cfg)
	if err != nil {
		t.Fatalf("chainfire config: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start chainfire: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop chainfire: %v", err)
		}
	})
	return s
}

// EtcdClient is an ordinary etcd v3 client over gRPC to addr, closed when
// the test ends.
func EtcdClient(t testing.TB, addr string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// StartStack starts the whole `photon up` stack in-process on free ports in
// dir (a temp dir when ""), stopped when the test ends.
func StartStack(t testing.TB, dir string) *platform.Stack {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cf := ChainFireConfig(t)
	st, err := platform.New(platform.Config{DataDir: dir, ChainFire: cf, IAM: iam.Config{HTTPAddr: FreeAddr(t)}})
	if err != nil {
		t.Fatalf("stack: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := st.Start(ctx); err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := st.Stop(ctx); err != nil {
			t.Errorf("stop stack: %v", err)
		}
	})
	return st
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// PhotonBinary builds cmd/photon once per test process and returns its path.
// The binary lives at one fixed place under the temp dir (replaced
// atomically), so repeated runs do not pile up copies.
func PhotonBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		// One place per checkout, so two checkouts never swap binaries.
		sum := sha256.Sum256([]byte(RepoRoot(t)))
		dir := filepath.Join(os.TempDir(), "photon-test-bin-"+hex.EncodeToString(sum[:6]))
		if buildErr = os.MkdirAll(dir, 0o755); buildErr != nil {
			return
		}
		tmp, err := os.CreateTemp(dir, "photon-*.tmp")
		if err != nil {
			buildErr = err
			return
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		cmd := exec.Command("go", "build", "-o", tmp.Name(), "./cmd/photon")
		cmd.Dir = RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(out)}
			return
		}
		buildPath = filepath.Join(dir, "photon")
		buildErr = os.Rename(tmp.Name(), buildPath)
	})
	if buildErr != nil {
		t.Fatalf("build photon: %v", buildErr)
	}
	return buildPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// RepoRoot is the module root (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate testutil source")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}
