package creditservice

import (
	"context"
	"fmt"
	"math"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/state"
)

// The keyspace. Every change to a project's money goes through one etcd
// transaction that compares the wallet's mod revision, so the wallet key
// serializes everything that touches the project's balance or reserved
// amount: reservations and transactions are written with it. The wallet's
// record also holds its active reservations, so that what a change reads
// is one key (an index of short-lived keys would leave etcd a tombstone per
// reservation to step over on every read until compaction).
const (
	prefix             = "/photon/creditservice/"
	walletsPrefix      = prefix + "wallets/"         // <project>
	reservationsPrefix = prefix + "reservations/"    // <project>/<id>
	reservationIDs     = prefix + "reservation-ids/" // <id> → project
	transactionsPrefix = prefix + "transactions/"    // <project>/<inverted sequence>
	idempotencyPrefix  = prefix + "idempotency/"     // <project>/<key hash>
	quotasPrefix       = prefix + "quotas/"          // <project>
	sweeperElection    = prefix + "sweeper-election"
)

// walletRecord is a wallet as stored: with its active reservations.
type walletRecord struct {
	Wallet
	Active map[string]activeEntry `json:"active,omitempty"`
}

// maxActive bounds a wallet's active reservations (and so its record's size).
const maxActive = 10_000

// activeEntry is an active reservation in its wallet's record: what the
// wallet has reserved for it, and until when.
type activeEntry struct {
	Amount    int64     `json:"amount"`
	ExpiresAt time.Time `json:"expires_at"`
}

// reservationOwner maps a reservation id to its project.
type reservationOwner struct {
	ProjectID string `json:"project_id"`
}

type store struct {
	cli          *clientv3.Client
	wallets      *state.Collection[walletRecord]
	reservations *state.Collection[Reservation]
	owners       *state.Collection[reservationOwner]
	transactions *state.Collection[Transaction]
	idempotency  *state.Collection[idemRecord]
	quotas       *state.Collection[Quota]
}

func newStore(cli *clientv3.Client) *store {
	return &store{
		cli:          cli,
		wallets:      state.NewCollection[walletRecord](cli, walletsPrefix, "wallet"),
		reservations: state.NewCollection[Reservation](cli, reservationsPrefix, "reservation"),
		owners:       state.NewCollection[reservationOwner](cli, reservationIDs, "reservation"),
		transactions: state.NewCollection[Transaction](cli, transactionsPrefix, "transaction"),
		idempotency:  state.NewCollection[idemRecord](cli, idempotencyPrefix, "idempotency key"),
		quotas:       state.NewCollection[Quota](cli, quotasPrefix, "quota"),
	}
}

// txnKey orders a project's transactions newest first: keys list in
// ascending order, so the sequence is stored inverted.
func txnKey(project string, seq int64) string {
	return fmt.Sprintf("%s/%019d", project, math.MaxInt64-seq)
}

// ledger is one project's wallet and active reservations, read at one
// revision: what a money-moving change starts from.
type ledger struct {
	wallet   state.Item[Wallet]
	active   map[string]activeEntry // reservation id → entry
	revision int64
}

// readLedger reads project's wallet record. fresh asks for a linearizable
// read; otherwise the read is served locally (serializable), which is safe
// because the write compares the wallet's mod revision: a stale read only
// costs a retry, which apply makes fresh.
func (st *store) readLedger(ctx context.Context, project string, fresh bool) (ledger, error) {
	get := st.wallets.GetLocal
	if fresh {
		get = st.wallets.Get
	}
	it, err := get(ctx, project)
	if err != nil {
		return ledger{}, err
	}
	l := ledger{wallet: state.Item[Wallet]{ID: project, Value: it.Value.Wallet, CreateRevision: it.CreateRevision, ModRevision: it.ModRevision},
		active: it.Value.Active}
	if l.active == nil {
		l.active = map[string]activeEntry{}
	}
	return l, nil
}
