#!/usr/bin/env bash
# Installs what the integration tests start on this machine: a Docker Engine (dockerd and the
# docker CLI), Debian's registry (docker-registry), htpasswd (apache2-utils) and the static busybox
# that test images are made of (busybox-static), and `ip` (iproute2, not pulled in by docker.io)
# for the multi-host tests' network namespaces, and haproxy, whose binary and libraries make the
# HAProxy test image for the proxy strategy (test-support/haproxy-image.ts), and gcc with libc6-dev
# for the static tcp-listen of the load-test app image (test-support/tcp-listen.c), and OpenSSH's
# sshd (openssh-server) and client (openssh-client), which the SSH tests run inside the
# network-namespace hosts (test-support/sshd.ts). Idempotent: does nothing when all are present.
# Installing must not leave a system service running: dockerd and sshd are started by the tests
# themselves, privately. Package scripts start services through invoke-rc.d (and deb-systemd-invoke),
# which asks /usr/sbin/policy-rc.d first; exit code 101 there means "do not start". When that file is
# missing, a temporary one is put in place for the install and removed afterwards.
# Targets Debian 12; uses sudo only when not already root.
set -euo pipefail

missing=()
for command in dockerd docker docker-registry htpasswd ip ssh ssh-keygen; do
  command -v "$command" >/dev/null 2>&1 || missing+=("$command")
done
# Test images copy this exact binary: it must be the static build, not a dynamically linked busybox.
[ -x /bin/busybox ] || missing+=(/bin/busybox)
# The HAProxy test image copies Debian's binary from here (it is not on a non-root PATH).
[ -x /usr/sbin/haproxy ] || missing+=(/usr/sbin/haproxy)
# sshd is not on a non-root PATH; the tests run this exact path.
[ -x /usr/sbin/sshd ] || missing+=(/usr/sbin/sshd)
# tcp-listen.c is linked statically: gcc and libc.a (libc6-dev).
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -f "/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)/libc.a" ] || missing+=(libc.a)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: dockerd, docker, docker-registry, htpasswd, ip, ssh, ssh-keygen, /bin/busybox, /usr/sbin/haproxy, /usr/sbin/sshd, gcc and libc.a are present"
  exit 0
fi

echo "install-test-deps: missing ${missing[*]}; installing with apt-get"
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
else
  as_root=(sudo)
fi

# Keep package scripts from starting dockerd, sshd (or any other service) on the machine.
policy=/usr/sbin/policy-rc.d
created_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# install-test-deps.sh: no service starts during the install\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 755 "$policy"
  created_policy=true
  echo "install-test-deps: $policy put in place for the install (services are not started)"
fi
remove_policy() {
  if [ "$created_policy" = true ]; then
    "${as_root[@]}" rm -f "$policy"
    echo "install-test-deps: $policy removed"
  fi
}
trap remove_policy EXIT

# No terminal in CI: never let a package prompt (env, because sudo resets the environment).
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io docker-registry apache2-utils busybox-static iproute2 haproxy gcc libc6-dev openssh-server openssh-client
