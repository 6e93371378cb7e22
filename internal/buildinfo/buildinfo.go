// Package buildinfo says which build of photon is running.
package buildinfo

// Version is set at link time (-ldflags "-X …buildinfo.Version=v1.2.3").
var Version = "0.1.0-dev"
