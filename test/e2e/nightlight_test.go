package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// nlQuery is an instant query against NightLight (tokenless: loopback
// trust), returning job/instance → value.
func nlQuery(t *testing.T, s *upStack, q string, at time.Time) map[string]string {
	t.Helper()
	u := "http://" + s.nlAddr + "/api/v1/query?" + url.Values{"query": {q}, "time": {fmt.Sprint(float64(at.UnixMilli()) / 1000)}}.Encode()
	resp, err := s.hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("query %q: %d %v", q, resp.StatusCode, err)
	}
	out := map[string]string{}
	for _, s := range r.Data.Result {
		out[s.Metric["job"]+"/"+s.Metric["k"]] = fmt.Sprint(s.Value[1])
	}
	return out
}

// TestNightLightUpAndKill9: after `photon up`, `up` is 1 for every
// service; remote-written samples acknowledged before a kill -9 are there
// after the restart (the WAL), as they would be in Prometheus.
func TestNightLightUpAndKill9(t *testing.T) {
	s := startUpStack(t, "--nightlight-scrape-interval", "1s")
	deadline := time.Now().Add(30 * time.Second)
	want := []string{"chainfire", "flaredb", "iam", "creditservice", "prismnet", "plasmavmc", "lightningstor", "nightlight"}
	for {
		up := nlQuery(t, s, "up", time.Now())
		missing := []string{}
		for _, job := range want {
			if up[job+"/"] != "1" {
				missing = append(missing, job)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("up lacks %v: %v", missing, up)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// 50 batches of remote write, each acknowledged, then kill -9.
	base := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	for i := 0; i < 50; i++ {
		wr := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "kill_test"}, {Name: "k", Value: "v"}},
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: base.Add(time.Duration(i) * time.Second).UnixMilli()}},
		}}}
		raw, err := wr.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", "http://"+s.nlAddr+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := s.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("remote write %d: %d %s", i, resp.StatusCode, strings.TrimSpace(string(body)))
		}
	}
	if err := s.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.proc.done
	s.hc.CloseIdleConnections()
	s.start(t)
	last := base.Add(49 * time.Second)
	if got := nlQuery(t, s, "kill_test", last); got["/v"] != "49" {
		t.Fatalf("the last acknowledged sample after kill -9 and restart: %v", got)
	}
	if got := nlQuery(t, s, "count_over_time(kill_test[60s])", last); got["/v"] != "50" {
		t.Fatalf("samples kept across kill -9: %v, want 50", got)
	}
}
