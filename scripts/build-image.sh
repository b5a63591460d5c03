#!/usr/bin/env bash
# Builds the moe container image, moe:<version>, and writes it as an OCI archive under target/.
#
#   scripts/build-image.sh [--base IMAGE] [--tag NAME:TAG] [--format oci|docker] [--no-archive]
#                          [--refresh-base]
#
# The image: a Java runtime made by jlink with only the modules the services need (jdeps on the
# launcher jar, plus the modules jvm.options names), /opt/moe/moe.jar and /opt/moe/jvm.options,
# /usr/local/bin/moe as the entrypoint (java @jvm.options -jar moe.jar "$@"), the user moe (uid and
# gid 10001, which the Kubernetes manifests run as), and the OCI labels
# org.opencontainers.image.{source,version,revision,title,base.name}. The Containerfile
# (scripts/image/Containerfile) only COPYs: nothing runs inside the image while it is built.
#
# Flags:
#   --base IMAGE     build FROM this image (any registry name, e.g. debian:bookworm-slim or
#                    eclipse-temurin:25-jre-noble; pulled if missing). It needs glibc, libstdc++ and
#                    /bin/sh. Default: a Debian bookworm root filesystem made by mmdebstrap (variant
#                    essential, plus libstdc++6, without docs, man pages and locales), cached (see
#                    MOE_IMAGE_CACHE) and imported as localhost/moe-base:bookworm-<digest>.
#   --tag NAME:TAG   the image's name (default moe:<version>; podman stores it as localhost/moe:...).
#   --format F       the archive's format: oci (default, target/moe-<version>.oci.tar; podman load,
#                    docker load on Docker 25+), or docker (target/moe-<version>.docker.tar, the
#                    docker-archive format every docker load reads).
#   --no-archive     only build the image in podman's store.
#   --refresh-base   make the Debian base again (security updates) instead of using the cached one.
#   -h, --help       this text.
#
# The version is the Maven project version (pom.xml, e.g. 0.1.0-SNAPSHOT) unchanged, which is what
# the manifests in orchestration/deploy/kubernetes name. The launcher jar is built first when it is
# missing or older than the sources (as ./moe does).
#
# Environment:
#   JAVA_HOME            a JDK 25 with jlink and jdeps (else the first /usr/lib/jvm/*25*).
#   MOE_IMAGE_CACHE      the cache of the Debian base tarball and of jlinked runtimes
#                        (default ${XDG_CACHE_HOME:-~/.cache}/moe-cluster/image).
#   MOE_DEBIAN_MIRROR    the Debian mirror for mmdebstrap (default http://deb.debian.org/debian);
#   MOE_DEBIAN_SECURITY_MIRROR  and its security mirror (default http://deb.debian.org/debian-security).
#   MOE_IMAGE_SOURCE     the org.opencontainers.image.source label (default: the git remote
#                        "origin", else https://github.com/moe-cluster/moe-cluster).
#
# Needs podman (and mmdebstrap for the default base): apt-get install -y podman mmdebstrap.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "build-image: error: $*" >&2; exit 1; }
bad_usage() { echo "build-image: error: $* (see --help)" >&2; exit 2; }
note() { echo "build-image: $*" >&2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base_image=""
tag=""
format="oci"
archive=1
refresh_base=0
while [ $# -gt 0 ]; do
  case "$1" in
    --base) [ -n "${2:-}" ] || bad_usage "--base needs an image name"; base_image="$2"; shift 2 ;;
    --base=*) base_image="${1#*=}"; [ -n "$base_image" ] || bad_usage "--base needs an image name"; shift ;;
    --tag) [ -n "${2:-}" ] || bad_usage "--tag needs NAME:TAG"; tag="$2"; shift 2 ;;
    --tag=*) tag="${1#*=}"; [ -n "$tag" ] || bad_usage "--tag needs NAME:TAG"; shift ;;
    --format) [ $# -ge 2 ] || bad_usage "--format needs oci or docker"; format="$2"; shift 2 ;;
    --format=*) format="${1#*=}"; shift ;;
    --no-archive) archive=0; shift ;;
    --refresh-base) refresh_base=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) bad_usage "unknown argument: $1" ;;
  esac
done
case "$format" in oci|docker) ;; *) bad_usage "--format must be oci or docker, not '$format'" ;; esac

need() { # need TOOL PACKAGE: fail with the package to install
  command -v "$1" >/dev/null 2>&1 || die "$1 not found. Install it: apt-get install -y $2 (Debian/Ubuntu)${3:+; $3}"
}
need podman podman
need tar tar
need sha256sum coreutils
if [ -z "$base_image" ]; then
  need mmdebstrap mmdebstrap "or pass --base IMAGE to build on an image from a registry"
fi
# shellcheck source=scripts/find-jdk25.sh
. "$root/scripts/find-jdk25.sh"
for tool in jlink jdeps jar; do
  [ -x "$JAVA_HOME/bin/$tool" ] || die "$JAVA_HOME has no bin/$tool: a full JDK 25 is needed, not a JRE"
done

