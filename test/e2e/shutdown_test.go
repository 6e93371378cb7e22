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
	"syscall"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/testutil"
)

// upProcess is `photon up` on free ports, configured through the
// environment (PHOTON_<FLAG>), as an operator's unit file would.
type upProcess struct {
	cmd    *exec.Cmd
	base   string
	stderr *bytes.Buffer
	done   chan error
}

func startUp(t *testing.T, dataDir string, env []string) *upProcess {
	t.Helper()
	p := &upProcess{stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(testutil.PhotonBinary(t), "up")
	p.cmd.Env = append(os.Environ(), append(env, "PHOTON_DATA_DIR="+dataDir)...)
	var stdout bytes.Buffer
	p.cmd.Stdout, p.cmd.Stderr = &stdout, p.stderr
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PHOTON_CHAINFIRE_HTTP_ADDR="); ok {
			p.base = "http://" + v
		}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("photon up exited: %v\n%s", err, p.stderr)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("photon up not healthy in 60s\n%s", p.stderr)
		}
	}
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
	}
	p := startUp(t, dataDir, env)

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
				resp, err := client.Post(p.base+"/api/v1/kv/"+key+"/put", "application/json", bytes.NewReader(body))
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
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("photon up did not exit within 40s of SIGTERM")
	}
	close(stop)
	wg.Wait()
	if len(acked) < 10 {
		t.Fatalf("only %d writes were acknowledged before SIGTERM: the test proves nothing", len(acked))
	}

	p = startUp(t, dataDir, env)
	have := map[string]string{}
	token := ""
	for {
		resp, err := http.Get(p.base + "/api/v1/kv?prefix=ack-&limit=1000&page_token=" + token)
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
