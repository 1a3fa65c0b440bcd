#!/usr/bin/env bash
# Builds, with no image registry, the Postgres and Redis images that
# internal/testenv's dockertest path runs (TEST_POSTGRES_IMAGE,
# TEST_REDIS_IMAGE): a Debian root filesystem made by debootstrap from the
# Debian mirror apt already uses, imported with `docker import`, plus the
# entrypoints of this directory (docker create + cp + commit; no builder).
#
# Cached: the base image is rebuilt only when its suite or package list
# changes, the two service images only when an entrypoint or this script
# changes (a label records what they were built from). Prints the two image
# names on stdout, "POSTGRES_IMAGE REDIS_IMAGE"; progress goes to stderr.
#
# Knobs: TEST_POSTGRES_IMAGE, TEST_REDIS_IMAGE (names to build),
# DEBIAN_SUITE (bookworm), DEBIAN_MIRROR (the first Debian URI in
# /etc/apt/sources.list*), TMPDIR (where the root filesystem is staged).
# Needs root, docker and debootstrap.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
PG_IMAGE=${TEST_POSTGRES_IMAGE:-analysis-cache-test/postgres:15-bookworm}
REDIS_IMAGE=${TEST_REDIS_IMAGE:-analysis-cache-test/redis:7-bookworm}
SUITE=${DEBIAN_SUITE:-bookworm}
PACKAGES=postgresql,redis-server
BASE_IMAGE=analysis-cache-test/base:$SUITE
LABEL=org.analysis-cache.testenv.build

mirror() { # the first plain Debian archive URI apt is configured with
	local m
	m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -v '^[[:space:]]*#' |
		grep -oE '(https?|file)://[^[:space:]]*/debian/?([[:space:]]|$)' | head -n 1 | tr -d '[:space:]' || true)
	echo "${m:-http://deb.debian.org/debian}"
}

built_from() { docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }

base_id=$(printf '%s %s minbase' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-16)
image_id=$(cat "$0" "$here/postgres-entrypoint" "$here/redis-entrypoint" | sha256sum | cut -c1-16)

if [ "$(built_from "$PG_IMAGE")" = "$image_id" ] && [ "$(built_from "$REDIS_IMAGE")" = "$image_id" ]; then
	echo "images up to date (build $image_id)" >&2
	echo "$PG_IMAGE $REDIS_IMAGE"
	exit 0
fi

if [ "$(built_from "$BASE_IMAGE")" != "$base_id" ]; then
	command -v debootstrap >/dev/null || { echo "build.sh: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
	MIRROR=${DEBIAN_MIRROR:-$(mirror)}
	rootfs=$(mktemp -d "${TMPDIR:-/var/tmp}/testenv-rootfs.XXXXXX")
	trap 'rm -rf "$rootfs"' EXIT
	echo "debootstrap $SUITE from $MIRROR (with $PACKAGES)" >&2
	start=$SECONDS
	debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 ||
		{ tail -n 30 "$rootfs.log" >&2; exit 1; }
	rm -f "$rootfs.log"
	# What a server in a test never reads: package caches, docs, the cluster
	# the package made (the entrypoint makes its own in PGDATA).
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
		"$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/locale \
		"$rootfs"/var/lib/postgresql/*/main "$rootfs"/etc/postgresql/*/main
	tar -C "$rootfs" -c . | docker import --change "LABEL $LABEL=$base_id" - "$BASE_IMAGE" >/dev/null
	rm -rf "$rootfs"
	trap - EXIT
	echo "base image $BASE_IMAGE built in $((SECONDS - start))s" >&2
fi

# commit_image NAME ENTRYPOINT CMD ENV...: the base plus one entrypoint.
commit_image() {
	local name=$1 entrypoint=$2 cmd=$3 ctr
	shift 3
	ctr=$(docker create "$BASE_IMAGE" /bin/true)
	docker cp "$here/$entrypoint" "$ctr:/usr/local/bin/$entrypoint"
	local changes=(--change "ENTRYPOINT [\"/usr/local/bin/$entrypoint\"]" --change "CMD [\"$cmd\"]" --change "LABEL $LABEL=$image_id")
	local e
	for e in "$@"; do changes+=(--change "ENV $e"); done
	docker commit "${changes[@]}" "$ctr" "$name" >/dev/null
	docker rm "$ctr" >/dev/null
	echo "built $name" >&2
}
commit_image "$PG_IMAGE" postgres-entrypoint postgres PGDATA=/var/lib/postgresql/data
commit_image "$REDIS_IMAGE" redis-entrypoint redis-server
# The images these replaced, now untagged.
docker image prune -f --filter "label=$LABEL" >/dev/null
echo "$PG_IMAGE $REDIS_IMAGE"
