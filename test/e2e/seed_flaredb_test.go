package e2e

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// The seed's FlareDB examples (section 2), as the seed writes them.
// TestSeedFlareDB checks each is verbatim in docs/seed/photoncloud-seed.md
// before running it.
const (
	seedFDBHealth = `curl http://localhost:8082/health`
	seedFDBPut    = `curl -X PUT http://localhost:8082/api/v1/kv/config:db_version \
-H "Content-Type: application/json" \
-d '{
"value": "1.0.0",
"namespace": "system"
}'`
	seedFDBGet  = `curl "http://localhost:8082/api/v1/kv/config:db_version?namespace=system"`
	seedFDBScan = `curl "http://localhost:8082/api/v1/scan?start=config:&end=config;&&namespace=system"`
	seedFDBSQL  = `# Note: SQL endpoint is placeholder - use gRPC for full SQL functionality
curl -X POST http://localhost:8082/api/v1/sql \
-H "Content-Type: application/json" \
-d '{
"query": "SELECT * FROM users WHERE id = 123"
}'`
	seedFDBTables = `# Note: Placeholder endpoint - use gRPC for full functionality
curl http://localhost:8082/api/v1/tables`

	// fdbURL is FlareDB's REST base inside the namespace, for set-up
	// requests that are not seed examples.
	fdbURL = "http://localhost:8082"
)

// TestSeedFlareDB replays the seed's FlareDB examples — section 2: health,
// KV put, get and range scan, SQL and the table list — with curl against
// `photon up` on the seed's ports, in a network namespace of its own (as
// TestSeedChainFire; the seed tests never run at once: none is parallel),
// then restarts it and checks the key and the row survived.
func TestSeedFlareDB(t *testing.T) {
	needSeedTools(t)
	seed := readSeed(t)
	ns := newSeedNS(t)
	dataDir := t.TempDir()
	photon := startSeedPhoton(t, ns, dataDir)

	// setup sends a request that is not a seed example and requires 200.
	setup := func(t *testing.T, method, path, body string) {
		t.Helper()
		if status, out := nsRequest(t, ns, method, fdbURL+path, body); status != http.StatusOK {
			t.Fatalf("set-up %s %s %s: %d %s", method, path, body, status, out)
		}
	}
	// wantPair checks a KV answer is exactly the seed's documented shape.
	wantPair := func(t *testing.T, what string, r seedResult, key, value, namespace string) {
		t.Helper()
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		want := map[string]any{"key": key, "value": value, "namespace": namespace}
		if !reflect.DeepEqual(data, want) {
			t.Errorf("%s: data %v, want %v", what, data, want)
		}
	}
	// wantUser123 checks the seed's SQL example returned exactly the row
	// the set-up inserted.
	wantUser123 := func(t *testing.T, r seedResult) {
		t.Helper()
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		want := map[string]any{
			"columns": []any{"id", "name", "email"},
			"types":   []any{"INTEGER", "TEXT", "TEXT"},
			"rows":    []any{[]any{float64(123), "alice", "alice@example.com"}},
		}
		if !reflect.DeepEqual(data, want) {
			t.Errorf("SQL data %v, want %v", data, want)
		}
	}

	t.Run("health", func(t *testing.T) {
		r := replay(t, ns, seed, seedFDBHealth)
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		if data["status"] != "ok" || data["service"] != "flaredb" {
			t.Errorf("health data = %v", data)
		}
	})
	t.Run("put", func(t *testing.T) {
		r := replay(t, ns, seed, seedFDBPut)
		wantPair(t, "put", r, "config:db_version", "1.0.0", "system")
	})
	t.Run("get", func(t *testing.T) {
		r := replay(t, ns, seed, seedFDBGet)
		wantPair(t, "get", r, "config:db_version", "1.0.0", "system")
	})
	t.Run("range scan", func(t *testing.T) {
		// Keys around the range [config:, config;): one in it, ones just
		// outside either end, and one in it but in another namespace.
		setup(t, http.MethodPut, "/api/v1/kv/config:zz", `{"value": "last", "namespace": "system"}`)
		setup(t, http.MethodPut, "/api/v1/kv/configz", `{"value": "after", "namespace": "system"}`)
		setup(t, http.MethodPut, "/api/v1/kv/config", `{"value": "before", "namespace": "system"}`)
		setup(t, http.MethodPut, "/api/v1/kv/config:other", `{"value": "elsewhere", "namespace": "default"}`)
		r := replay(t, ns, seed, seedFDBScan)
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		want := map[string]any{"items": []any{
			map[string]any{"key": "config:db_version", "value": "1.0.0", "namespace": "system"},
			map[string]any{"key": "config:zz", "value": "last", "namespace": "system"},
		}}
		if !reflect.DeepEqual(data, want) {
			t.Errorf("scan data %v, want exactly the two config: keys of system: %v", data, want)
		}
	})
	t.Run("sql", func(t *testing.T) {
		setup(t, http.MethodPost, "/api/v1/sql",
			`{"query": "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT)"}`)
		setup(t, http.MethodPost, "/api/v1/sql", `{"statements": [
			{"query": "INSERT INTO users (id, name, email) VALUES (?, ?, ?)", "params": [123, "alice", "alice@example.com"]},
			{"query": "INSERT INTO users (id, name, email) VALUES (?, ?, ?)", "params": [124, "bob", "bob@example.com"]}]}`)
		wantUser123(t, replay(t, ns, seed, seedFDBSQL))
	})
	t.Run("tables", func(t *testing.T) {
		r := replay(t, ns, seed, seedFDBTables)
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		tables, ok := data["tables"].([]any)
		if !ok {
			t.Fatalf("no tables array: %s", r.stdout)
		}
		found := false
		for _, tb := range tables {
			m, _ := tb.(map[string]any)
			name, _ := m["name"].(string)
			if strings.HasPrefix(name, "_flaredb_") || strings.HasPrefix(name, "sqlite_") {
				t.Errorf("the list shows an engine table: %v", m)
			}
			if name == "users" {
				found = true
				if m["type"] != "table" || len(m) != 2 {
					t.Errorf("users entry %v, want {name: users, type: table}", m)
				}
			}
		}
		if !found {
			t.Errorf("tables %v lack users", tables)
		}
	})

	// A clean stop and a second `photon up` on the same data dir keep the
	// key and the rows.
	photon.stop(t)
	startSeedPhoton(t, ns, dataDir)
	wantPair(t, "get after restart", replay(t, ns, seed, seedFDBGet), "config:db_version", "1.0.0", "system")
	wantUser123(t, replay(t, ns, seed, seedFDBSQL))
	// The restarted node still takes writes (its group of one elected it).
	status, out := nsRequest(t, ns, http.MethodPut, fdbURL+"/api/v1/kv/config:db_version", `{"value": "1.0.1", "namespace": "system"}`)
	var env envelope
	if status != http.StatusOK || json.Unmarshal([]byte(out), &env) != nil || env.Error != nil {
		t.Fatalf("put after restart: %d %s", status, out)
	}
	wantPair(t, "get after the second put", replay(t, ns, seed, seedFDBGet), "config:db_version", "1.0.1", "system")
}
