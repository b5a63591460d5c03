package io.moecluster.cuda.bindings;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.cuda.backend.CudaKernels;
import io.moecluster.cuda.testing.NvidiaLibs;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** NVRTC 13.1 compiles on the host without a GPU: every shipped kernel, for the H200's sm_90. */
class NvrtcTest {
    @Test
    void everyShippedKernelCompilesToSm90CubinWithoutWarnings() {
        Nvrtc nvrtc = NvidiaLibs.libs13().requireNvrtc();
        assertThat(nvrtc.supportedArchs()).contains(80, 90);
        List<Nvrtc.Compiled> all = CudaKernels.compileAll(nvrtc, Nvrtc.Output.CUBIN, 9, 0);
        assertThat(all).hasSize(CudaKernels.SOURCES.size());
        for (int i = 0; i < all.size(); i++) {
            Nvrtc.Compiled c = all.get(i);
            assertThat(c.arch()).isEqualTo("sm_90");
            assertThat(c.log()).as(c.name() + "'s compile log").isEmpty();
            // an ELF image naming every kernel of the source
            assertThat(new String(c.image(), 0, 4, StandardCharsets.ISO_8859_1)).isEqualTo("\u007fELF");
            String image = new String(c.image(), StandardCharsets.ISO_8859_1);
            for (String kernel : CudaKernels.SOURCES.get(i).kernels()) {
                assertThat(image).as(c.name()).contains(kernel);
            }
        }
    }

    @Test
    void ptxIsForTheVirtualArchitectureAndCarriesNvrtcsIsaVersion() {
        Nvrtc nvrtc = NvidiaLibs.libs13().requireNvrtc();
        for (Nvrtc.Compiled c : CudaKernels.compileAll(nvrtc, Nvrtc.Output.PTX, 9, 0)) {
            String ptx = new String(c.image(), StandardCharsets.US_ASCII);
            assertThat(c.log()).isEmpty();
            // ISA 9.1: what a CUDA 13.0 driver refuses, hence CUBIN where NVRTC is newer than the driver
            assertThat(ptx).contains(".version 9.1").contains(".target sm_90").doesNotContain("\0");
        }
    }

    @Test
    void aCompileErrorCarriesTheLog() {
        Nvrtc nvrtc = NvidiaLibs.libs13().requireNvrtc();
        assertThatThrownBy(() -> nvrtc.compile("bad.cu", "extern \"C\" __global__ void k(float* x) { x[0] = y; }",
                Nvrtc.Output.CUBIN, 9, 0, List.of())).isInstanceOfSatisfying(CudaException.class, e -> {
                    assertThat(e.call()).isEqualTo("nvrtcCompileProgram(bad.cu, sm_90)");
                    assertThat(e.statusName()).isEqualTo("NVRTC_ERROR_COMPILATION");
                    assertThat(e.getMessage()).contains("identifier \"y\" is undefined");
                });
        assertThatThrownBy(() -> nvrtc.compile("k.cu", "extern \"C\" __global__ void k() {}", Nvrtc.Output.CUBIN, 1, 0,
                List.of())).isInstanceOf(CudaException.class).hasMessageContaining("NVRTC_ERROR_INVALID_OPTION");
    }
}
