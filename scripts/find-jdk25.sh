# Sourced by ./mvn25 and ./moe: sets JAVA_HOME to a JDK 25 or exits with a clear message.
# Order: $JAVA_HOME if it is a JDK 25, else the first /usr/lib/jvm/*25* that has bin/javac.
moe_jdk_major() {
  "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n1
}
moe_find_jdk25() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && [ "$(moe_jdk_major "$JAVA_HOME")" = "25" ]; then
    return 0
  fi
  for candidate in /usr/lib/jvm/*25*; do
    if [ -x "$candidate/bin/javac" ] && [ "$(moe_jdk_major "$candidate")" = "25" ]; then
      JAVA_HOME="$candidate"
      export JAVA_HOME
      return 0
    fi
  done
  echo "error: no JDK 25 found. Set JAVA_HOME to a JDK 25 (e.g. Temurin 25) or install one under /usr/lib/jvm." >&2
  if [ -n "${JAVA_HOME:-}" ]; then
    echo "       JAVA_HOME=$JAVA_HOME is version '$(moe_jdk_major "$JAVA_HOME" 2>/dev/null || echo unknown)'." >&2
  fi
  exit 1
}
moe_find_jdk25
