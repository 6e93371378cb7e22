package prismnet

import (
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/state"
)

// The keyspace. Resources are stored under their project, so that a
// project's list is one range read; owners maps every id to its org and
// project (which never change). The index prefixes exist so that a delete
// can refuse, inside its own transaction (state.NoneUnderOp), while
// something still depends on what it deletes; ipam and macs hold one key
// per address handed out, created in the port's transaction, so that no
// address is ever handed out twice.
const (
	prefix         = "/photon/prismnet/"
	vpcsPrefix     = prefix + "vpcs/"            // <project>/<vpc>
	subnetsPrefix  = prefix + "subnets/"         // <project>/<subnet>
	portsPrefix    = prefix + "ports/"           // <project>/<port>
	sgsPrefix      = prefix + "security-groups/" // <project>/<group>
	ownersPrefix   = prefix + "owners/"          // <id> → org, project
	defaultsPrefix = prefix + "default-sg/"      // <project> → the default group's id
	vpcSubnets     = prefix + "index/vpc-subnets/"
	subnetPorts    = prefix + "index/subnet-ports/"
	sgPorts        = prefix + "index/sg-ports/"
	ipamPrefix     = prefix + "ipam/"     // <subnet>/<ip> → port
	macsPrefix     = prefix + "macs/"     // <mac> → port
	vnisPrefix     = prefix + "vnis/"     // <vni> → vpc
	nodesPrefix    = prefix + "nodes/"    // <host> → Node, on the agent's lease
	bindingsPrefix = prefix + "bindings/" // <host>/<ifname> → port
)

// vpcRecord is a VPC as stored, with its subnets' ranges: subnet creation
// updates it with a compare-and-swap, which serializes the overlap check of
// one VPC's subnets.
type vpcRecord struct {
	VPC
	Subnets map[string]string `json:"subnets,omitempty"` // subnet id → cidr
}

// owner is who a resource belongs to.
type owner struct {
	OrgID     string `json:"org_id"`
	ProjectID string `json:"project_id"`
}

// ref points at a resource (an index entry, an address's holder).
type ref struct {
	ID string `json:"id,omitempty"`
}

type store struct {
	cli         *clientv3.Client
	vpcs        *state.Collection[vpcRecord]
	subnets     *state.Collection[Subnet]
	ports       *state.Collection[Port]
	sgs         *state.Collection[SecurityGroup]
	owners      *state.Collection[owner]
	defaults    *state.Collection[ref]
	vpcSubnets  *state.Collection[ref]
	subnetPorts *state.Collection[ref]
	sgPorts     *state.Collection[ref]
	ipam        *state.Collection[ref]
	macs        *state.Collection[ref]
	vnis        *state.Collection[ref]
	nodes       *state.Collection[Node]
	bindings    *state.Collection[ref]
}

// The kinds ALREADY_EXISTS names for address keys, to tell a taken
// address (retry another) from anything else.
const (
	kindIP      = "ip address"
	kindMAC     = "mac address"
	kindDefault = "default security group"
	kindVNI     = "vni"
	kindBinding = "binding"
)

func newStore(cli *clientv3.Client) *store {
	return &store{
		cli:         cli,
		vpcs:        state.NewCollection[vpcRecord](cli, vpcsPrefix, "vpc"),
		subnets:     state.NewCollection[Subnet](cli, subnetsPrefix, "subnet"),
		ports:       state.NewCollection[Port](cli, portsPrefix, "port"),
		sgs:         state.NewCollection[SecurityGroup](cli, sgsPrefix, "security group"),
		owners:      state.NewCollection[owner](cli, ownersPrefix, "resource"),
		defaults:    state.NewCollection[ref](cli, defaultsPrefix, kindDefault),
		vpcSubnets:  state.NewCollection[ref](cli, vpcSubnets, "subnet index"),
		subnetPorts: state.NewCollection[ref](cli, subnetPorts, "port index"),
		sgPorts:     state.NewCollection[ref](cli, sgPorts, "port index"),
		ipam:        state.NewCollection[ref](cli, ipamPrefix, kindIP),
		macs:        state.NewCollection[ref](cli, macsPrefix, kindMAC),
		vnis:        state.NewCollection[ref](cli, vnisPrefix, kindVNI),
		nodes:       state.NewCollection[Node](cli, nodesPrefix, "node"),
		bindings:    state.NewCollection[ref](cli, bindingsPrefix, kindBinding),
	}
}
