package chainfire

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/rest"
)

// Config is one ChainFire node. The zero values of the optional fields are
// filled by Defaults.
type Config struct {
	// NodeID is the operator's number for this node; its etcd member name is
	// "node-<NodeID>".
	NodeID uint64
	// DataDir holds the etcd data under DataDir/chainfire.
	DataDir string
	// HTTPAddr serves the REST API; GRPCAddr the etcd v3 gRPC API; PeerAddr
	// the Raft traffic between members.
	HTTPAddr, GRPCAddr, PeerAddr string
	// AdvertisePeerURL and AdvertiseClientURL are what other members and
	// clients use to reach this node (default: http:// + the listen address).
	AdvertisePeerURL, AdvertiseClientURL string
	// InitialCluster is "node-1=http://h1:2380,node-2=…" (default: only this
	// node). Ignored once the data dir holds a member.
	InitialCluster string
	// ClusterState is "new" to bootstrap, "existing" to join a running cluster.
	ClusterState string
	// ClusterToken keeps separately bootstrapped clusters apart.
	ClusterToken string
	// RequestTimeout bounds every REST request that needs quorum, so a
	// cluster without one answers 503 instead of hanging.
	RequestTimeout time.Duration
	// MaxBodyBytes limits REST request bodies.
	MaxBodyBytes int64
	// LogLevel is etcd's log level (debug, info, warn, error).
	LogLevel string
	// Version is reported by /health.
	Version string
	// AuthMode is auto, loopback or enforce (see internal/auth); auto
	// trusts tokenless loopback callers only while every listener is on
	// loopback.
	AuthMode string
	// IAMURL is where IAM serves its JWKS, to verify tokens with.
	IAMURL string
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.NodeID == 0 {
		c.NodeID = 1
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8081"
	}
	if c.GRPCAddr == "" {
		c.GRPCAddr = "127.0.0.1:50051"
	}
	if c.PeerAddr == "" {
		c.PeerAddr = "127.0.0.1:2380"
	}
	if c.AdvertisePeerURL == "" {
		c.AdvertisePeerURL = "http://" + rest.Reachable(c.PeerAddr)
	}
	if c.AdvertiseClientURL == "" {
		c.AdvertiseClientURL = "http://" + rest.Reachable(c.GRPCAddr)
	}
	if c.InitialCluster == "" {
		c.InitialCluster = MemberName(c.NodeID) + "=" + c.AdvertisePeerURL
	}
	if c.ClusterState == "" {
		c.ClusterState = "new"
	}
	if c.ClusterToken == "" {
		c.ClusterToken = "photon-chainfire"
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.LogLevel == "" {
		c.LogLevel = "error"
	}
	if c.IAMURL == "" {
		c.IAMURL = "http://127.0.0.1:8083"
	}
}

// Validate reports the first unusable setting.
func (c *Config) Validate() error {
	for name, addr := range map[string]string{"http-addr": c.HTTPAddr, "grpc-addr": c.GRPCAddr, "peer-addr": c.PeerAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("--%s %q: %w", name, addr, err)
		}
	}
	for name, u := range map[string]string{"advertise-peer-url": c.AdvertisePeerURL, "advertise-client-url": c.AdvertiseClientURL} {
		if _, err := url.Parse(u); err != nil {
			return fmt.Errorf("--%s %q: %w", name, u, err)
		}
	}
	if _, err := auth.ResolveMode(c.AuthMode); err != nil {
		return fmt.Errorf("--auth-mode: %w", err)
	}
	if u, err := url.Parse(c.IAMURL); err != nil || u.Host == "" {
		return fmt.Errorf("--iam-url %q is not an http URL", c.IAMURL)
	}
	if c.ClusterState != "new" && c.ClusterState != "existing" {
		return fmt.Errorf("--initial-cluster-state must be new or existing, not %q", c.ClusterState)
	}
	if !strings.Contains(c.InitialCluster, MemberName(c.NodeID)+"=") {
		return fmt.Errorf("--initial-cluster %q does not name this node (%s)", c.InitialCluster, MemberName(c.NodeID))
	}
	return nil
}

// MemberName is the etcd member name of node id.
func MemberName(id uint64) string { return "node-" + strconv.FormatUint(id, 10) }

// nodeIDOf parses a member name made by MemberName (0 if it is not one).
func nodeIDOf(name string) uint64 {
	n, err := strconv.ParseUint(strings.TrimPrefix(name, "node-"), 10, 64)
	if err != nil || !strings.HasPrefix(name, "node-") {
		return 0
	}
	return n
}
