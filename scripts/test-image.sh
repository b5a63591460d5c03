#!/usr/bin/env bash
# shellcheck disable=SC2317,SC2016 # functions run from traps and check(); sh -c and Go template text
# Smoke test of the moe image (scripts/build-image.sh) without a container runtime: loads the OCI
# archive, unpacks the image's file system, and runs moe inside it through chroot the way a
# Kubernetes pod of orchestration/deploy/kubernetes would: as the image's non-root user, with the
# image's environment and working directory, the root file system read-only, a writable /tmp and a
# memory-backed /dev/shm (tmpfs), no privilege escalation (no_new_privs), only loopback networking.
#
#   scripts/test-image.sh [--archive FILE | --image NAME:TAG] [--keep]
#
#   --archive FILE   podman load this archive first, then test the image it holds
#                    (default: target/moe-<version>.oci.tar when it exists).
#   --image NAME:TAG test this image from podman's store (default moe:<version>, the version from
#                    pom.xml; with --archive, the image the archive holds).
#   --keep           keep the unpacked file system and the service logs (prints where).
#
# Inside the image it runs: moe --version; moe model make-random --arch mixtral --preset tiny
# (under /tmp); a single-process moe generate on that model; moe up (the media driver, expert,
# attention and router services as separate JVMs, the Aeron directory on /dev/shm) and one
# moe generate --server request to it, which must give the same greedy text; moe chat (over the
# router's OpenAI-compatible HTTP API, with the model's chat template); moe status; moe down.
# Prints each command with its output (stdout, then stderr) and time, then PASS or FAIL (exit
# status 0 or 1; 2 for a bad command line or a missing tool).
#
# Needs root (mounts, chroot, namespaces), podman, and util-linux, coreutils and iproute2 (unshare,
# setpriv, chroot, ip). Everything runs in new mount, PID, network, UTS and IPC namespaces: the
# mounts and every process it started go away with it, even when it is killed; the exit trap also
# unmounts and removes its temporary directory. Maven-free: no JDK needed outside the image.
set -euo pipefail

