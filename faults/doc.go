// Package faults is the fault suite (`make faults`): the real recourse
// binary run as separate processes on PostgreSQL, fed thousands of signed,
// realistic Stripe events while faults are injected — kill -9 of intake and
// worker processes, PostgreSQL cut for seconds, duplicate storms, reversed
// and shuffled order, two and three replicas, a failing provider, slow,
// oversized and idle connections — and a ledger that must balance at the
// end: every acknowledged event applied exactly once, every action executed
// at most once at the provider, nothing acknowledged and lost.
//
// The suite is all tests; it runs only with RECOURSE_FAULTS=1 (plain
// `go test ./...` compiles it and skips it). See docs/faults.md.
package faults
