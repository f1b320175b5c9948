# Sourced by scripts/test.sh: finds or installs the headless Chromium the
# browser tests (internal/browsertest) drive, and exports RECOURSE_CHROMIUM.
#
# An explicit RECOURSE_CHROMIUM wins; else `chromium` (or chromium-browser)
# in PATH; else Debian's `chromium` package is installed with apt-get (through
# sudo when not root). Under CI=true a browser that cannot be installed is a
# failure; elsewhere the browser tests skip and say why.

chromium_find() {
  local c
  for c in "${RECOURSE_CHROMIUM:-}" chromium chromium-browser; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

chromium_install() {
  command -v apt-get >/dev/null 2>&1 || { echo "test: apt-get not found; cannot install chromium" >&2; return 1; }
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "test: not root and no sudo; cannot install chromium" >&2; return 1; }
    sudo="sudo -n"
  fi
  echo "test: installing Debian's chromium for the browser tests (apt-get)" >&2
  # A failing mirror in `update` need not stop the install: the lists it
  # already has may do.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 ||
    echo "test: apt-get update failed; trying to install chromium anyway" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
}

chromium_ensure() {
  local path
  if ! path=$(chromium_find); then
    chromium_install || true
    path=$(chromium_find) || path=""
  fi
  if [ -z "$path" ]; then
    if [ "${CI:-}" = "true" ]; then
      echo "test: chromium is missing and could not be installed, and CI=true: refusing to skip the browser tests." >&2
      echo "test: install Debian's chromium package (apt-get install chromium) or set RECOURSE_CHROMIUM." >&2
      return 1
    fi
    echo "test: WARNING: no chromium available; the browser tests will be skipped." >&2
    unset RECOURSE_CHROMIUM
    return 0
  fi
  export RECOURSE_CHROMIUM="$path"
}
