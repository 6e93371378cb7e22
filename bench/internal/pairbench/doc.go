// Package pairbench is the method the commands under bench/ share to compare
// our service with its peer on a shared machine: the targets take turns in
// short interleaved slices, each ratio is taken per cycle from the paired
// slices and judged by its median with a distribution-free confidence
// interval, and CPU per op is sampled beside throughput, because other jobs
// on the machine move throughput and leave CPU per op alone.
//
// What is measured, and how each command reports it, stays in the command;
// this package holds the schedule, the closed-loop workers, the statistics,
// the CPU and machine description, and the command-line plumbing.
package pairbench
