// Package archtest holds only a test: it guards the dependency graph, so
// that domain code stays free of transports and packages depend only in the
// direction docs/architecture.md describes.
package archtest
