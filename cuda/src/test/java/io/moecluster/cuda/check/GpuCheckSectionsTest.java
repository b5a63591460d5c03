package io.moecluster.cuda.check;

import static org.assertj.core.api.Assertions.assertThat;

import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.ComputeBackends;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.cuda.backend.EmulatedCudaBackendProvider;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GPU check's expert and engine sections, run here over the host emulation of the GPU path:
 * the check's own code (batches, comparisons, tolerances, the report) is exercised before it ever
 * meets a GPU, so a GPU run fails only on what the GPU does.
 */
class GpuCheckSectionsTest {
    @TempDir
    Path out;

    /** The golden models side by side, as in core's test resources (from the test-jar they come one per folder). */
    private Path golden() throws IOException {
        Path golden = out.resolve("golden");
        for (String model : GpuCheck.MODELS) {
            Path src = GoldenModels.dir(model);
            Path dst = Files.createDirectories(golden.resolve(model));
            try (var files = Files.list(src)) {
                for (Path f : files.toList()) {
                    Files.copy(f, dst.resolve(f.getFileName()));
                }
            }
        }
        return golden;
    }

    @Test
    void expertAndEngineSectionsPassOnTheEmulatedGpuPath() throws Exception {
        Path golden = golden();
        Report report = new Report(out.resolve("report.md"));
        GpuCheck check = new GpuCheck(report, golden, out, 0);
        try (WorkerPool pool = new WorkerPool(2, "t");
             ComputeBackend emulated = ComputeBackends.open(EmulatedCudaBackendProvider.NAME, pool)) {
            check.expertFfns(emulated, pool);
        }
        check.engines(EmulatedCudaBackendProvider.NAME);
        String text = Files.readString(out.resolve("report.md"));
        System.out.println(text);
        assertThat(report.failed()).as(text).isZero();
        // Per model: its expert FFNs, its two golden cases, its greedy tokens.
        assertThat(report.passed()).isEqualTo(4 * (1 + 2 + 1));
        assertThat(text).contains("mixtral-tiny greedy, 32 tokens").contains("qwen2moe-tiny sentence")
                .contains("deepseek-v3-tiny-fp8 sentence").contains("deepseek-v3-tiny greedy, 32 tokens");
    }

    @Test
    void theScriptsSmallModesWork() throws Exception {
        Path golden = golden();
        assertThat(GpuCheck.join(GpuCheck.goldenCase(golden, "mixtral-tiny", "short").tokens())).isEqualTo("1,72,101,108,108,111");
        Path moe = Files.writeString(out.resolve("moe.json"), "[{\"tokensPerExpert\":1,\"ms\":0.5,\"tflops\":2.0}]");
        Path torch = Files.writeString(out.resolve("torch.json"), "{\"torch\":\"2.9.0\",\"device\":\"H200\",\"results\":"
                + "[{\"tokensPerExpert\":1,\"matmulMs\":0.25,\"matmulTflops\":4.0,\"ffnMs\":0.3,\"ffnTflops\":3.3}]}");
        assertThat(GpuCheck.benchTable(moe, torch)).isZero();
        assertThat(GpuCheck.benchTable(moe, out.resolve("absent.json"))).isZero();
    }
}
