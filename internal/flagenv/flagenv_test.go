package flagenv

import (
	"flag"
	"io"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"default", nil, nil, "./data"},
		{"env", nil, map[string]string{"PHOTON_DATA_DIR": "/env"}, "/env"},
		{"flag beats env", []string{"--data-dir", "/flag"}, map[string]string{"PHOTON_DATA_DIR": "/env"}, "/flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			dir := fs.String("data-dir", "./data", "")
			if err := Parse(fs, tt.args); err != nil {
				t.Fatal(err)
			}
			if *dir != tt.want {
				t.Errorf("data-dir = %q, want %q", *dir, tt.want)
			}
		})
	}
}

func TestParseBadEnv(t *testing.T) {
	t.Setenv("PHOTON_NODE_ID", "not-a-number")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Uint64("node-id", 1, "")
	if err := Parse(fs, nil); err == nil {
		t.Fatal("a malformed PHOTON_NODE_ID was accepted")
	}
	if got := EnvName("advertise-peer-url"); got != "PHOTON_ADVERTISE_PEER_URL" {
		t.Errorf("EnvName = %q", got)
	}
}
