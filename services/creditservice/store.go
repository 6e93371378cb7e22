package creditservice

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/state"
)

// The keyspace. Every change to a project's money goes through one etcd
// transaction that compares the wallet's mod revision, so the wallet key
// serializes everything that touches the project's balance or reserved
// amount: reservations, their index and transactions are written with it.
const (
	prefix             = "/photon/creditservice/"
	walletsPrefix      = prefix + "wallets/"         // <project>
	reservationsPrefix = prefix + "reservations/"    // <project>/<id>
	reservationIDs     = prefix + "reservation-ids/" // <id> → project
	activePrefix       = prefix + "active/"          // <project>/<id>: the active reservations
	transactionsPrefix = prefix + "transactions/"    // <project>/<inverted sequence>
	idempotencyPrefix  = prefix + "idempotency/"     // <project>/<key hash>
	quotasPrefix       = prefix + "quotas/"          // <project>
	sweeperElection    = prefix + "sweeper-election"
)

// activeEntry is a reservation in the active index: what the wallet has
// reserved for it, and until when.
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
	wallets      *state.Collection[Wallet]
	reservations *state.Collection[Reservation]
	owners       *state.Collection[reservationOwner]
	active       *state.Collection[activeEntry]
	transactions *state.Collection[Transaction]
	idempotency  *state.Collection[idemRecord]
	quotas       *state.Collection[Quota]
}

func newStore(cli *clientv3.Client) *store {
	return &store{
		cli:          cli,
		wallets:      state.NewCollection[Wallet](cli, walletsPrefix, "wallet"),
		reservations: state.NewCollection[Reservation](cli, reservationsPrefix, "reservation"),
		owners:       state.NewCollection[reservationOwner](cli, reservationIDs, "reservation"),
		active:       state.NewCollection[activeEntry](cli, activePrefix, "active reservation"),
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

// readLedger reads project's wallet and then its active index at the same
// revision. fresh asks for a linearizable read; otherwise the read is
// served locally (serializable), which is safe because the write compares
// the wallet's mod revision: a stale read only costs a retry, which apply
// makes fresh.
func (st *store) readLedger(ctx context.Context, project string, fresh bool) (ledger, error) {
	if err := ctx.Err(); err != nil {
		return ledger{}, state.FromEtcd(err)
	}
	var opts []clientv3.OpOption
	if !fresh {
		opts = append(opts, clientv3.WithSerializable())
	}
	wr, err := st.cli.Get(ctx, st.wallets.Key(project), opts...)
	if err != nil {
		return ledger{}, state.FromEtcd(err)
	}
	if len(wr.Kvs) == 0 {
		if !fresh {
			// A wallet created on another member may not be here yet.
			return st.readLedger(ctx, project, true)
		}
		return ledger{}, apierr.NotFound("wallet", project)
	}
	ar, err := st.cli.Get(ctx, st.active.Key(project+"/"), clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithRev(wr.Header.Revision))
	if err != nil {
		return ledger{}, state.FromEtcd(err)
	}
	l := ledger{active: map[string]activeEntry{}, revision: wr.Header.Revision}
	kv := wr.Kvs[0]
	l.wallet = state.Item[Wallet]{ID: project, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}
	if err := json.Unmarshal(kv.Value, &l.wallet.Value); err != nil {
		return ledger{}, apierr.Wrap(apierr.CodeInternal, err, "stored wallet %q is corrupt", project)
	}
	for _, kv := range ar.Kvs {
		var e activeEntry
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			return ledger{}, apierr.Wrap(apierr.CodeInternal, err, "stored active reservation %q is corrupt", kv.Key)
		}
		l.active[strings.TrimPrefix(string(kv.Key), st.active.Key(project+"/"))] = e
	}
	return l, nil
}

func decodeActive(b []byte) (activeEntry, error) {
	var e activeEntry
	err := json.Unmarshal(b, &e)
	return e, err
}
