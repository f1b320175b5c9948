#!/usr/bin/env bash
# The whole test suite: every package, with -race, on SQLite and PostgreSQL.
# It finds PostgreSQL at RECOURSE_TEST_DATABASE_URL (else DATABASE_URL, else
# the local server at 127.0.0.1:5432, database "test"), starting a local
# cluster if one is installed but stopped, and installs stripe-mock (the
# Stripe API mock the billing tests run against) if it is missing.
# Under CI=true a missing PostgreSQL is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${RECOURSE_TEST_DATABASE_URL:=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}}"
export RECOURSE_TEST_DATABASE_URL
unset DATABASE_URL # the service under test must not inherit it by accident

pg_up() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -d "$RECOURSE_TEST_DATABASE_URL" >/dev/null 2>&1
  else
    local hostport=${RECOURSE_TEST_DATABASE_URL#*@}; hostport=${hostport%%/*}
    (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}") >/dev/null 2>&1
  fi
}

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for v in $(ls /etc/postgresql); do
      echo "test: starting PostgreSQL cluster $v/main" >&2
      pg_ctlcluster --skip-systemctl-redirect "$v" main start >/dev/null 2>&1 || true
    done
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
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

exec go test -race -count=1 -timeout 20m "$@" ./...
