#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh carries to a GPU host that has no Java, into target/gpu-check/:
#   jre.tar.xz  a runtime made by jlink from this JDK 25 (java.base, jdk.incubator.vector and the
#               modules the launcher jar needs at run time), without debug symbols, man pages, headers
#   moe-classes.tar.xz  the launcher jar (with the cuda module), minus the native libraries of
#               other platforms (the tokenizer's, Netty's and JNA's for macOS, Windows, ARM...),
#               unpacked and compressed with xz: class files compress far better together than the
#               jar's per-file deflate (about 2x), which keeps the payload under the device tool's limit
#   PAYLOAD.txt what was built, from which commit, and the sizes
# The device tool copies the working tree plus named ignored paths, 64 MiB in all: this script
# fails if the payload is larger than that.
# Usage: scripts/gpu-payload.sh   (needs a JDK 25 as ./mvn25 finds it, Maven, zip, xz)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
. "$here/scripts/find-jdk25.sh"
cd "$here"
out="$here/target/gpu-check"
jar="$here/orchestration/target/moe.jar"
for tool in zip unzip xz tar; do
  command -v "$tool" >/dev/null 2>&1 || { echo "gpu-payload: $tool is missing (apt-get install -y $tool)" >&2; exit 1; }
done
start=$(date +%s)
echo "gpu-payload: building the launcher jar" >&2
"$here/mvn25" -q -B -DskipTests -pl orchestration -am package
rm -rf "$out"
mkdir -p "$out"
# Modules: what jdeps finds in the jar, less java.desktop and java.compiler (reached only by code the
# check never runs: the GpuCheck, logits, generate and backends commands run without them).
modules="java.base,java.management,java.naming,java.sql,jdk.httpserver,jdk.incubator.vector,jdk.unsupported"
"$JAVA_HOME/bin/jlink" --add-modules "$modules" --strip-debug --no-man-pages --no-header-files \
  --output "$out/jre"
(cd "$out" && tar -cf - jre | xz -T2 -6 > jre.tar.xz)
rm -rf "$out/jre"
cp "$jar" "$out/moe.jar"
zip -q -d "$out/moe.jar" \
  'native/lib/linux-aarch64/*' 'native/lib/win-*' 'native/lib/osx-*' \
  'META-INF/native/*osx*' 'META-INF/native/*windows*' 'META-INF/native/*aarch_64*' \
  'META-INF/native/*s390*' 'META-INF/native/*ppc*' \
  'com/sun/jna/aix-*' 'com/sun/jna/darwin-*' 'com/sun/jna/win32-*' 'com/sun/jna/sunos-*' \
  'com/sun/jna/freebsd-*' 'com/sun/jna/openbsd-*' 'com/sun/jna/dragonflybsd-*' 'com/sun/jna/linux-aarch64/*' \
  'com/sun/jna/linux-arm*' 'com/sun/jna/linux-ppc*' 'com/sun/jna/linux-s390x/*' 'com/sun/jna/linux-mips*' \
  'com/sun/jna/linux-loongarch64/*' 'com/sun/jna/linux-riscv64/*' 'com/sun/jna/linux-x86/*' >/dev/null || true
mkdir "$out/moe-classes"
(cd "$out/moe-classes" && unzip -q ../moe.jar)
tar -cf - -C "$out/moe-classes" . | xz -T2 -9 > "$out/moe-classes.tar.xz"
rm -rf "$out/moe-classes" "$out/moe.jar"
jre_bytes=$(stat -c %s "$out/jre.tar.xz")
jar_bytes=$(stat -c %s "$out/moe-classes.tar.xz")
total=$((jre_bytes + jar_bytes))
tree_bytes=$(git -C "$here" ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
{
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git -C "$here" rev-parse --short HEAD)$([ -z "$(git -C "$here" status --porcelain)" ] || echo -dirty)"
  echo "jdk: $("$JAVA_HOME/bin/java" -version 2>&1 | head -1)"
  echo "modules: $modules"
  echo "jre.tar.xz: $jre_bytes bytes"
  echo "moe-classes.tar.xz: $jar_bytes bytes"
  echo "payload: $total bytes ($(awk "BEGIN {printf \"%.1f\", $total / 1048576}") MiB); tracked files of the working tree: $tree_bytes bytes"
} > "$out/PAYLOAD.txt"
cat "$out/PAYLOAD.txt"
limit=$((64 * 1048576))
if [ $((total + tree_bytes)) -gt "$limit" ]; then
  echo "gpu-payload: payload and working tree are $((total + tree_bytes)) bytes, over 64 MiB" >&2
  exit 1
fi
echo "gpu-payload: done in $(( $(date +%s) - start )) s; carry target/gpu-check" >&2
