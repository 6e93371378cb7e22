package flaredb

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/photoncloud/photon/services/flaredb/engine"
)

// registerMetrics exposes the node's Raft and apply counters on /metrics.
// commands/entries is the group-commit batching factor.
func registerMetrics(reg prometheus.Registerer, n *engine.Node) {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(
		gauge("flaredb_is_leader", "1 if this node leads its Raft group.", func() float64 {
			if n.IsLeader() {
				return 1
			}
			return 0
		}),
		gauge("flaredb_raft_term", "The node's current Raft term.", func() float64 { return float64(n.Status().Term) }),
		gauge("flaredb_applied_index", "The last Raft log index this replica applied.", func() float64 { return float64(n.Stats().AppliedIndex) }),
		gauge("flaredb_databases", "Databases on this replica (the platform's and one per project written).", func() float64 { return float64(len(n.Databases())) }),
		counter("flaredb_applied_entries_total", "Write entries (group-commit batches) applied since start.", func() float64 { return float64(n.Stats().AppliedEntries) }),
		counter("flaredb_applied_commands_total", "Write commands applied since start, summed over batches.", func() float64 { return float64(n.Stats().AppliedCmds) }),
		counter("flaredb_snapshot_restores_total", "Snapshots installed since start.", func() float64 { return float64(n.Stats().Restores) }),
	)
}
