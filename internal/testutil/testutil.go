// Package testutil starts real PhotonCloud components for tests: an
// in-process ChainFire in a temp dir, a whole `photon up` stack on random
// loopback ports, and the built photon binary.
package testutil

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/services/chainfire"
	"github.com/photoncloud/photon/services/creditservice"
	"github.com/photoncloud/photon/services/flaredb"
	"github.com/photoncloud/photon/services/iam"
	"github.com/photoncloud/photon/services/lightningstor"
	"github.com/photoncloud/photon/services/nightlight"
	"github.com/photoncloud/photon/services/plasmavmc"
	"github.com/photoncloud/photon/services/prismnet"
)

// FreeAddr returns a 127.0.0.1:port that was free a moment ago. etcd cannot
// listen on port 0 and advertise the result, so its ports are picked here —
// below the kernel's ephemeral range (32768 and up on Linux), where every
// outgoing connection of every test process takes its local port, and never
// the same port twice in one process. Only another test process picking the
// same port within the moment between this check and its use can collide.
func FreeAddr(t testing.TB) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := minPort + rand.IntN(maxPort-minPort)
		if portsGiven[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		portsGiven[port] = true
		return addr
	}
	t.Fatalf("free port: none free in [%d, %d) after 1000 tries", minPort, maxPort)
	return ""
}

// The ports FreeAddr picks from, and those it has handed out.
const minPort, maxPort = 12000, 32000

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

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
	run(t, "chainfire", s)
	return s
}

// service is what run starts and stops: a node or a whole stack.
type service interface {
	Start(context.Context) error
	Stop(context.Context) error
}

// run starts s and stops it when the test ends; what names it in failures.
func run(t testing.TB, what string, s service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", what, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop %s: %v", what, err)
		}
	})
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

// StackConfig is the config StartStack runs: the whole `photon up` stack on
// free loopback ports in dir (a temp dir when ""), so in loopback auth mode.
// Tests that need another stack change it and pass it to StartStackWith.
func StackConfig(t testing.TB, dir string) platform.Config {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	return platform.Config{DataDir: dir, ChainFire: ChainFireConfig(t), IAM: iam.Config{HTTPAddr: FreeAddr(t)},
		CreditService: creditservice.Config{HTTPAddr: FreeAddr(t)}, PrismNET: prismnet.Config{HTTPAddr: FreeAddr(t)},
		PlasmaVMC: plasmavmc.Config{HTTPAddr: FreeAddr(t)}, LightningSTOR: lightningstor.Config{HTTPAddr: FreeAddr(t)},
		NightLight: nightlight.Config{HTTPAddr: FreeAddr(t), ScrapeInterval: time.Second},
		FlareDB:    flaredb.Config{HTTPAddr: FreeAddr(t), RaftAddr: FreeAddr(t)}}
}

// StartStack starts the whole `photon up` stack in-process on free ports in
// dir (a temp dir when ""), stopped when the test ends.
func StartStack(t testing.TB, dir string) *platform.Stack {
	t.Helper()
	return StartStackWith(t, StackConfig(t, dir))
}

// StartStackWith starts the stack cfg describes (usually StackConfig's,
// changed), stopped when the test ends.
func StartStackWith(t testing.TB, cfg platform.Config) *platform.Stack {
	t.Helper()
	st, err := platform.New(cfg)
	if err != nil {
		t.Fatalf("stack: %v", err)
	}
	run(t, "stack", st)
	return st
}

// AdminToken reads the bootstrap admin's token that `photon up` keeps in
// dataDir (platform.AdminTokenFile), failing the test if there is none.
func AdminToken(t testing.TB, dataDir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dataDir, platform.AdminTokenFile))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" {
		t.Fatal("admin token file is empty")
	}
	return tok
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
