#!/usr/bin/env bash
# Installs what the integration tests start on this machine: a Docker Engine (dockerd and the
# docker CLI), Debian's registry (docker-registry), htpasswd (apache2-utils) and the static busybox
# that test images are made of (busybox-static), and `ip` (iproute2, not pulled in by docker.io)
# for the multi-host tests' network namespaces, and haproxy, whose binary and libraries make the
# HAProxy test image for the proxy strategy (test-support/haproxy-image.ts), and gcc with libc6-dev
# for the static tcp-listen of the load-test app image (test-support/tcp-listen.c). Idempotent: does
# nothing when all are present.
# Targets Debian 12; uses sudo only when not already root.
set -euo pipefail

missing=()
for command in dockerd docker docker-registry htpasswd ip; do
  command -v "$command" >/dev/null 2>&1 || missing+=("$command")
done
# Test images copy this exact binary: it must be the static build, not a dynamically linked busybox.
[ -x /bin/busybox ] || missing+=(/bin/busybox)
# The HAProxy test image copies Debian's binary from here (it is not on a non-root PATH).
[ -x /usr/sbin/haproxy ] || missing+=(/usr/sbin/haproxy)
# tcp-listen.c is linked statically: gcc and libc.a (libc6-dev).
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -f "/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)/libc.a" ] || missing+=(libc.a)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: dockerd, docker, docker-registry, htpasswd, ip, /bin/busybox, /usr/sbin/haproxy, gcc and libc.a are present"
  exit 0
fi

echo "install-test-deps: missing ${missing[*]}; installing with apt-get"
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
else
  as_root=(sudo)
fi
# No terminal in CI: never let a package prompt (env, because sudo resets the environment).
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io docker-registry apache2-utils busybox-static iproute2 haproxy gcc libc6-dev
