#!/usr/bin/env bash
# Fuzzes the data plane's decoders and the public API's request validation with Jazzer, outside CI:
# each @FuzzTest target for its maxExecutions (10^6 inputs), one after the other, then prints the
# inputs run and the time per target. A finding fails the run; Jazzer writes its input into the
# target's inputs directory (src/test/resources/.../<Test>Inputs/<method>/), which every
# ./mvn25 verify then runs as a regression test. Usage:
#
#   scripts/fuzz.sh                      # every target
#   scripts/fuzz.sh transport:io.moecluster.transport.DataPlaneFuzzTest#messagePoller
#   scripts/fuzz.sh --keep-corpus ...    # also copy up to 16 of each target's corpus inputs
#                                        # (the smallest first) into its inputs directory
#
# Environment: MAVEN_OPTS as for any build; MVN_FLAGS adds Maven flags (-o: offline). Needs Linux or
# macOS on x86-64 or arm64 (Jazzer's native fuzzer); the generated corpus goes to
# <module>/.cifuzz-corpus/ (git-ignored) and is reused by the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

keep=0
if [ "${1:-}" = "--keep-corpus" ]; then
  keep=1
  shift
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(
    transport:io.moecluster.transport.DataPlaneFuzzTest#tokenBatchView
    transport:io.moecluster.transport.DataPlaneFuzzTest#batchResultView
    transport:io.moecluster.transport.DataPlaneFuzzTest#messagePoller
    transport:io.moecluster.transport.DataPlaneFuzzTest#signedMessagePoller
    router-service:io.moecluster.router.RequestValidationFuzzTest#generateRequest
    router-service:io.moecluster.router.RequestValidationFuzzTest#generateRequestBytes
  )
fi

./mvn25 -q -B ${MVN_FLAGS:-} -pl transport,router-service -am install -DskipTests
mkdir -p target/fuzz
summary=target/fuzz/summary.txt
: > "$summary"
status=0
for t in "${targets[@]}"; do
  module=${t%%:*}
  test=${t#*:}
  class=${test%%#*}
  method=${test#*#}
  log=target/fuzz/${class##*.}-$method.log
  echo "fuzz: $test ($module), log $log"
  start=$(date +%s)
  if JAZZER_FUZZ=1 ./mvn25 -B ${MVN_FLAGS:-} test -pl "$module" -Dtest="$test" -Dsurefire.failIfNoSpecifiedTests=false >"$log" 2>&1; then
    result=ok
  else
    result=FINDING
    status=1
  fi
  seconds=$(( $(date +%s) - start ))
  # libFuzzer's last line: "Done N runs in S second(s)".
  done_line=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
  runs=$(echo "$done_line" | awk '{print $2}')
  fuzz_s=$(echo "$done_line" | awk '{print $5}')
  printf '%-62s %-8s %10s inputs in %6s s of fuzzing (%s s with the build)\n' "$test" "$result" "${runs:-?}" \
    "${fuzz_s:-?}" "$seconds" | tee -a "$summary"
  if [ "$keep" = 1 ]; then
    corpus="$module/.cifuzz-corpus/$class/$method"
    inputs="$module/src/test/resources/$(echo "$class" | tr . /)Inputs/$method"
    if [ -d "$corpus" ]; then
      mkdir -p "$inputs"
      find "$corpus" -type f -printf '%s %p\n' | sort -n | head -16 | while read -r _ f; do
        cp "$f" "$inputs/corpus-$(basename "$f")"
      done
    fi
  fi
done
echo "fuzz: summary in $summary"
exit $status
