package engine

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Statement is one SQL statement with its parameters: Params bind ?, ?NNN
// and $NNN by position; Named binds :name, @name and $name (keys without the
// prefix). Values may be nil, bool, any Go integer or float, string, []byte
// or json.Number.
type Statement struct {
	SQL    string
	Params []any
	Named  map[string]any
	// Rows asks a write for the rows it returns (a SELECT inside a
	// transaction, or INSERT … RETURNING) instead of its counts.
	Rows bool
}

// Command is a list of statements applied to database DB as one
// transaction: all or nothing.
type Command struct {
	DB         string
	Statements []Statement
}

// Result is the outcome of one write statement: its counts, or its rows
// when the statement asked for them.
type Result struct {
	RowsAffected int64
	LastInsertID int64
	Rows         *Rows
}

// Rows is a query's answer. Values are nil, int64, float64, string or []byte.
type Rows struct {
	Columns []string
	Types   []string // declared column types, "" for expressions
	Rows    [][]any
}

// Consistency chooses how fresh a read must be.
type Consistency int

// Read consistency levels.
const (
	// Linearizable reads see every write acknowledged before the read began:
	// the leader confirms it still leads (one heartbeat round) and waits
	// until it has applied everything committed.
	Linearizable Consistency = iota
	// Lease reads trust the leader's lease (raft steps a leader down after
	// LeaderLeaseTimeout without a quorum): no round trip, stale by at most
	// that long during a partition.
	Lease
	// Stale reads answer from the local replica, leader or not.
	Stale
)

// String returns the name used in requests.
func (c Consistency) String() string {
	switch c {
	case Linearizable:
		return "linearizable"
	case Lease:
		return "lease"
	case Stale:
		return "stale"
	}
	return "Consistency(" + strconv.Itoa(int(c)) + ")"
}

// ParseConsistency maps a request value to a level; "" is Linearizable.
func ParseConsistency(s string) (Consistency, error) {
	switch strings.ToLower(s) {
	case "", "linearizable", "strong":
		return Linearizable, nil
	case "lease", "weak":
		return Lease, nil
	case "stale", "none":
		return Stale, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrBadConsistency, s)
}

// Wire format of a Raft entry: one version byte, then JSON. Values carry an
// explicit type so an integer never comes back as a float on a follower.
const entryVersion = 1

type wireBatch struct {
	Cmds []json.RawMessage `json:"c"`
}

type wireCmd struct {
	DB    string     `json:"d,omitempty"`
	Sys   bool       `json:"y,omitempty"` // the engine's own statements (KV): no user policy
	Stmts []wireStmt `json:"s,omitempty"`
	Node  *nodeInfo  `json:"n,omitempty"` // a leader publishing its addresses (platform DB)
}

type wireStmt struct {
	SQL  string    `json:"q"`
	Args []wireArg `json:"a,omitempty"`
	Rows bool      `json:"r,omitempty"`
}

// args are the statement's arguments as the driver binds them.
func (st wireStmt) args() []any {
	args := make([]any, len(st.Args))
	for k, a := range st.Args {
		if a.Name != "" {
			args[k] = sql.Named(a.Name, a.value())
		} else {
			args[k] = a.value()
		}
	}
	return args
}

// wireArg types.
const (
	argNull  = 'n'
	argInt   = 'i'
	argFloat = 'f' // I holds the IEEE 754 bits
	argText  = 's'
	argBlob  = 'b'
)

type wireArg struct {
	Name string `json:"k,omitempty"`
	T    byte   `json:"t"`
	I    int64  `json:"i,omitempty"`
	S    string `json:"s,omitempty"`
	B    []byte `json:"b,omitempty"`
}

// nodeInfo is what a new leader replicates about itself so followers can
// forward to its HTTP address.
type nodeInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft"`
	HTTPAddr string `json:"http"`
}

func encodeCommand(c Command, sys bool) ([]byte, error) {
	if len(c.Statements) == 0 {
		return nil, ErrEmpty
	}
	if err := CheckDatabase(c.DB); err != nil {
		return nil, err
	}
	w := wireCmd{DB: c.DB, Sys: sys, Stmts: make([]wireStmt, len(c.Statements))}
	for i, s := range c.Statements {
		if strings.TrimSpace(s.SQL) == "" {
			return nil, fmt.Errorf("statement %d: %w", i, ErrEmpty)
		}
		args, err := wireArgs(s)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", i, err)
		}
		w.Stmts[i] = wireStmt{SQL: s.SQL, Args: args, Rows: s.Rows}
	}
	return json.Marshal(w)
}

