package io.moecluster.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.moecluster.telemetry.TracingOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The official OpenAI client library, unchanged, against a cluster on loopback: the {@code openai}
 * npm package driven by Node ({@code src/test/openai-client/client-test.mjs}): models, chat and
 * completions, streaming and not, n, seed, logprobs, stop, and its error classes.
 *
 * <p>The client is installed by {@code npm ci} in that directory (CI does it before the build).
 * Where it is not installed the test is skipped, saying how to install it, unless
 * {@code MOE_REQUIRE_OPENAI_CLIENT} is set (as {@code .ci/run} sets it): then a missing client, or
 * a missing Node, fails the build.
 */
class OpenAiNodeClientTest {
    static final Path CLIENT_DIR = Path.of("src", "test", "openai-client").toAbsolutePath();
    static final String REQUIRE = "MOE_REQUIRE_OPENAI_CLIENT";

    @TempDir
    Path tmp;

    @Test
    void theOfficialOpenAiNodeClientWorksUnchanged() throws Exception {
        boolean required = System.getenv(REQUIRE) != null && !System.getenv(REQUIRE).isEmpty();
        String missing = null;
        if (!Files.isDirectory(CLIENT_DIR.resolve("node_modules").resolve("openai"))) {
            missing = "the openai npm package is not installed: run 'npm ci' in " + CLIENT_DIR;
        } else if (!nodeRuns()) {
            missing = "node is not on PATH (Node 20 or newer is needed)";
        }
        if (missing != null) {
            assertThat(required).as(REQUIRE + " is set, but " + missing).isFalse();
            Assumptions.abort(missing);
        }
        try (OpenAiCluster cluster = new OpenAiCluster(tmp, TracingOptions.off())) {
            Path log = tmp.resolve("client.log");
            ProcessBuilder pb = new ProcessBuilder(List.of("node", "client-test.mjs")).directory(CLIENT_DIR.toFile())
                    .redirectErrorStream(true).redirectOutput(log.toFile());
            Map<String, String> env = pb.environment();
            env.put("OPENAI_BASE_URL", cluster.router.httpUrl());
            env.put("MOE_MODEL", cluster.modelName());
            env.remove("OPENAI_API_KEY");
            Process p = pb.start();
            boolean done = p.waitFor(180, TimeUnit.SECONDS);
            if (!done) {
                p.destroyForcibly();
            }
            String output = Files.readString(log, StandardCharsets.UTF_8);
            System.out.println("client-test.mjs:\n" + output);
            assertThat(done).as("client-test.mjs did not finish within 180 s:\n" + output).isTrue();
            assertThat(p.exitValue()).as("client-test.mjs failed:\n" + output).isZero();
            assertThat(output).contains("ok chat.completions.create stream").contains("ok completions.create stream")
                    .contains("ok errors").contains("all checks passed");
        }
    }

    static boolean nodeRuns() {
        try {
            Process p = new ProcessBuilder("node", "--version").redirectErrorStream(true).start();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
