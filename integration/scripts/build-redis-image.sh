#!/usr/bin/env bash
# build-redis-image.sh — build the Redis image the integration tests run.
#
# The test machines have a Docker engine but no registry access, so we cannot
# pull redis:7. Instead we package the host's Debian redis-server binary,
# together with every shared library `ldd` reports and the dynamic loader, into
# an image built FROM scratch with `docker import`.
#
# Usage:
#   scripts/build-redis-image.sh            # builds limitkit-redis:local
#   REDIS_IMAGE=my/redis:tag scripts/...    # other tag
#   FORCE=1 scripts/build-redis-image.sh    # rebuild even if the image exists
#
# Idempotent: when the image already exists it only prints its id and exits.
# On a fresh Debian/Ubuntu machine, run as root: it installs redis-server
# with apt-get when /usr/bin/redis-server is missing.
set -euo pipefail

IMAGE="${REDIS_IMAGE:-limitkit-redis:local}"
SERVER=/usr/bin/redis-server
CLI=/usr/bin/redis-cli

log() { printf 'build-redis-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker CLI not found in PATH"
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine (is dockerd running, are you in the docker group?)"

OLD_ID="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
if [[ -n "$OLD_ID" && -z "${FORCE:-}" ]]; then
	log "image $IMAGE already exists ($OLD_ID); set FORCE=1 to rebuild"
	exit 0
fi

if [[ ! -x "$SERVER" ]]; then
	[[ "$(id -u)" -eq 0 ]] || die "$SERVER missing; run as root (or: sudo apt-get install -y redis-server)"
	command -v apt-get >/dev/null 2>&1 || die "$SERVER missing and apt-get not available"
	log "installing redis-server with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# --no-install-recommends: we only need the binary, not redis-tools/systemd units.
	apt-get install -y -qq --no-install-recommends redis-server >/dev/null
	# The Debian package starts a host redis on 127.0.0.1:6379; the tests do not
	# need it, but stopping it is the user's call, so leave it alone.
fi
[[ -x "$SERVER" ]] || die "$SERVER still missing after install"

ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT

# copy_file SRC DEST: copy following symlinks, so the image holds real files.
# This matters for redis-server itself: Debian ships it as a symlink to
# redis-check-rdb, and redis picks its personality from argv[0], so the file
# must exist in the image under the name redis-server.
copy_file() {
	mkdir -p "$ROOTFS$(dirname "$2")"
	cp -L "$1" "$ROOTFS$2"
}

# copy_with_libs BIN: the binary plus every library ldd lists and the loader,
# each at the path ldd reports (so the loader's default search path finds it).
copy_with_libs() {
	local bin="$1" lib
	copy_file "$bin" "$bin"
	# ldd lines are "name => /path (addr)", "/lib64/ld-linux... (addr)" or
	# "linux-vdso.so.1 (addr)" (in-kernel, nothing to copy).
	while read -r lib; do
		[[ -n "$lib" ]] || continue
		[[ -e "$ROOTFS$lib" ]] || copy_file "$lib" "$lib"
	done < <(ldd "$bin" | awk '
		$2 == "=>" && $3 ~ /^\// { print $3; next }
		$1 ~ /^\//               { print $1 }')
	if ldd "$bin" | grep -q 'not found'; then
		die "ldd $bin reports missing libraries"
	fi
}

copy_with_libs "$SERVER"
# redis-cli is not needed by the tests (they use go-redis), but having it in
# the image makes `docker exec <container> redis-cli cluster nodes` possible
# when debugging a failing run.
if [[ -x "$CLI" ]]; then copy_with_libs "$CLI"; fi

# Minimal users: root, plus an unprivileged redis user the container runs as.
mkdir -p "$ROOTFS/etc"
cat >"$ROOTFS/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/nonexistent
redis:x:999:999:redis:/data:/nonexistent
nobody:x:65534:65534:nobody:/nonexistent:/nonexistent
PASSWD
cat >"$ROOTFS/etc/group" <<'GROUP'
root:x:0:
redis:x:999:
nogroup:x:65534:
GROUP

# /tmp and /data are world-writable (sticky) so the redis user can write its
# cluster nodes.conf, without needing chown (which would need root here).
mkdir -p "$ROOTFS/tmp" "$ROOTFS/data"
chmod 1777 "$ROOTFS/tmp" "$ROOTFS/data"

VERSION="$("$SERVER" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
log "importing $IMAGE (redis $VERSION, $(du -sh "$ROOTFS" | cut -f1))"

# --owner/--group: files in the image belong to root whoever runs the script.
# No EXPOSE: nothing gets published on the host by accident (docker run -P).
# The default CMD disables protected mode: without a password, redis otherwise
# refuses clients that are not on loopback, i.e. every client of a container.
# The image is for tests on private networks only.
tar -C "$ROOTFS" --owner=0 --group=0 --numeric-owner -c . |
	docker import \
		--change 'ENTRYPOINT ["/usr/bin/redis-server"]' \
		--change 'CMD ["--protected-mode", "no"]' \
		--change 'USER redis' \
		--change 'WORKDIR /data' \
		--message "redis-server $VERSION from $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"')" \
		- "$IMAGE" >/dev/null

# Prove the image runs: the loader and every library resolve inside it.
if ! out="$(docker run --rm "$IMAGE" --version 2>&1)"; then
	docker image rm "$IMAGE" >/dev/null 2>&1 || true
	die "image $IMAGE does not run: $out"
fi
# A rebuild leaves the previous image untagged; drop it unless a container
# still uses it.
NEW_ID="$(docker image inspect -f '{{.Id}}' "$IMAGE")"
if [[ -n "$OLD_ID" && "$OLD_ID" != "$NEW_ID" ]]; then
	docker image rm "$OLD_ID" >/dev/null 2>&1 || true
fi
log "built $IMAGE: $out"
