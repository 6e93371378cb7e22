// Package nightlight is NightLight: Prometheus-compatible metrics for the
// whole cloud. It is Prometheus's own TSDB, PromQL engine, scrape and rule
// managers and HTTP API, used as libraries and wired to PhotonCloud: the
// services registered in ChainFire are scraped by themselves, and a
// project-scoped token sees only its project's series.
package nightlight
