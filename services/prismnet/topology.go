package prismnet

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/state"
)

// KeyPrefix is where all of PrismNET's state lives: the agent watches it.
const KeyPrefix = prefix

// Topology is PrismNET's whole desired state at one store revision, as the
// data plane needs it: what every node's agent computes its kernel's plan
// from. Records are keyed by id.
type Topology struct {
	Revision       int64
	VPCs           map[string]VPC
	Subnets        map[string]Subnet
	Ports          map[string]Port
	SecurityGroups map[string]SecurityGroup
	Nodes          map[string]Node
}

// ReadTopology reads the topology at one revision (the first read's), so
// that the agent never sees a port without its subnet.
func ReadTopology(ctx context.Context, cli *clientv3.Client) (*Topology, error) {
	t := &Topology{VPCs: map[string]VPC{}, Subnets: map[string]Subnet{}, Ports: map[string]Port{},
		SecurityGroups: map[string]SecurityGroup{}, Nodes: map[string]Node{}}
	var rev int64
	read := func(pfx string, each func(id string, b []byte) error) error {
		opts := []clientv3.OpOption{clientv3.WithPrefix()}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := cli.Get(ctx, pfx, opts...)
		if err != nil {
			return state.FromEtcd(err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			k := strings.TrimPrefix(string(kv.Key), pfx)
			if err := each(k[strings.LastIndexByte(k, '/')+1:], kv.Value); err != nil {
				return apierr.Wrap(apierr.CodeInternal, err, "decoding %s", kv.Key)
			}
		}
		return nil
	}
	err := firstErr(
		read(vpcsPrefix, func(id string, b []byte) error {
			return decodeInto(b, t.VPCs, id, func(r vpcRecord) VPC { return r.VPC })
		}),
		read(subnetsPrefix, func(id string, b []byte) error { return decodeInto(b, t.Subnets, id, same[Subnet]) }),
		read(portsPrefix, func(id string, b []byte) error { return decodeInto(b, t.Ports, id, same[Port]) }),
		read(sgsPrefix, func(id string, b []byte) error { return decodeInto(b, t.SecurityGroups, id, same[SecurityGroup]) }),
		read(nodesPrefix, func(id string, b []byte) error { return decodeInto(b, t.Nodes, id, same[Node]) }),
	)
	if err != nil {
		return nil, err
	}
	t.Revision = rev
	return t, nil
}

func same[T any](v T) T { return v }

func decodeInto[R, T any](b []byte, into map[string]T, id string, conv func(R) T) error {
	var r R
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	into[id] = conv(r)
	return nil
}

// RegisterNode publishes node n on lease (the agent keeps the lease alive;
// when it stops, the node's record goes with it).
func RegisterNode(ctx context.Context, cli *clientv3.Client, n Node, lease clientv3.LeaseID) error {
	st := newStore(cli)
	op, err := st.nodes.PutOp(n.Name, n, lease)
	if err != nil {
		return err
	}
	_, err = state.Commit(ctx, cli, op)
	return err
}

// ReportPortStatus sets a bound port's status as the agent of host found
// it, if the port is still bound to that device on that host (a binding
// changed meanwhile is the next reconcile's business). It writes nothing
// when the status is already so.
func ReportPortStatus(ctx context.Context, cli *clientv3.Client, p Port, host, status, reason string) error {
	st := newStore(cli)
	it, err := st.ports.Get(ctx, p.ProjectID+"/"+p.ID)
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	cur := it.Value
	if cur.Binding == nil || p.Binding == nil || cur.Binding.Host != host || cur.Binding.IfName != p.Binding.IfName ||
		cur.Binding.InterfaceType != p.Binding.InterfaceType {
		return nil
	}
	if cur.Status == status && cur.StatusReason == reason {
		return nil
	}
	cur.Status, cur.StatusReason = status, reason
	_, err = st.ports.Update(ctx, it.ID, cur, it.ModRevision)
	if c := apierr.CodeOf(err); c == apierr.CodeConflict || c == apierr.CodeNotFound {
		return nil // changed meanwhile: the next reconcile sees it
	}
	return err
}

// nodeTTL is how long a node's record outlives its agent's last keepalive.
const nodeTTL = 10 * time.Second

// NodeTTL is the lease TTL an agent registers its node with.
func NodeTTL() time.Duration { return nodeTTL }
