package plasmavmc

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/state"
)

// What a hypervisor node's agent uses: it registers its node, reads the
// VMs placed on it and writes back what it sees. These run as the node,
// not as a caller: there is no token to check.

// RegisterNode publishes node n on lease (the agent keeps it alive).
func RegisterNode(ctx context.Context, cli *clientv3.Client, n Node, lease clientv3.LeaseID) error {
	op, err := newStore(cli).nodes.PutOp(n.Name, n, lease)
	if err != nil {
		return err
	}
	_, err = state.Commit(ctx, cli, op)
	return err
}

// NodeVMs reads every VM placed on node.
func NodeVMs(ctx context.Context, cli *clientv3.Client, node string) ([]state.Item[VM], error) {
	st := newStore(cli)
	var out []state.Item[VM]
	token := ""
	for {
		page, err := st.vms.List(ctx, "", 1000, token)
		if err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			if it.Value.Node == node {
				out = append(out, it)
			}
		}
		if token = page.NextPageToken; token == "" {
			return out, nil
		}
	}
}

// Report applies fn to the VM at it (as the node last read it) with a
// compare-and-swap: when the owner changed the VM meanwhile, it re-reads
// and applies fn again; fn returns false to write nothing. A VM deleted
// meanwhile is no error.
func Report(ctx context.Context, cli *clientv3.Client, it state.Item[VM], fn func(*VM) bool) (VM, error) {
	st := newStore(cli)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		vm := it.Value
		if !fn(&vm) {
			return vm, nil
		}
		_, err := st.vms.Update(ctx, it.ID, vm, it.ModRevision)
		switch apierr.CodeOf(err) {
		case "":
			return vm, nil
		case apierr.CodeNotFound:
			return vm, nil
		case apierr.CodeConflict:
			if it, err = st.vms.Get(ctx, it.ID); err != nil {
				if apierr.CodeOf(err) == apierr.CodeNotFound {
					return vm, nil
				}
				return vm, err
			}
		default:
			return vm, err
		}
	}
	return it.Value, apierr.New(apierr.CodeUnavailable, "vm %s is changing too fast", it.Value.ID)
}

// FinishDelete removes a deleted VM's record and gives its node the room
// back, in one transaction.
func FinishDelete(ctx context.Context, cli *clientv3.Client, it state.Item[VM]) error {
	st := newStore(cli)
	s := &Service{st: st}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		al, err := st.allocs.Get(ctx, it.Value.Node)
		if err != nil && apierr.CodeOf(err) != apierr.CodeNotFound {
			return err
		}
		ops, err := s.allocOps(it.Value.Node, al, it.Value.VCPUs, it.Value.MemoryMiB, -1)
		if err != nil {
			return err
		}
		vols, err := releaseVolumesOps(ctx, st, it.Value)
		if err != nil {
			return err
		}
		ops = append(ops, vols...)
		ops = append(ops, st.vms.DeleteOp(it.ID, it.ModRevision), st.owners.DeleteAnyOp(it.Value.ID))
		if it.Value.ImageID != "" {
			ops = append(ops, st.users.DeleteAnyOp(it.Value.ImageID+"/"+it.Value.ID))
		}
		_, err = state.Commit(ctx, cli, ops...)
		switch apierr.CodeOf(err) {
		case "":
			return nil
		case apierr.CodeConflict, apierr.CodeAlreadyExists:
			if cur, gerr := st.vms.Get(ctx, it.ID); gerr == nil {
				it = cur
			} else if apierr.CodeOf(gerr) == apierr.CodeNotFound {
				return nil
			}
			continue
		case apierr.CodeNotFound:
			return nil
		default:
			return err
		}
	}
	return apierr.New(apierr.CodeUnavailable, "vm %s is changing too fast", it.Value.ID)
}
