package io.moecluster.cuda.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.backend.Availability;
import io.moecluster.core.backend.ComputeBackendProvider;
import io.moecluster.core.backend.ComputeBackends;
import io.moecluster.cuda.bindings.CudaLibraries;
import io.moecluster.cuda.bindings.LibraryLocator;
import io.moecluster.cuda.testing.NvidiaLibs;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The cuda backend says why it cannot run, before anything opens, on machines without a GPU. */
class CudaBackendProviderTest {
    @TempDir
    Path empty;

    @Test
    void theSeamFindsItThroughServiceLoader() {
        ComputeBackendProvider p = ComputeBackends.provider("cuda");
        assertThat(p).isInstanceOf(CudaBackendProvider.class);
        assertThat(p.hasDevices()).isTrue();
        assertThat(ComputeBackends.provider("cuda:3")).isInstanceOf(CudaBackendProvider.class);
    }

    @Test
    void withoutLibrariesEachMissingOneIsNamedWithTheFoldersSearched() {
        CudaLibraries none = CudaLibraries.load(LibraryLocator.ofFolders(List.of(empty)));
        Availability a = new CudaBackendProvider(none).availability();
        assertThat(a.reasons()).containsExactly(
                "CUDA runtime: libcudart.so.13 or libcudart.so.12 not found",
                "NVRTC: libnvrtc.so.13 or libnvrtc.so.12 not found",
                "cuBLAS: libcublasLt.so.13 or libcublasLt.so.12 not found",
                "searched " + empty);
    }

    @Test
    void withTheCuda13LibrariesTheDriversErrorIsReported() {
        Availability a = new CudaBackendProvider(NvidiaLibs.libs13()).availability();
        assertThat(a.reasons()).containsExactly(
                "cuBLAS: libcublasLt.so.13 not found",
                "searched " + NvidiaLibs.cuda13(),
                "cudaGetDeviceCount: cudaErrorInsufficientDriver (35): CUDA driver version is insufficient for CUDA runtime version");
        assertThat(new CudaBackendProvider(NvidiaLibs.libs13()).description()).isEmpty();
    }

    @Test
    void aCuda12RuntimeWithoutLibraryLoadingIsRefused() {
        Availability a = new CudaBackendProvider(NvidiaLibs.libs12()).availability(1);
        assertThat(a.reasons()).containsExactly(
                "NVRTC: libnvrtc.so.12 not found",
                "searched " + NvidiaLibs.cuda12(),
                "CUDA runtime 12.6 (" + NvidiaLibs.cuda12().resolve("libcudart.so.12") + ") lacks cudaLibraryLoadData, "
                        + "which loading the kernels needs (CUDA 12.8+ or 13)",
                "cudaGetDeviceCount: cudaErrorInsufficientDriver (35): CUDA driver version is insufficient for CUDA runtime version");
    }

    @Test
    void onThisMachineDeviceCudaFailsInOneLineBeforeAnythingOpens() {
        for (String device : new String[] {"cuda", "cuda:1"}) {
            assertThatThrownBy(() -> ComputeBackends.requireAvailable(device))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("--device " + device + ": cannot run on this machine: ")
                    .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
        }
    }
}