start=$(date +%s)
step() { echo "== $* (at $(( $(date +%s) - start )) s)" >&2; }

# --- the launcher jar ------------------------------------------------------------------------
jar="$root/orchestration/target/moe.jar"
stale() { # the same test as ./moe
  [ ! -f "$jar" ] && return 0
  [ -n "$(find "$root" -path "$root/.git" -prune -o \( -name '*.java' -o -name 'pom.xml' -o -name 'jvm.options' -o -path '*/src/main/resources/*' \) \
      -newer "$jar" -not -path '*/target/*' -print -quit)" ]
}
if stale; then
  step "building the launcher jar (./mvn25 -q -B -DskipTests -pl orchestration -am package)"
  (cd "$root" && ./mvn25 -q -B -DskipTests -pl orchestration -am package) || die "the Maven build failed; see above"
fi

version="$(sed -n '0,/<packaging>/s:^  <version>\([^<]*\)</version>.*:\1:p' "$root/pom.xml" | head -n1)"
[ -n "$version" ] || die "cannot read the project version from $root/pom.xml"
work="$root/target/image"
rm -rf "$work"
mkdir -p "$work/context/home"
jar_version="$(cd "$work" && "$JAVA_HOME/bin/jar" xf "$jar" META-INF/maven/io.moecluster/orchestration/pom.properties \
  && sed -n 's/^version=//p' META-INF/maven/io.moecluster/orchestration/pom.properties)"
rm -rf "$work/META-INF"
[ "$jar_version" = "$version" ] || die "$jar is version '$jar_version', pom.xml says '$version'; rebuild it"
# An image tag is [A-Za-z0-9_.-]{1,128}, not starting with . or -; Maven versions almost always are.
image_tag="$(printf '%s' "$version" | tr -c 'A-Za-z0-9_.-' '-' | cut -c1-128)"
case "$image_tag" in [.-]*) image_tag="v$image_tag" ;; esac
image="${tag:-moe:$image_tag}"
revision="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
if [ "$revision" != unknown ] && [ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ]; then
  revision="$revision-dirty"
  note "the working tree has uncommitted changes: revision label $revision"
fi
source_url="${MOE_IMAGE_SOURCE:-$(git -C "$root" remote get-url origin 2>/dev/null | sed -E 's#^(https?://)[^@/]*@#\1#' || true)}"
source_url="${source_url:-https://github.com/moe-cluster/moe-cluster}"

cache="${MOE_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/moe-cluster/image}"
mkdir -p "$cache"

# --- the Java runtime: jlink with the modules jdeps finds, plus what jvm.options adds ------------
step "jdeps: the modules moe.jar needs"
modules="$("$JAVA_HOME/bin/jdeps" --print-module-deps --ignore-missing-deps --multi-release 25 "$jar")" \
  || die "jdeps failed on $jar"