die() { echo "test-image: error: $*" >&2; exit 2; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# ------------------------------------------------------------------------------------------------
# Inner part: run by the outer part below inside the new namespaces, as root.
#   test-image.sh --inner DIR   (DIR/rootfs: the unpacked image; DIR/env, DIR/user, DIR/workdir)
# ------------------------------------------------------------------------------------------------
if [ "${1:-}" = "--inner" ]; then
  dir="$2"
  rootfs="$dir/rootfs"
  mapfile -t image_env <"$dir/env"
  user="$(cat "$dir/user")"
  workdir="$(cat "$dir/workdir")"
  uid="${user%%:*}"
  gid="${user#*:}"
  [ "$gid" != "$user" ] || gid="$uid"
  home="$(awk -F: -v u="$uid" '$3 == u { print $6; exit }' "$rootfs/etc/passwd")"
  stepno=0
  up=0

  teardown() {
    local rc=$?
    if [ "$up" = 1 ]; then
      echo "-- teardown: moe down"
      run_in_image 60 moe down >/dev/null 2>&1 || true
    fi
    # Only in this mount namespace, but tidy anyway: innermost first.
    umount -R "$rootfs" 2>/dev/null || umount -R -l "$rootfs" 2>/dev/null || true
    exit "$rc"
  }
  trap teardown EXIT
  trap 'echo "FAIL: unexpected error at line $LINENO: $BASH_COMMAND"' ERR

  hostname moe-smoke
  ip link set lo up
  # The image's file system read-only, as readOnlyRootFilesystem: true does.
  mount --bind "$rootfs" "$rootfs"
  mount -o remount,bind,ro "$rootfs"
  mount -t proc -o nosuid,nodev,noexec proc "$rootfs/proc"
  mount -t tmpfs -o nosuid,noexec,mode=0755,size=1m tmpfs "$rootfs/dev"
  for n in null zero full random urandom tty; do
    touch "$rootfs/dev/$n"
    mount --bind "/dev/$n" "$rootfs/dev/$n"
  done
  ln -s /proc/self/fd "$rootfs/dev/fd"
  ln -s /proc/self/fd/0 "$rootfs/dev/stdin"
  ln -s /proc/self/fd/1 "$rootfs/dev/stdout"
  ln -s /proc/self/fd/2 "$rootfs/dev/stderr"
  mkdir "$rootfs/dev/shm"
  # The pod's emptyDir volumes: medium Memory at /dev/shm (Aeron), and /tmp.
  mount -t tmpfs -o nosuid,nodev,mode=1777,size=4g tmpfs "$rootfs/dev/shm"
  mount -t tmpfs -o nosuid,nodev,mode=1777,size=2g tmpfs "$rootfs/tmp"

  # run_in_image TIMEOUT_S CMD...: CMD through the image's /bin/sh (so PATH finds moe), as the image's
  # user, with only the image's environment, in its working directory, without privilege escalation.
  run_in_image() {
    local limit="$1"
    shift
    timeout --kill-after=10 "$limit" env -i "${image_env[@]}" HOME="$home" \
      "$(command -v setpriv)" --no-new-privs \
      "$(command -v chroot)" --userspec="$uid:$gid" --groups="$gid" "$rootfs" \
      /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$workdir" "$@"
  }

  # step TIMEOUT_S CMD...: prints the command, its output and its time; fails the test if it fails.
  step() {
    local limit="$1" t0 rc ms
    shift
    stepno=$((stepno + 1))
    echo
    echo "== [$stepno] $*"
    t0=$(date +%s%N)
    set +e
    run_in_image "$limit" "$@" >"$dir/stdout" 2>"$dir/stderr"
    rc=$?
    set -e
    # stdout, then stderr; the JVM's one-line notice about the incubating Vector API is noise here.
    sed 's/^/   /' "$dir/stdout"
    grep -v '^WARNING: Using incubator modules: jdk.incubator.vector$' "$dir/stderr" | sed 's/^/   /' || true
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    printf '   (exit %d, %d.%d s)\n' "$rc" $((ms / 1000)) $((ms % 1000 / 100))
    if [ "$rc" -ne 0 ]; then
      [ "$rc" -eq 124 ] && echo "   timed out after $limit s"
      for log in "$rootfs"/tmp/moe/logs/*.log; do
        [ -f "$log" ] || continue
        echo "-- ${log#"$rootfs"} (last 20 lines)"
        tail -n 20 "$log" | sed 's/^/   /'
      done
      echo "FAIL: step $stepno: $*"
      exit 1
    fi
  }
  check() { # check WHAT CMD...: CMD must succeed
    local what="$1"
    shift
    if ! "$@"; then
      echo "FAIL: $what"
      exit 1
    fi
    echo "   ok: $what"
  }
  output() { cat "$dir/stdout"; }
  prints_version() { output | grep -q '^moe '; }
  all_java_as() { [ -n "$java_uids" ] && ! echo "$java_uids" | grep -vq " $1\$"; }
  not_empty() { [ -n "$(find "$1" -mindepth 1 -print -quit)" ]; }

  echo "image user $uid:$gid (home $home), working directory $workdir, environment:"
  printf '   %s\n' "${image_env[@]}"

  step 60 moe --version
  check "moe --version prints the version" prints_version

  step 120 moe model make-random --arch mixtral --preset tiny --dtype bf16 --seed 1 /tmp/model-tiny
  check "a model directory with config.json" test -f "$rootfs/tmp/model-tiny/config.json"

  step 180 moe generate --model /tmp/model-tiny --prompt Hello --max-tokens 8
  local_text="$(output)"

  step 300 moe up --model /tmp/model-tiny
  up=1
  address="$(output | sed -n 's/.*gRPC API on \([^ ]*\) .*/\1/p' | head -n1)"
  check "moe up printed the gRPC address ($address)" test -n "$address"
  java_uids="$(for s in "$rootfs"/proc/[0-9]*/status; do
      if grep -q '^Name:.*java' "$s" 2>/dev/null; then awk '/^Uid:/ { print $2 }' "$s"; fi
    done | sort | uniq -c | sed 's/^ *//')"
  echo "   service JVMs by uid (count uid): $java_uids"
  check "every service JVM runs as uid $uid" all_java_as "$uid"
  check "the Aeron directory is on /dev/shm: $(cd "$rootfs/dev/shm" && echo *)" not_empty "$rootfs/dev/shm"
  echo "   /dev/shm in use: $(du -sh "$rootfs/dev/shm" | cut -f1), /tmp: $(du -sh "$rootfs/tmp" | cut -f1)"

  step 120 moe status
  step 180 moe generate --server "$address" --prompt Hello --max-tokens 8
  cluster_text="$(output)"
  check "the cluster's greedy completion ('$cluster_text') equals the single-process one ('$local_text')" \
    test "$cluster_text" = "$local_text"
  # The OpenAI-compatible HTTP API (Vert.x) and the chat template (Jinjava) in the jlinked runtime.
  step 180 moe chat --message Hello --max-tokens 8
  check "moe chat got a reply through the OpenAI-compatible API" test -s "$dir/stdout"

  step 120 moe down
  up=0
  exit 0
fi

# ------------------------------------------------------------------------------------------------
# Outer part
# ------------------------------------------------------------------------------------------------
archive=""
image=""
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --archive) [ $# -ge 2 ] || die "--archive needs a file"; archive="$2"; shift 2 ;;
    --archive=*) archive="${1#*=}"; shift ;;
    --image) [ $# -ge 2 ] || die "--image needs NAME:TAG"; image="$2"; shift 2 ;;
    --image=*) image="${1#*=}"; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '3,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run it as root: it mounts file systems, creates namespaces and uses chroot"
for tool in podman:podman tar:tar unshare:util-linux setpriv:util-linux mount:mount chroot:coreutils \
            timeout:coreutils ip:iproute2 hostname:hostname; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || die "${tool%%:*} not found. Install it: apt-get install -y ${tool#*:}"
