# Sourced by build.sh and build-kueue.sh: sets GO to the go binary and, unless it is Go 1.26, GOTOOLCHAIN to
# go1.26.8 (Go 1.27 builds an apiserver whose OpenAPI document is broken). Env: GO, ZOO_GO_TOOLCHAIN.
GO="${GO:-}"
if [[ -z "$GO" ]]; then
  if [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go; else GO="$(command -v go)"; fi
fi
if [[ "$("$GO" env GOVERSION)" != go1.26.* ]]; then
  export GOTOOLCHAIN="${ZOO_GO_TOOLCHAIN:-go1.26.8}"
fi
