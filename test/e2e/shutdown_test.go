package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/testutil"
)

// startUpOnEnv runs `photon up` on free ports configured through the
// environment (PHOTON_<FLAG>), as an operator's unit file would, and
// returns it with its REST base URL.
func startUpOnEnv(t *testing.T, dataDir string, env []string) (*upProcess, string) {
	t.Helper()
	cmd := exec.Command(testutil.PhotonBinary(t), "up")
	// No node agents: they would program and run things on this machine.
	cmd.Env = append(os.Environ(), append(env, "PHOTON_DATA_DIR="+dataDir, "PHOTON_HYPERVISOR=off", "PHOTON_PRISMNET_DATAPLANE=off")...)
	base := ""
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PHOTON_CHAINFIRE_HTTP_ADDR="); ok {
			base = "http://" + v
		}
	}
	p := startUp(t, cmd, func(*upProcess) bool {
		resp, err := http.Get(base + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p, base
}

// TestShutdownKeepsAcknowledgedWrites sends SIGTERM while clients write:
// photon up exits 0, and after a restart every write it acknowledged is
// there.
func TestShutdownKeepsAcknowledgedWrites(t *testing.T) {
	dataDir := t.TempDir()
	env := []string{
		"PHOTON_CHAINFIRE_HTTP_ADDR=" + testutil.FreeAddr(t),
		"PHOTON_CHAINFIRE_GRPC_ADDR=" + testutil.FreeAddr(t),
		"PHOTON_CHAINFIRE_PEER_ADDR=" + testutil.FreeAddr(t),
		"PHOTON_IAM_HTTP_ADDR=" + testutil.FreeAddr(t),
		"PHOTON_CREDITSERVICE_HTTP_ADDR=" + testutil.FreeAddr(t),
		"PHOTON_PRISMNET_HTTP_ADDR=" + testutil.FreeAddr(t),
		"PHOTON_PLASMAVMC_HTTP_ADDR=" + testutil.FreeAddr(t),
		"PHOTON_LIGHTNINGSTOR_ADDR=" + testutil.FreeAddr(t),
	}
	p, base := startUpOnEnv(t, dataDir, env)

	var mu sync.Mutex
	acked := map[string]string{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("ack-%d-%d", w, i)
				body, _ := json.Marshal(map[string]string{"value": key})
				resp, err := client.Post(base+"/api/v1/kv/"+key+"/put", "application/json", bytes.NewReader(body))
				if err != nil {
					return // the server went away: later writes were never acknowledged
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					acked[key] = key
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	p.stop(t)
	close(stop)
	wg.Wait()
	if len(acked) < 10 {
		t.Fatalf("only %d writes were acknowledged before SIGTERM: the test proves nothing", len(acked))
	}

	startUpOnEnv(t, dataDir, env)
	have := map[string]string{}
	token := ""
	for {
		resp, err := http.Get(base + "/api/v1/kv?prefix=ack-&limit=1000&page_token=" + token)
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Data struct {
				Items         []struct{ Key, Value string }
				NextPageToken string `json:"next_page_token"`
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range list.Data.Items {
			have[it.Key] = it.Value
		}
		if token = list.Data.NextPageToken; token == "" {
			break
		}
	}
	for k, v := range acked {
		if have[k] != v {
			t.Errorf("acknowledged write %s lost", k)
		}
	}
	t.Logf("%d acknowledged writes, all present after restart", len(acked))
}
