package e2e

// A Jepsen-style robustness test: concurrent clients hammer a 3-node
// ChainFire cluster over REST while its leader is killed and restarted, and
// porcupine checks that what the clients saw is linearizable.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// kvInput is one operation on a single key: a put of Value, or a get.
type kvInput struct {
	Put   bool
	Key   string
	Value string
}

// kvOutput is what an operation returned. Puts return nothing the model
// looks at; Unknown marks a put whose outcome the client never learned.
type kvOutput struct {
	Found   bool
	Value   string
	Unknown bool
}

// kvModel is a register per key: the history is checked key by key (keys
// are independent), and each key's state is its value, "" while absent
// (no put ever writes ""). A put always succeeds and sets the value; a get
// must return the current value, or "not found" while there is none.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, out, cur := input.(kvInput), output.(kvOutput), state.(string)
		if in.Put {
			return true, in.Value
		}
		if !out.Found {
			return cur == "", cur
		}
		return out.Value == cur, cur
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		switch {
		case in.Put && out.Unknown:
			return fmt.Sprintf("put(%s, %s) -> unknown", in.Key, in.Value)
		case in.Put:
			return fmt.Sprintf("put(%s, %s)", in.Key, in.Value)
		case !out.Found:
			return fmt.Sprintf("get(%s) -> not found", in.Key)
		}
		return fmt.Sprintf("get(%s) -> %s", in.Key, out.Value)
	},
	DescribeState: func(state any) string {
		if state.(string) == "" {
			return "(absent)"
		}
		return state.(string)
	},
}

// history collects the operations of every client, and tallies outcomes.
type history struct {
	start   time.Time
	clients atomic.Int64 // porcupine client IDs handed out
	values  atomic.Int64 // makes every written value unique

	mu     sync.Mutex
	ops    []porcupine.Operation
	counts map[string]int
}

// now is a monotonic timestamp for porcupine.
func (h *history) now() int64 { return int64(time.Since(h.start)) }

// newClientID is a fresh porcupine client: a client whose put's outcome is
// unknown continues as a new client, since that put never ends.
func (h *history) newClientID() int { return int(h.clients.Add(1) - 1) }

func (h *history) record(op porcupine.Operation, outcome string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
	h.counts[outcome]++
}

func (h *history) count(outcome string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[outcome]++
}

// outcome sorts a REST answer into what it tells a client about whether
// its request took effect.
type outcome int

const (
	// succeeded: 2xx, the request took effect.
	succeeded outcome = iota
	// rejected: the request certainly took no effect: a 4xx (the server
	// refused it), or a connection that could not even be dialled (not a
	// byte was sent).
	rejected
	// indeterminate: a timeout, a broken connection, a 5xx (503 included:
	// the proposal may have been committed after the server gave up
	// waiting), or a malformed answer: the request may have taken effect.
	indeterminate
)

func classify(r response, err error) outcome {
	if err != nil {
		var op *net.OpError
		if r.status == 0 && errors.As(err, &op) && op.Op == "dial" {
			return rejected
		}
		return indeterminate
	}
	switch {
	case r.status >= 200 && r.status < 300:
		return succeeded
	case r.status >= 400 && r.status < 500:
		return rejected
	}
	return indeterminate
}

// tally names an answer for the test's statistics.
func tally(kind string, r response, err error) string {
	switch {
	case err != nil && r.status != 0:
		return kind + " malformed answer"
	case err != nil:
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return kind + " dial error"
		}
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "deadline exceeded") {
			return kind + " client timeout"
		}
		return kind + " connection error"
	case r.errCode() != "":
		return fmt.Sprintf("%s %d %s", kind, r.status, r.errCode())
	}
	return fmt.Sprintf("%s %d", kind, r.status)
}

