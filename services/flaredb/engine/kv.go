package engine

import (
	"context"
	"errors"
)

// KV is one pair of the KV API.
type KV struct {
	Namespace string
	Key       string
	Value     string
}

// PutKV sets key in namespace of database db (on the leader).
func (n *Node) PutKV(ctx context.Context, db, namespace, key, value string) error {
	_, err := n.write(ctx, Command{DB: db, Statements: []Statement{{
		SQL: `INSERT INTO ` + KVTable + ` (namespace, key, value) VALUES (?, ?, ?)
			ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value`,
		Params: []any{namespace, key, value},
	}}}, true)
	return err
}

// DeleteKV removes key from namespace of database db (on the leader), and
// reports whether it was there.
func (n *Node) DeleteKV(ctx context.Context, db, namespace, key string) (bool, error) {
	res, err := n.write(ctx, Command{DB: db, Statements: []Statement{{
		SQL:    `DELETE FROM ` + KVTable + ` WHERE namespace = ? AND key = ?`,
		Params: []any{namespace, key},
	}}}, true)
	if err != nil {
		return false, err
	}
	return res[0].RowsAffected > 0, nil
}

// GetKV reads key from namespace of database db at consistency c.
func (n *Node) GetKV(ctx context.Context, db string, c Consistency, namespace, key string) (string, bool, error) {
	rows, err := n.Query(ctx, db, c, Statement{
		SQL:    `SELECT value FROM ` + KVTable + ` WHERE namespace = ? AND key = ?`,
		Params: []any{namespace, key},
	})
	if err != nil || len(rows.Rows) == 0 {
		return "", false, err
	}
	v, ok := rows.Rows[0][0].(string)
	if !ok {
		return "", false, errors.New("engine: kv value is not text")
	}
	return v, true, nil
}

// ScanKV returns up to limit pairs of namespace with start <= key < end
// (end "" for no bound), in key order (byte order: the table's BINARY
// collation).
func (n *Node) ScanKV(ctx context.Context, db string, c Consistency, namespace, start, end string, limit int) ([]KV, error) {
	q := `SELECT key, value FROM ` + KVTable + ` WHERE namespace = ? AND key >= ?`
	params := []any{namespace, start}
	if end != "" {
		q += ` AND key < ?`
		params = append(params, end)
	}
	q += ` ORDER BY key LIMIT ?`
	params = append(params, limit)
	rows, err := n.Query(ctx, db, c, Statement{SQL: q, Params: params})
	if err != nil {
		return nil, err
	}
	out := make([]KV, 0, len(rows.Rows))
	for _, r := range rows.Rows {
		k, _ := r[0].(string)
		v, _ := r[1].(string)
		out = append(out, KV{Namespace: namespace, Key: k, Value: v})
	}
	return out, nil
}
