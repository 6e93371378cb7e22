package procs

import (
	"slices"
	"testing"
)

func TestServerEnv(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		strip   []string
		want    []string
	}{
		{"keeps the rest", []string{"PATH=/bin", "HOME=/root"}, nil, []string{"PATH=/bin", "HOME=/root"}},
		{"drops the runtime's tuning", []string{"GOGC=400", "GOMEMLIMIT=1GiB", "GOMAXPROCS=1", "GODEBUG=x=1", "GOPATH=/go"}, nil, []string{"GOPATH=/go"}},
		{"drops photon's configuration", []string{"PHOTON_DATA_DIR=/x", "PHOTONX=1"}, nil, []string{"PHOTONX=1"}},
		{"drops the given prefixes", []string{"ETCD_NAME=a", "ETCDCTL_API=3", "PATH=/bin"}, []string{"ETCD_"}, []string{"ETCDCTL_API=3", "PATH=/bin"}},
		{"never nil, so the child does not inherit ours", nil, nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ServerEnv(tt.environ, tt.strip...)
			if got == nil || !slices.Equal(got, tt.want) {
				t.Errorf("ServerEnv(%v, %v) = %#v, want %#v", tt.environ, tt.strip, got, tt.want)
			}
		})
	}
}
