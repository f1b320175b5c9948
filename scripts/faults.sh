#!/usr/bin/env bash
# The fault suite (docs/faults.md): builds the recourse binary, runs it as
# separate processes on PostgreSQL while faults are injected, and prints
# the ledger. It finds PostgreSQL and stripe-mock the way scripts/test.sh
# does; under CI=true a missing one is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/postgres.sh

if ! pg_up; then
  echo "faults: PostgreSQL is not reachable at $RECOURSE_TEST_DATABASE_URL; the fault suite needs it." >&2
  exit 1
fi

STRIPE_MOCK_VERSION=v0.180.0
gobin=$(go env GOBIN); [ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
if [ -z "${RECOURSE_STRIPE_MOCK:-}" ]; then
  if [ ! -x "$gobin/stripe-mock" ] || ! grep -q "stripe-mock@$STRIPE_MOCK_VERSION\|$STRIPE_MOCK_VERSION" <(go version -m "$gobin/stripe-mock" 2>/dev/null); then
    echo "faults: installing stripe-mock $STRIPE_MOCK_VERSION" >&2
    go install "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION"
  fi
  export RECOURSE_STRIPE_MOCK="$gobin/stripe-mock"
fi

export RECOURSE_FAULTS=1
exec go test -count=1 -v -timeout 15m "$@" ./faults
