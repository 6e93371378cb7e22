package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRun checks the command line's answers that need no running service:
// exit codes and what is printed.
func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		inStdout string
		inStderr string
	}{
		{"no command", nil, nil, 2, "", "usage: photon"},
		{"version", []string{"version"}, nil, 0, "photon ", ""},
		{"help", []string{"help"}, nil, 0, "serve chainfire", ""},
		{"unknown command", []string{"bogus"}, nil, 2, "", `unknown command "bogus"`},
		{"unknown service", []string{"serve", "nosuch"}, nil, 2, "", "services that exist: chainfire"},
		{"unknown flag", []string{"up", "--bogus"}, nil, 2, "", "flag provided but not defined: -bogus"},
		{"stray argument", []string{"up", "extra"}, nil, 2, "", "unexpected arguments: extra"},
		{"up --help lists env names", []string{"up", "--help"}, nil, 0, "", "PHOTON_DATA_DIR"},
		{"bad env value", []string{"serve", "chainfire"}, map[string]string{"PHOTON_NODE_ID": "one"}, 2, "", "PHOTON_NODE_ID"},
		{"bad log level", []string{"serve", "chainfire", "--log-level", "loud"}, nil, 1, "", "--log-level"},
		{"bad cluster state", []string{"serve", "chainfire", "--initial-cluster-state", "maybe"}, nil, 1, "", "initial-cluster-state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.inStdout) {
				t.Errorf("stdout lacks %q: %s", tt.inStdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.inStderr) {
				t.Errorf("stderr lacks %q: %s", tt.inStderr, stderr.String())
			}
		})
	}
}
