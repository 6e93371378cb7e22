package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

const pgSchema = `
CREATE TABLE wallets (
	project_id text PRIMARY KEY,
	balance    bigint NOT NULL,
	reserved   bigint NOT NULL DEFAULT 0
);
CREATE TABLE reservations (
	id         bigserial PRIMARY KEY,
	project_id text NOT NULL REFERENCES wallets,
	amount     bigint NOT NULL,
	actual     bigint,
	status     text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE transactions (
	id             bigserial PRIMARY KEY,
	project_id     text NOT NULL REFERENCES wallets,
	amount         bigint NOT NULL,
	type           text NOT NULL,
	reservation_id bigint REFERENCES reservations,
	balance_after  bigint NOT NULL,
	created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_active ON reservations (project_id) WHERE status = 'active';
CREATE INDEX transactions_project ON transactions (project_id, id);
`

// pgSetup creates the schema and the wallets, each with its initial balance
// recorded as a deposit, as CreditService records it.
func pgSetup(ctx context.Context, conn *pgx.Conn, projects []string, initial int64) error {
	if _, err := conn.Exec(ctx, pgSchema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	for _, p := range projects {
		if _, err := conn.Exec(ctx, "INSERT INTO wallets (project_id, balance) VALUES ($1, $2)", p, initial); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "INSERT INTO transactions (project_id, amount, type, balance_after) VALUES ($1, $2, 'deposit', $2)", p, initial); err != nil {
			return err
		}
	}
	return nil
}

var errInsufficient = errors.New("insufficient available credit")

// pgReserve is the operator's reserve: lock the wallet row, check, insert
// the reservation, raise reserved.
func pgReserve(ctx context.Context, conn *pgx.Conn, project string, amount int64) (id int64, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	var balance, reserved int64
	if err = tx.QueryRow(ctx, "SELECT balance, reserved FROM wallets WHERE project_id = $1 FOR UPDATE", project).Scan(&balance, &reserved); err != nil {
		return 0, err
	}
	if balance-reserved < amount {
		return 0, errInsufficient
	}
	if err = tx.QueryRow(ctx, "INSERT INTO reservations (project_id, amount, status) VALUES ($1, $2, 'active') RETURNING id", project, amount).Scan(&id); err != nil {
		return 0, err
	}
	if _, err = tx.Exec(ctx, "UPDATE wallets SET reserved = reserved + $2 WHERE project_id = $1", project, amount); err != nil {
		return 0, err
	}
	return id, tx.Commit(ctx)
}

// pgCommit is the operator's commit: lock the reservation, then its wallet;
// end the reservation, move reserved to spent, record the charge.
func pgCommit(ctx context.Context, conn *pgx.Conn, id, actual int64) (err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	var project, status string
	var amount int64
	if err = tx.QueryRow(ctx, "SELECT project_id, amount, status FROM reservations WHERE id = $1 FOR UPDATE", id).Scan(&project, &amount, &status); err != nil {
		return err
	}
	if status != "active" {
		return fmt.Errorf("reservation %d is %s", id, status)
	}
	if actual > amount {
		return fmt.Errorf("actual %d exceeds reserved %d", actual, amount)
	}
	var balance int64
	if err = tx.QueryRow(ctx, "SELECT balance FROM wallets WHERE project_id = $1 FOR UPDATE", project).Scan(&balance); err != nil {
		return err
	}
	if _, err = tx.Exec(ctx, "UPDATE reservations SET status = 'committed', actual = $2 WHERE id = $1", id, actual); err != nil {
		return err
	}
	if _, err = tx.Exec(ctx, "UPDATE wallets SET reserved = reserved - $2, balance = balance - $3 WHERE project_id = $1", project, amount, actual); err != nil {
		return err
	}
	if _, err = tx.Exec(ctx, "INSERT INTO transactions (project_id, amount, type, reservation_id, balance_after) VALUES ($1, $2, 'charge', $3, $4)",
		project, -actual, id, balance-actual); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// pgCheck checks the ledger invariants of every wallet and that each wallet
// holds exactly the commits the clients saw succeed.
func pgCheck(ctx context.Context, conn *pgx.Conn, commits map[string]int64) (check, error) {
	rows, err := conn.Query(ctx, `
SELECT w.project_id, w.balance, w.reserved,
       (SELECT coalesce(sum(amount), 0) FROM transactions t WHERE t.project_id = w.project_id),
       (SELECT count(*) FROM transactions t WHERE t.project_id = w.project_id AND t.type = 'charge'),
       (SELECT coalesce(sum(amount), 0) FROM reservations r WHERE r.project_id = w.project_id AND r.status = 'active')
FROM wallets w ORDER BY w.project_id`)
	if err != nil {
		return check{}, err
	}
	var c check
	for rows.Next() {
		var w walletState
		if err := rows.Scan(&w.project, &w.balance, &w.reserved, &w.txSum, &w.charges, &w.activeSum); err != nil {
			rows.Close()
			return check{}, err
		}
		w.available = w.balance - w.reserved
		c.add(w, commits)
	}
	rows.Close()
	return c, rows.Err()
}
