package plasmavmc

import (
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/state"
)

// The keyspace. VMs are stored under their project, so that a project's
// list is one range read; owners maps a VM id to its project; nodes hold
// each hypervisor's capacity (on its agent's lease) and allocs what is
// placed on it, changed in the same transaction as the VMs it counts, so
// that two creates can never both take the last room on a node.
const (
	prefix       = "/photon/plasmavmc/"
	vmsPrefix    = prefix + "vms/"           // <project>/<vm>
	ownersPrefix = prefix + "owners/"        // <vm> → project
	nodesPrefix  = prefix + "nodes/"         // <node> → Node, on its agent's lease
	allocPrefix  = prefix + "alloc/"         // <node> → what its VMs take
	imagesPrefix = prefix + "images/"        // <project>/<image>
	imgOwners    = prefix + "image-owners/"  // <image> → project
	imgNames     = prefix + "image-names/"   // <project>/<name> → image
	imgUsers     = prefix + "image-vms/"     // <image>/<vm>: the image is in use
	volsPrefix   = prefix + "volumes/"       // <project>/<volume>
	volOwners    = prefix + "volume-owners/" // <volume> → project
)

// KeyPrefix is where all of PlasmaVMC's state lives.
const KeyPrefix = prefix

type owner struct {
	OrgID     string `json:"org_id"`
	ProjectID string `json:"project_id"`
}

// alloc is what a node's VMs take of it.
type alloc struct {
	VCPUs     int `json:"vcpus"`
	MemoryMiB int `json:"memory_mib"`
	VMs       int `json:"vms"`
}

type store struct {
	cli    *clientv3.Client
	vms    *state.Collection[VM]
	owners *state.Collection[owner]
	nodes  *state.Collection[Node]
	allocs *state.Collection[alloc]
	images *state.Collection[Image]
	imgOwn *state.Collection[owner]
	names  *state.Collection[ref]
	users  *state.Collection[ref]
	vols   *state.Collection[Volume]
	volOwn *state.Collection[owner]
}

// ref points at a resource.
type ref struct {
	ID string `json:"id,omitempty"`
}

func newStore(cli *clientv3.Client) *store {
	return &store{
		cli:    cli,
		vms:    state.NewCollection[VM](cli, vmsPrefix, "vm"),
		owners: state.NewCollection[owner](cli, ownersPrefix, "vm"),
		nodes:  state.NewCollection[Node](cli, nodesPrefix, "node"),
		allocs: state.NewCollection[alloc](cli, allocPrefix, "node allocation"),
		images: state.NewCollection[Image](cli, imagesPrefix, "image"),
		imgOwn: state.NewCollection[owner](cli, imgOwners, "image"),
		names:  state.NewCollection[ref](cli, imgNames, "image name"),
		users:  state.NewCollection[ref](cli, imgUsers, "image use"),
		vols:   state.NewCollection[Volume](cli, volsPrefix, "volume"),
		volOwn: state.NewCollection[owner](cli, volOwners, "volume"),
	}
}
