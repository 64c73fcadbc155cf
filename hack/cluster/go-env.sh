# Sourced by build.sh and build-kueue.sh: sets GO to the go binary and, unless it is Go 1.26, GOTOOLCHAIN to
# go1.26.8 (Go 1.27 builds an apiserver whose OpenAPI document is broken). Env: GO, ZOO_GO_TOOLCHAIN.
GO="${GO:-}"
if [[ -z "$GO" ]]; then
  if [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go; else GO="$(command -v go)"; fi
fi
if [[ "$("$GO" env GOVERSION)" != go1.26.* ]]; then
  export GOTOOLCHAIN="${ZOO_GO_TOOLCHAIN:-go1.26.8}"
fi

# run_with_heartbeat WHAT CMD...: run CMD (a long go build) and print a line every ZOO_BUILD_HEARTBEAT seconds
# (default 30) saying what it is waiting for, so a first `make demo` or `make test` does not look stuck.
run_with_heartbeat() {
  local what="$1"; shift
  "$@" &
  local pid=$! start=$SECONDS every="${ZOO_BUILD_HEARTBEAT:-30}"
  local next=$((SECONDS + every))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS >= next)); then
      echo "  ... still building $what ($((SECONDS - start)) s so far; cached once built)" >&2
      next=$((SECONDS + every))
    fi
  done
  wait "$pid"
}