// runClient does random puts and linearizable gets on keys, each through a
// random node, until ctx ends, recording them in h: successful operations
// with their real interval; puts of unknown outcome as never returning (they
// may take effect at any time after their call); definite failures and
// failed gets not at all, since they did not happen or saw nothing.
func runClient(ctx context.Context, c *cluster, h *history, keys []string, timeout time.Duration) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(h.clients.Load())))
	nodes := c.all()
	client := h.newClientID()
	for ctx.Err() == nil {
		nd := nodes[rng.IntN(len(nodes))]
		key := keys[rng.IntN(len(keys))]
		opCtx, cancel := context.WithTimeout(context.Background(), timeout)
		failed := false
		if rng.IntN(2) == 0 {
			in := kvInput{Put: true, Key: key, Value: fmt.Sprintf("v%d", h.values.Add(1))}
			call := h.now()
			r, err := c.putErr(opCtx, nd, key, in.Value)
			ret := h.now()
			name := tally("put", r, err)
			switch classify(r, err) {
			case succeeded:
				h.record(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: kvOutput{}, Return: ret}, name)
			case rejected:
				h.count(name)
				failed = true
			case indeterminate:
				h.record(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: kvOutput{Unknown: true}, Return: math.MaxInt64}, name)
				client = h.newClientID()
				failed = true
			}
		} else {
			in := kvInput{Key: key}
			call := h.now()
			r, err := c.getErr(opCtx, nd, key, "")
			ret := h.now()
			name := tally("get", r, err)
			var kv keyValue
			switch {
			case err == nil && r.status == http.StatusOK && r.decode(&kv) == nil && kv.Key == key:
				h.record(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: kvOutput{Found: true, Value: kv.Value}, Return: ret}, name)
			case err == nil && r.status == http.StatusNotFound && r.errCode() == "NOT_FOUND":
				h.record(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: kvOutput{}, Return: ret}, name)
			default:
				h.count(name)
				failed = true
			}
		}
		cancel()
		if failed {
			// Do not spin on a dead node.
			time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
		}
	}
}

// chaos kills -9 the current leader, waits for the others to elect a new
// one, restarts the killed node on its data dir and lets the cluster settle,
// for as long as a whole round fits before until. It reports how many
// leaders it killed.
func chaos(c *cluster, until time.Time, logf func(string, ...any)) (int, error) {
	const settle = 1500 * time.Millisecond
	kills := 0
	time.Sleep(settle)
	for time.Until(until) > 6*time.Second {
		leader, err := c.waitLeaderErr(c.all(), 20*time.Second)
		if err != nil {
			return kills, fmt.Errorf("before kill %d: %w", kills+1, err)
		}
		if err := c.killProc(leader); err != nil {
			return kills, err
		}
		kills++
		killed := time.Now()
		next, err := c.waitLeaderErr(c.except(leader), 20*time.Second)
		if err != nil {
			return kills, fmt.Errorf("no new leader after killing node %d: %w", leader.id, err)
		}
		logf("chaos: killed leader node %d; node %d leads after %v", leader.id, next.id, time.Since(killed).Round(time.Millisecond))
		time.Sleep(time.Second) // the two survivors serve alone for a while
		if err := c.startProc(leader); err != nil {
			return kills, err
		}
		if err := c.waitReadyErr(leader, 60*time.Second); err != nil {
			return kills, err
		}
		logf("chaos: node %d rejoined %v after its kill", leader.id, time.Since(killed).Round(time.Millisecond))
		time.Sleep(settle)
	}
	return kills, nil
}

