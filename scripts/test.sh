#!/usr/bin/env bash
# The whole test suite: every package, with -race, on SQLite and PostgreSQL.
# It finds PostgreSQL at RECOURSE_TEST_DATABASE_URL (else DATABASE_URL, else
# the local server at 127.0.0.1:5432, database "test"), starting a local
# cluster if one is installed but stopped, and installs stripe-mock (the
# Stripe API mock the billing tests run against) and Debian's chromium (the
# headless browser the browser tests drive, see scripts/chromium.sh) if they
# are missing. Under CI=true a missing PostgreSQL or browser is a failure,
# never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/postgres.sh
. scripts/chromium.sh

if ! pg_up; then
  if [ "${CI:-}" = "true" ]; then
    echo "test: PostgreSQL is not reachable at $RECOURSE_TEST_DATABASE_URL and CI=true: refusing to skip the PostgreSQL tests." >&2
    echo "test: start PostgreSQL or set RECOURSE_TEST_DATABASE_URL." >&2
    exit 1
  fi
  echo "test: WARNING: PostgreSQL is not reachable at $RECOURSE_TEST_DATABASE_URL; its tests will be skipped." >&2
fi

# stripe-mock v0.180.0 speaks the API of stripe-go v76's era.
STRIPE_MOCK_VERSION=v0.180.0
gobin=$(go env GOBIN); [ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
if [ -z "${RECOURSE_STRIPE_MOCK:-}" ]; then
  if [ ! -x "$gobin/stripe-mock" ] || ! grep -q "stripe-mock@$STRIPE_MOCK_VERSION\|$STRIPE_MOCK_VERSION" <(go version -m "$gobin/stripe-mock" 2>/dev/null); then
    echo "test: installing stripe-mock $STRIPE_MOCK_VERSION" >&2
    go install "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION"
  fi
  export RECOURSE_STRIPE_MOCK="$gobin/stripe-mock"
fi

chromium_ensure

exec go test -race -count=1 -timeout 30m "$@" ./...
