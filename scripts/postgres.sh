# Sourced by scripts/test.sh and scripts/bench.sh: find the test PostgreSQL
# (RECOURSE_TEST_DATABASE_URL, else DATABASE_URL, else 127.0.0.1:5432/test),
# starting a local cluster if one is installed but stopped.
# After sourcing, pg_up reports whether it answers.

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
      echo "${0##*/}: starting PostgreSQL cluster $v/main" >&2
      pg_ctlcluster --skip-systemctl-redirect "$v" main start >/dev/null 2>&1 || true
    done
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