func wireArgs(s Statement) ([]wireArg, error) {
	if len(s.Params)+len(s.Named) == 0 {
		return nil, nil
	}
	out := make([]wireArg, 0, len(s.Params)+len(s.Named))
	for _, v := range s.Params {
		a, err := toWire(v)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	names := make([]string, 0, len(s.Named))
	for k := range s.Named {
		names = append(names, k)
	}
	sort.Strings(names) // deterministic entry bytes
	for _, k := range names {
		name := strings.TrimLeft(k, ":@$")
		if name == "" {
			return nil, fmt.Errorf("%w: empty parameter name", ErrBadParam)
		}
		a, err := toWire(s.Named[k])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		a.Name = name
		out = append(out, a)
	}
	return out, nil
}

func toWire(v any) (wireArg, error) {
	switch x := v.(type) {
	case nil:
		return wireArg{T: argNull}, nil
	case bool:
		if x {
			return wireArg{T: argInt, I: 1}, nil
		}
		return wireArg{T: argInt, I: 0}, nil
	case int:
		return wireArg{T: argInt, I: int64(x)}, nil
	case int8:
		return wireArg{T: argInt, I: int64(x)}, nil
	case int16:
		return wireArg{T: argInt, I: int64(x)}, nil
	case int32:
		return wireArg{T: argInt, I: int64(x)}, nil
	case int64:
		return wireArg{T: argInt, I: x}, nil
	case uint8:
		return wireArg{T: argInt, I: int64(x)}, nil
	case uint16:
		return wireArg{T: argInt, I: int64(x)}, nil
	case uint32:
		return wireArg{T: argInt, I: int64(x)}, nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return wireArg{}, fmt.Errorf("%w: %d overflows int64", ErrBadParam, x)
		}
		return wireArg{T: argInt, I: int64(x)}, nil
	case uint64:
		if x > math.MaxInt64 {
			return wireArg{}, fmt.Errorf("%w: %d overflows int64", ErrBadParam, x)
		}
		return wireArg{T: argInt, I: int64(x)}, nil
	case float32:
		return floatArg(float64(x))
	case float64:
		return floatArg(x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return wireArg{T: argInt, I: i}, nil
		}
		f, err := x.Float64()
		if err != nil {
			return wireArg{}, fmt.Errorf("%w: number %q", ErrBadParam, x.String())
		}
		return floatArg(f)
	case string:
		return wireArg{T: argText, S: x}, nil
	case []byte:
		return wireArg{T: argBlob, B: bytes.Clone(x)}, nil
	}
	return wireArg{}, fmt.Errorf("%w: type %T", ErrBadParam, v)
}

func floatArg(f float64) (wireArg, error) {
	if math.IsNaN(f) {
		return wireArg{}, fmt.Errorf("%w: NaN", ErrBadParam)
	}
	return wireArg{T: argFloat, I: int64(math.Float64bits(f))}, nil
}

// value turns a wire argument back into what the driver binds.
func (a wireArg) value() any {
	switch a.T {
	case argInt:
		return a.I
	case argFloat:
		return math.Float64frombits(uint64(a.I))
	case argText:
		return a.S
	case argBlob:
		if a.B == nil {
			return []byte{}
		}
		return a.B
	}
	return nil
}

// encodeBatch joins already-encoded commands into one Raft entry.
func encodeBatch(cmds [][]byte) []byte {
	n := 8
	for _, c := range cmds {
		n += len(c) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, entryVersion)
	b = append(b, `{"c":[`...)
	for i, c := range cmds {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, c...)
	}
	return append(b, "]}"...)
}

func decodeBatch(data []byte) ([]wireCmd, error) {
	if len(data) == 0 || data[0] != entryVersion {
		return nil, fmt.Errorf("unknown entry version")
	}
	var wb wireBatch
	if err := json.Unmarshal(data[1:], &wb); err != nil {
		return nil, err
	}
	out := make([]wireCmd, len(wb.Cmds))
	for i, raw := range wb.Cmds {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