# jdk.incubator.vector: jvm.options adds it (--add-modules), the JVM refuses to start without it.
# jdk.unsupported: sun.misc.Unsafe for Netty, Agrona and Guava, also found by reflection.
modules="$(printf '%s\n' "${modules//,/$'\n'}" jdk.incubator.vector jdk.unsupported | grep -v '^$' | sort -u | paste -sd, -)"
jdk_release="$("$JAVA_HOME/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.runtime.version = //p')"
jlink_opts=(--strip-debug --no-man-pages --no-header-files)
runtime_key="$(printf '%s\n' "$JAVA_HOME" "$jdk_release" "$modules" "${jlink_opts[*]}" | sha256sum | cut -c1-16)"
runtime="$cache/jre-$runtime_key"
if [ ! -x "$runtime/bin/java" ]; then
  step "jlink: $modules"
  rm -rf "$runtime" "$runtime.tmp"
  if ! "$JAVA_HOME/bin/jlink" --add-modules "$modules" "${jlink_opts[@]}" --output "$runtime.tmp" >"$work/jlink.log" 2>&1; then
    cat "$work/jlink.log" >&2
    die "jlink failed (it needs a JDK 25 with jmods or one that can link from its run-time image)"
  fi
  mv "$runtime.tmp" "$runtime"
else
  step "jlink: cached runtime $runtime ($modules)"
fi

# --- the base ---------------------------------------------------------------------------------
ctx="$work/context"
if [ -z "$base_image" ]; then
  rootfs="$cache/debian-bookworm-essential.tar"
  if [ "$refresh_base" = 1 ] || [ ! -s "$rootfs" ]; then
    mirror="${MOE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    security="${MOE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
    step "mmdebstrap: Debian bookworm (essential + libstdc++6) from $mirror"
    rm -f "$rootfs.tmp"
    # shellcheck disable=SC2016 # $1 is the hook's argument, the root file system
    mmdebstrap --variant=essential --include=libstdc++6 --format=tar \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"' \
      bookworm "$rootfs.tmp" \
      "deb $mirror bookworm main" "deb $mirror bookworm-updates main" "deb $security bookworm-security main" \
      >"$work/mmdebstrap.log" 2>&1 \
      || { tail -n 20 "$work/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $work/mmdebstrap.log)"; }
    mv "$rootfs.tmp" "$rootfs"
  else
    step "base: cached $rootfs (--refresh-base makes it again)"
  fi
  digest="$(sha256sum "$rootfs" | cut -c1-12)"
  base_ref="localhost/moe-base:bookworm-$digest"
  if ! podman image exists "$base_ref"; then
    step "podman import $rootfs as $base_ref"
    podman import --quiet "$rootfs" "$base_ref" >/dev/null || die "podman import of $rootfs failed"
    # Earlier bases (before --refresh-base): removed unless an image still uses them.
    for old in $(podman images --format '{{.Repository}}:{{.Tag}}' localhost/moe-base); do
      [ "$old" = "$base_ref" ] || podman rmi "$old" >/dev/null 2>&1 || true
    done
  fi
  base_label="debian:bookworm (mmdebstrap essential)"
  tar -xOf "$rootfs" ./etc/passwd >"$ctx/passwd" 2>/dev/null || : >"$ctx/passwd"
  tar -xOf "$rootfs" ./etc/group >"$ctx/group" 2>/dev/null || : >"$ctx/group"
else
  base_ref="$base_image"
  base_label="$base_image"
  if ! podman image exists "$base_ref"; then
    step "podman pull $base_ref"
    podman pull --quiet "$base_ref" >/dev/null || die "cannot pull $base_ref"
  fi
  # The base's own users and groups, to add moe to them (no RUN step, so no useradd).
  probe="moe-build-probe-$$"
  podman create --quiet --name "$probe" --entrypoint /moe-none "$base_ref" >/dev/null || die "podman create $base_ref failed"
  for f in passwd group; do
    podman cp "$probe:/etc/$f" - 2>/dev/null | tar -xO >"$ctx/$f" 2>/dev/null || : >"$ctx/$f"
  done
  podman rm --force "$probe" >/dev/null
fi
grep -q '^root:' "$ctx/passwd" || echo 'root:x:0:0:root:/root:/bin/sh' >>"$ctx/passwd"
grep -q '^root:' "$ctx/group" || echo 'root:x:0:' >>"$ctx/group"
if awk -F: '$3 == 10001 { found = 1 } END { exit !found }' "$ctx/passwd"; then
  note "the base already has a user with uid 10001: $(awk -F: '$3 == 10001 { print $1 }' "$ctx/passwd")"
else
  grep -q '^moe:' "$ctx/passwd" && die "the base has a user named moe with another uid than 10001"
  echo 'moe:x:10001:10001:moe-cluster:/home/moe:/usr/sbin/nologin' >>"$ctx/passwd"
fi
awk -F: '$3 == 10001 { found = 1 } END { exit !found }' "$ctx/group" || echo 'moe:x:10001:' >>"$ctx/group"

# --- the build context ------------------------------------------------------------------------
step "podman build $image FROM $base_ref"
cp -a "$runtime" "$ctx/jre"
cp "$jar" "$root/jvm.options" "$root/scripts/image/moe" "$root/scripts/image/Containerfile" "$ctx/"
# Everything readable by the non-root user whatever the umask here; nothing writable but its home.
chmod -R u+rwX,go+rX,go-w "$ctx"
chmod 0755 "$ctx/moe"
previous="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
podman build --quiet --pull=never --format oci -f "$ctx/Containerfile" -t "$image" \
  --build-arg "BASE=$base_ref" \
  --label "org.opencontainers.image.title=moe" \
  --label "org.opencontainers.image.description=moe-cluster: expert-parallel inference for Mixture-of-Experts models" \
  --label "org.opencontainers.image.source=$source_url" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.base.name=$base_label" \
  "$ctx" >"$work/image-id" || die "podman build failed"
rm -rf "$ctx"
# The image this build replaced, now without a name: removed (unless a container uses it).
if [ -n "$previous" ] && [ "$previous" != "$(cat "$work/image-id")" ] \
    && [ -z "$(podman image inspect --format '{{join .RepoTags ""}}' "$previous" 2>/dev/null)" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true
fi

archive_file=""
if [ "$archive" = 1 ]; then
  archive_file="$root/target/moe-$image_tag.$format.tar"
  step "podman save --format $format-archive -o ${archive_file#"$root"/}"
  rm -f "$archive_file"
  podman save --quiet --format "$format-archive" -o "$archive_file" "$image" || die "podman save failed"
fi

elapsed=$(( $(date +%s) - start ))
size="$(podman image inspect --format '{{.Size}}' "$image")"
echo
echo "image    $(podman image inspect --format '{{index .RepoTags 0}}' "$image") ($(cut -c1-12 "$work/image-id"), $(( size / 1000000 )) MB)"
echo "base     $base_label"
echo "runtime  jlink: $modules"
echo "labels   version=$version revision=$revision source=$source_url"
if [ -n "$archive_file" ]; then
  echo "archive  ${archive_file#"$root"/} ($(( $(stat -c %s "$archive_file") / 1000000 )) MB): podman load -i ${archive_file#"$root"/}"
fi
echo "built in $elapsed s; smoke test: scripts/test-image.sh"
