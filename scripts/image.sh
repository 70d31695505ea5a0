#!/usr/bin/env bash
# Builds crashscope's OCI image with buildah, without a registry: FROM scratch, the binary,
# the shared libraries it links (copied from this Debian machine's packages — glibc, libelf,
# zlib, libgcc — as `ldd` resolves them, at the same paths), the CA bundle for HTTPS
# notifications, a non-root user 65532 and writable /tmp and /var/lib/crashscope. Written as
# an OCI archive tagged ghcr.io/crashscope/crashscope:VERSION.
#
#   scripts/image.sh BINARY VERSION OUT.tar
#
# Needs root (buildah's storage). Storage goes to a temporary directory, removed at the end.
set -euo pipefail
bin=$1 version=$2 out=$3
tag="ghcr.io/crashscope/crashscope:$version"
work=$(mktemp -d)
trap 'buildah --root "$work/root" --runroot "$work/run" --storage-driver vfs rm --all >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
b() { buildah --root "$work/root" --runroot "$work/run" --storage-driver vfs "$@"; }

rootfs="$work/rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/tmp" "$rootfs/var/lib"
install -m 0755 "$bin" "$rootfs/usr/local/bin/crashscope"
# The libraries and the loader, where the binary looks for them.
ldd "$bin" | awk '/=> \// {print $3} /^[[:space:]]*\/lib/ {print $1}' | sort -u | while read -r lib; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
fi
printf 'root:x:0:0:root:/root:/sbin/nologin\ncrashscope:x:65532:65532:crashscope:/var/lib/crashscope:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\ncrashscope:x:65532:\n' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"
mkdir -p "$work/varlib/crashscope"
chmod 0700 "$work/varlib/crashscope"

ctr=$(b from scratch)
b copy "$ctr" "$rootfs/" / >/dev/null
# buildah copies as root:root unless told: the data directory belongs to the user.
b copy --chown 65532:65532 "$ctr" "$work/varlib/" /var/lib/ >/dev/null
b config \
  --entrypoint '["/usr/local/bin/crashscope"]' --cmd '["--help"]' \
  --user 65532:65532 --workingdir /var/lib/crashscope \
  --env CRASHSCOPE_DATA_DIR=/var/lib/crashscope \
  --label org.opencontainers.image.title=crashscope \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.description="Find out why workloads crash-loop, and prove it" \
  "$ctr"
b commit --quiet "$ctr" "$tag" >/dev/null
rm -f "$out"
b push --quiet "$tag" "oci-archive:$out:$tag"
echo "$out: $tag"
