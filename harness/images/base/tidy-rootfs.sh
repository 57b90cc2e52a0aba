#!/bin/sh
# Runs on the host against a fresh debootstrap tree ($1) before it is imported as an image.
# Removes what only bloats an image or would confuse a container, keeps what tools need.
set -eu
root="$1"
# Debian's postgresql-common creates a "main" cluster at install time; our entrypoint creates
# its own in PGDATA, so the packaged one is dead weight (and a second config to misread).
rm -rf "$root/var/lib/postgresql/15/main" "$root/etc/postgresql/15/main"
# Package caches and indexes: apt in a container is not the way these images change.
rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
# Docs and man pages (copyright files stay, per Debian policy).
find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/*
# Device nodes, kernel filesystems and logs: the container runtime provides its own.
rm -rf "$root"/dev/* "$root"/proc/* "$root"/sys/* "$root"/run/* "$root"/tmp/*
find "$root/var/log" -type f -delete
# The host's identity must not leak into the image.
: >"$root/etc/hostname"
rm -f "$root/etc/resolv.conf"