// TestLinearizability proves that ChainFire's REST KV API stays
// linearizable under concurrent clients while leaders die: no acknowledged
// put is lost, no read goes back in time or sees a value that was never
// written, whichever node serves it. porcupine searches for a legal order
// of the recorded history; the test also insists that many operations
// succeeded and leaders were really killed, so it cannot pass vacuously.
func TestLinearizability(t *testing.T) {
	const (
		clients       = 8
		workload      = 18 * time.Second
		clientTimeout = 2 * time.Second
		minKills      = 2
		minPuts       = 150
		minGets       = 150
		minValueReads = 100
	)
	keys := []string{"lin/a", "lin/b", "lin/c", "lin/d"}

	c := startCluster(t, 3)
	h := &history{start: time.Now(), counts: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), workload)
	defer cancel()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runClient(ctx, c, h, keys, clientTimeout)
		}()
	}
	var kills int
	var chaosErr error
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		kills, chaosErr = chaos(c, time.Now().Add(workload), t.Logf)
	}()
	wg.Wait()
	<-chaosDone
	took := time.Since(h.start)
	if chaosErr != nil {
		t.Fatalf("chaos: %v", chaosErr)
	}

	h.mu.Lock()
	ops, counts := h.ops, h.counts
	h.mu.Unlock()
	var puts, gets, valueReads, unknown int
	for _, op := range ops {
		in, out := op.Input.(kvInput), op.Output.(kvOutput)
		switch {
		case in.Put && out.Unknown:
			unknown++
		case in.Put:
			puts++
		case out.Found:
			gets++
			valueReads++
		default:
			gets++
		}
	}
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	sort.Strings(names)
	var tallies []string
	for _, name := range names {
		tallies = append(tallies, fmt.Sprintf("%s: %d", name, counts[name]))
	}
	t.Logf("%v of workload, %d leader kills, %d clients (%d porcupine client IDs): %d successful puts, %d puts of unknown outcome, %d successful gets (%d saw a value)",
		took.Round(time.Millisecond), kills, clients, h.clients.Load(), puts, unknown, gets, valueReads)
	t.Logf("answers: %s", strings.Join(tallies, ", "))

	if kills < minKills {
		t.Errorf("only %d leader kills, want at least %d", kills, minKills)
	}
	if puts < minPuts || gets < minGets || valueReads < minValueReads {
		t.Errorf("too little happened to prove anything: %d puts, %d gets, %d of them saw a value; want at least %d, %d, %d",
			puts, gets, valueReads, minPuts, minGets, minValueReads)
	}
	if n := counts["put malformed answer"] + counts["get malformed answer"]; n > 0 {
		t.Errorf("%d answers were not the JSON envelope", n)
	}

	checkStart := time.Now()
	res := porcupine.CheckOperationsTimeout(kvModel, ops, 60*time.Second)
	t.Logf("porcupine: %s for %d operations in %v", res, len(ops), time.Since(checkStart).Round(time.Millisecond))
	if res != porcupine.Ok {
		_, info := porcupine.CheckOperationsVerbose(kvModel, ops, 60*time.Second)
		f, err := os.CreateTemp("", "chainfire-linearizability-*.html")
		if err != nil {
			t.Fatalf("history is %s (and no file for the visualization: %v)", res, err)
		}
		f.Close()
		if err := porcupine.VisualizePath(kvModel, info, f.Name()); err != nil {
			t.Fatalf("history is %s (visualization failed: %v)", res, err)
		}
		t.Fatalf("history is %s, not Ok: see the visualization in %s", res, f.Name())
	}
}

// TestLinearizabilityModel proves the checker above can fail: kvModel with
// porcupine accepts legal histories and rejects stale, invented and lost
// reads, including around puts of unknown outcome.
func TestLinearizabilityModel(t *testing.T) {
	put := func(client int, key, value string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: kvInput{Put: true, Key: key, Value: value}, Output: kvOutput{}, Call: call, Return: ret}
	}
	lost := func(client int, key, value string, call int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: kvInput{Put: true, Key: key, Value: value}, Output: kvOutput{Unknown: true}, Call: call, Return: math.MaxInt64}
	}
	get := func(client int, key, value string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: kvInput{Key: key}, Output: kvOutput{Found: value != "", Value: value}, Call: call, Return: ret}
	}
	cases := []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		{"read after write", []porcupine.Operation{put(0, "a", "1", 0, 10), get(1, "a", "1", 20, 30)}, porcupine.Ok},
		{"concurrent read may miss a write", []porcupine.Operation{put(0, "a", "1", 0, 30), get(1, "a", "", 10, 20)}, porcupine.Ok},
		{"stale read", []porcupine.Operation{put(0, "a", "1", 0, 10), put(0, "a", "2", 20, 30), get(1, "a", "1", 40, 50)}, porcupine.Illegal},
		{"lost write", []porcupine.Operation{put(0, "a", "1", 0, 10), get(1, "a", "", 20, 30)}, porcupine.Illegal},
		{"invented value", []porcupine.Operation{put(0, "a", "1", 0, 10), get(1, "a", "9", 20, 30)}, porcupine.Illegal},
		{"unknown put seen late", []porcupine.Operation{put(0, "a", "1", 0, 10), lost(1, "a", "2", 20), get(2, "a", "1", 30, 40), get(2, "a", "2", 50, 60)}, porcupine.Ok},
		{"unknown put never seen", []porcupine.Operation{put(0, "a", "1", 0, 10), lost(1, "a", "2", 20), get(2, "a", "1", 50, 60)}, porcupine.Ok},
		{"no going back after an unknown put is seen", []porcupine.Operation{put(0, "a", "1", 0, 10), lost(1, "a", "2", 20), get(2, "a", "2", 30, 40), get(2, "a", "1", 50, 60)}, porcupine.Illegal},
		{"keys are independent", []porcupine.Operation{put(0, "a", "1", 0, 10), get(1, "b", "", 20, 30), get(1, "a", "1", 40, 50)}, porcupine.Ok},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperationsTimeout(kvModel, tc.history, 10*time.Second); got != tc.want {
				t.Fatalf("porcupine says %s, want %s", got, tc.want)
			}
		})
	}
}