done

if [ -z "$archive" ] && [ -z "$image" ]; then
  # The defaults name the project version, as scripts/build-image.sh does.
  version="$(sed -n '0,/<packaging>/s:^  <version>\([^<]*\)</version>.*:\1:p' "$root/pom.xml" 2>/dev/null | head -n1)"
  [ -n "$version" ] || die "cannot read the project version from $root/pom.xml; pass --image or --archive"
  tag="$(printf '%s' "$version" | tr -c 'A-Za-z0-9_.-' '-' | cut -c1-128)"
  image="moe:$tag"
  if [ -f "$root/target/moe-$tag.oci.tar" ]; then
    archive="$root/target/moe-$tag.oci.tar"
    image=""
  fi
fi
if [ -n "$archive" ]; then
  [ -f "$archive" ] || die "no archive $archive (build one with scripts/build-image.sh)"
  echo "== podman load -i $archive"
  loaded="$(podman load -i "$archive" 2>&1)" || { echo "$loaded" >&2; die "podman load refused $archive"; }
  printf '%s\n' "$loaded" | sed 's/^/   /'
  [ -n "$image" ] || image="$(echo "$loaded" | sed -n 's/^Loaded image[^:]*: *//p' | head -n1)"
fi
podman image exists "$image" || die "no image $image in podman's store (build it with scripts/build-image.sh)"

start=$(date +%s)
tmp="$(mktemp -d "${TMPDIR:-/tmp}/moe-image-test.XXXXXX")"
ctr=""
ns_pid=""
cleanup() {
  local rc=$?
  if [ -n "$ns_pid" ] && kill -0 "$ns_pid" 2>/dev/null; then
    # Interrupted: end the namespaces at once. unshare --kill-child SIGKILLs the PID namespace's
    # first process, and with it the kernel kills every process in it (the cluster included); the
    # mounts and the network namespace go with the last of them.
    echo "test-image: interrupted; killing everything it started" >&2
    kill -KILL "$ns_pid" 2>/dev/null || true
    wait "$ns_pid" 2>/dev/null || true
  fi
  [ -z "$ctr" ] || podman rm --force "$ctr" >/dev/null 2>&1 || true
  # The mounts live in the test's own mount namespace and are gone with it; never delete through a
  # mount that is somehow still there.
  if grep -q " $tmp/" /proc/self/mountinfo; then
    echo "test-image: $tmp still has mounts; not removing it" >&2
  elif [ "$keep" = 1 ]; then
    echo "kept: $tmp/rootfs (service logs under $tmp/rootfs/tmp are gone with the tmpfs)"
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== image $image"
inspect() { podman image inspect --format "$1" "$image"; }
printf '   %s\n' "id $(inspect '{{.Id}}' | cut -c1-12), $(( $(inspect '{{.Size}}') / 1000000 )) MB" \
  "labels: $(inspect '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}')"
for label in source version revision; do
  [ -n "$(inspect "{{index .Config.Labels \"org.opencontainers.image.$label\"}}")" ] \
    || { echo "FAIL: no org.opencontainers.image.$label label"; exit 1; }
done
user="$(inspect '{{.Config.User}}')"
case "${user%%:*}" in ''|0|root) echo "FAIL: the image runs as '${user:-root}', not as a non-root user"; exit 1 ;; esac
inspect '{{range .Config.Env}}{{println .}}{{end}}' | grep -v '^$' >"$tmp/env"
echo "$user" >"$tmp/user"
workdir="$(inspect '{{.Config.WorkingDir}}')"
echo "${workdir:-/}" >"$tmp/workdir"

echo "== podman create + podman export | tar -x"
mkdir "$tmp/rootfs"
ctr="$(podman create "$image")"
podman export "$ctr" | tar -x --numeric-owner -C "$tmp/rootfs"
podman rm "$ctr" >/dev/null
ctr=""
# What a container runtime provides at run time (bind-mounted over the image's files).
printf '127.0.0.1\tlocalhost moe-smoke\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$tmp/rootfs/etc/hosts"
echo moe-smoke >"$tmp/rootfs/etc/hostname"
: >"$tmp/rootfs/etc/resolv.conf"
for d in proc dev tmp; do mkdir -p "$tmp/rootfs/$d"; done
echo "   $(du -sh "$tmp/rootfs" | cut -f1) unpacked"

# In the background and waited for, so that a signal reaches the trap at once.
unshare --mount --propagation private --pid --fork --kill-child --net --uts --ipc \
  "$0" --inner "$tmp" &
ns_pid=$!
rc=0
wait "$ns_pid" || rc=$?
ns_pid=""
echo
if [ "$rc" -eq 0 ]; then
  echo "PASS: $image ($(( $(date +%s) - start )) s)"
else
  echo "FAIL: $image (exit $rc, $(( $(date +%s) - start )) s)"
  exit 1
fi
