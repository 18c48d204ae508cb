#!/usr/bin/env bash
# Build the real downstream tools the test suite runs, from their Go modules at pinned versions,
# into a git-ignored cache folder (default .tools/ at the repository root). A tool whose binary
# and version stamp are already there is reused; Go's module and build caches make a rebuild
# after a fresh clone cheap. Never downloads a prebuilt binary.
#
#   scripts/build-tools.sh            build what is missing, one line per tool with its time
#   TOOLS_DIR=/elsewhere scripts/build-tools.sh
#
# Afterwards: .tools/bin holds tofu, packer, cue, kubeconform (and talospatch when its source is
# in the tree); .tools/tofu-plugins is a `tofu init -plugin-dir` tree with the bpg provider;
# .tools/packer-plugins is a PACKER_PLUGIN_PATH with the Proxmox plugin.
set -euo pipefail

# Pins. Where the version the project targets is not served by the Go module proxy reachable
# here, the newest served release is used and the target is named beside it.
OPENTOFU_VERSION=v1.11.5
BPG_VERSION=v0.80.0            # target v0.90.0: the proxy serves no v0.81-v0.92 (403)
PACKER_VERSION=v1.12.0
PACKER_PROXMOX_VERSION=v1.1.1  # target v1.2.4: the proxy serves no v1.1.2-v1.2.4 (403 / no checksum)
CUE_VERSION=v0.17.1
KUBECONFORM_VERSION=v0.7.0

root=$(cd "$(dirname "$0")/.." && pwd)
tools=${TOOLS_DIR:-$root/.tools}
bin=$tools/bin
mkdir -p "$bin" "$tools/stamps" "$tools/logs"
export GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath"
export CGO_ENABLED=0
goarch=$(go env GOARCH)
goos=$(go env GOOS)

fresh() { # fresh NAME VERSION: the cached build of NAME is at VERSION and its binary exists
  [ -f "$tools/stamps/$1" ] && [ "$(cat "$tools/stamps/$1")" = "$2" ] && [ -x "$3" ]
}

stamp() { printf '%s' "$2" >"$tools/stamps/$1"; }

timed() { # timed NAME VERSION CMD...: run CMD, print one line with the time it took
  local name=$1 version=$2 start end log
  shift 2
  log=$tools/logs/${name//\//-}.log # names like bpg/proxmox hold a slash
  start=$(date +%s)
  if ! "$@" >"$log" 2>&1; then
    echo "tools: $name $version: build FAILED (log: $log)" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  end=$(date +%s)
  echo "tools: $name $version built in $((end - start)) s"
}

module_dir() { # module_dir MODULE VERSION: download the module, print its read-only cache dir
  go mod download -json "$1@$2" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error", "no Dir")))'
}

build_in_copy() { # build_in_copy MODULE VERSION PKG OUT: build PKG inside a writable copy
  # A module whose go.mod carries `replace` cannot be built with `go install module@version`.
  local src work
  src=$(module_dir "$1" "$2")
  work=$(mktemp -d)
  cp -R "$src/." "$work/"
  chmod -R u+w "$work"
  (cd "$work" && go build -o "$4" "$3")
  rm -rf "$work"
}

install_module() { # install_module MODULE/PKG VERSION OUT
  local gobin
  gobin=$(mktemp -d)
  GOBIN=$gobin go install "$1@$2"
  mv "$gobin/$(basename "$1")" "$3"
  rm -rf "$gobin"
}

# OpenTofu
if fresh tofu "$OPENTOFU_VERSION" "$bin/tofu"; then
  echo "tools: tofu $OPENTOFU_VERSION cached"
else
  timed tofu "$OPENTOFU_VERSION" build_in_copy github.com/opentofu/opentofu "$OPENTOFU_VERSION" ./cmd/tofu "$bin/tofu"
  stamp tofu "$OPENTOFU_VERSION"
fi

# bpg/proxmox provider, laid out for `tofu init -plugin-dir`
bpg_plain=${BPG_VERSION#v}
bpg_dir=$tools/tofu-plugins/registry.opentofu.org/bpg/proxmox/$bpg_plain/${goos}_$goarch
bpg_bin=$bpg_dir/terraform-provider-proxmox_$BPG_VERSION
if fresh bpg "$BPG_VERSION" "$bpg_bin"; then
  echo "tools: bpg/proxmox $BPG_VERSION cached"
else
  rm -rf "$tools/tofu-plugins"
  mkdir -p "$bpg_dir"
  timed bpg/proxmox "$BPG_VERSION" build_in_copy github.com/bpg/terraform-provider-proxmox "$BPG_VERSION" . "$bpg_bin"
  stamp bpg "$BPG_VERSION"
fi

# Packer and its Proxmox plugin (installed with packer's own `plugins install --path`)
if fresh packer "$PACKER_VERSION" "$bin/packer"; then
  echo "tools: packer $PACKER_VERSION cached"
else
  timed packer "$PACKER_VERSION" build_in_copy github.com/hashicorp/packer "$PACKER_VERSION" . "$bin/packer"
  stamp packer "$PACKER_VERSION"
fi
plugin_bin=$tools/packer-plugin-proxmox
if fresh packer-plugin-proxmox "$PACKER_PROXMOX_VERSION" "$plugin_bin" && [ -d "$tools/packer-plugins" ]; then
  echo "tools: packer-plugin-proxmox $PACKER_PROXMOX_VERSION cached"
else
  timed packer-plugin-proxmox "$PACKER_PROXMOX_VERSION" build_in_copy github.com/hashicorp/packer-plugin-proxmox "$PACKER_PROXMOX_VERSION" . "$plugin_bin"
  rm -rf "$tools/packer-plugins"
  PACKER_PLUGIN_PATH=$tools/packer-plugins CHECKPOINT_DISABLE=1 \
    "$bin/packer" plugins install --path "$plugin_bin" github.com/hashicorp/proxmox >"$tools/logs/packer-plugins.log" 2>&1 \
    || { cat "$tools/logs/packer-plugins.log" >&2; exit 1; }
  stamp packer-plugin-proxmox "$PACKER_PROXMOX_VERSION"
fi

# cue and kubeconform have no replace directives: plain go install
if fresh cue "$CUE_VERSION" "$bin/cue"; then
  echo "tools: cue $CUE_VERSION cached"
else
  timed cue "$CUE_VERSION" install_module cuelang.org/go/cmd/cue "$CUE_VERSION" "$bin/cue"
  stamp cue "$CUE_VERSION"
fi
if fresh kubeconform "$KUBECONFORM_VERSION" "$bin/kubeconform"; then
  echo "tools: kubeconform $KUBECONFORM_VERSION cached"
else
  timed kubeconform "$KUBECONFORM_VERSION" install_module github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" "$bin/kubeconform"
  stamp kubeconform "$KUBECONFORM_VERSION"
fi

# The test tree's Talos config patcher: a Go module of its own, pinned by its go.mod/go.sum.
talospatch_src=$root/tests/tools/talospatch
if [ -f "$talospatch_src/go.mod" ]; then
  sum=$(cat "$talospatch_src"/go.mod "$talospatch_src"/go.sum "$talospatch_src"/*.go | sha256sum | cut -c1-16)
  if fresh talospatch "$sum" "$bin/talospatch"; then
    echo "tools: talospatch cached"
  else
    timed talospatch "$sum" sh -c "cd '$talospatch_src' && go build -o '$bin/talospatch' ."
    stamp talospatch "$sum"
  fi
fi
echo "tools: ready in $tools"
