package io.moecluster.cuda.bindings;

import static org.assertj.core.api.Assertions.assertThat;

import io.moecluster.cuda.testing.NvidiaLibs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.assertj.core.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Loading NVIDIA's real libraries (CUDA 13.1 runtime and NVRTC; CUDA 12.6 runtime, cuBLAS, cuBLASLt
 * and NCCL 2.23) by full path as consistent sets, versions read at load, mismatches refused, and
 * every downcall handle linked.
 */
class CudaLibrariesTest {
    @TempDir
    Path tmp;

    @Test
    void cuda13RuntimeAndNvrtcLoadAndReportTheirVersions() {
        CudaLibraries l = NvidiaLibs.libs13();
        assertThat(l.major()).isEqualTo(13);
        assertThat(l.requireCudart().runtimeVersion()).isEqualTo(13010);
        assertThat(l.requireNvrtc().version()).containsExactly(13, 1);
        assertThat(l.problems()).containsOnlyKeys(CudaLibraries.CUBLAS, CudaLibraries.NCCL);
        assertThat(l.problems().get(CudaLibraries.CUBLAS)).isEqualTo("libcublasLt.so.13 not found");
        assertThat(l.describe()).contains("CUDA runtime 13.1 (" + NvidiaLibs.cuda13().resolve("libcudart.so.13"))
                .contains("NVRTC 13.1").contains("searched " + NvidiaLibs.cuda13());
    }

    @Test
    void cuda12RuntimeCublasAndNcclLoadAndReportTheirVersions() {
        CudaLibraries l = NvidiaLibs.libs12();
        assertThat(l.major()).isEqualTo(12);
        assertThat(l.requireCudart().runtimeVersion()).isEqualTo(12060);
        assertThat(l.requireCublas().version()).startsWith(12, 6);
        assertThat(l.requireCublasLt().version() / 100).isEqualTo(1206);
        assertThat(Nccl.versionString(l.requireNccl().version())).isEqualTo("2.23.4");
        assertThat(l.problems()).containsOnlyKeys(CudaLibraries.NVRTC);
    }

    @Test
    void cublasOfAnotherCudaMajorThanTheRuntimeIsRefused() {
        CudaLibraries mixed = CudaLibraries.load(LibraryLocator.ofFolders(List.of(NvidiaLibs.cuda13(), NvidiaLibs.cuda12())));
        assertThat(mixed.major()).isEqualTo(13);
        assertThat(mixed.cublas()).isEmpty();
        assertThat(mixed.problems().get(CudaLibraries.CUBLAS)).isEqualTo("libcublasLt.so.13 not found; "
                + NvidiaLibs.cuda12().resolve("libcublasLt.so.12") + " is for CUDA 12 but the CUDA runtime is 13.1 ("
                + NvidiaLibs.cuda13().resolve("libcudart.so.13") + "): refusing to mix CUDA major versions");
        // NCCL carries its own CUDA runtime and is used as found
        assertThat(mixed.nccl()).isPresent();
    }

    @Test
    void aRuntimeReportingAnotherMajorThanItsFileNameIsRefused() throws IOException {
        Path fake = Files.createSymbolicLink(tmp.resolve("libcudart.so.13"), NvidiaLibs.cuda12().resolve("libcudart.so.12"));
        CudaLibraries l = CudaLibraries.load(LibraryLocator.ofFolders(List.of(tmp)));
        assertThat(l.cudart()).isEmpty();
        assertThat(l.problems().get(CudaLibraries.RUNTIME)).isEqualTo(fake.toAbsolutePath()
                + " reports CUDA runtime 12.6, not 13.x as its name says; refusing a mismatched runtime");
    }

    @Test
    void nothingFoundIsAProblemPerLibraryNotAnException() {
        CudaLibraries none = CudaLibraries.load(LibraryLocator.ofFolders(List.of(tmp)));
        assertThat(none.problems()).containsOnlyKeys(CudaLibraries.RUNTIME, CudaLibraries.NVRTC, CudaLibraries.CUBLAS,
                CudaLibraries.NCCL);
        assertThat(none.problems().get(CudaLibraries.RUNTIME)).isEqualTo("libcudart.so.13 or libcudart.so.12 not found");
        assertThat(none.searched()).isEqualTo(tmp.toString());
        Assertions.assertThatThrownBy(none::requireCudart)
                .hasMessage("CUDA runtime: libcudart.so.13 or libcudart.so.12 not found");
    }

    @Test
    void everyDowncallHandleLinks() {
        CudaLibraries l13 = NvidiaLibs.libs13();
        CudaLibraries l12 = NvidiaLibs.libs12();
        assertThat(l13.requireCudart().library().linked()).containsExactlyInAnyOrder(CUDART);
        assertThat(l12.requireCudart().library().linked()).containsExactlyInAnyOrder(
                Arrays.stream(CUDART).filter(f -> !f.startsWith("cudaLibrary")).toArray(String[]::new));
        assertThat(l12.requireCudart().canLoadKernels()).isFalse();
        assertThat(l13.requireCudart().canLoadKernels()).isTrue();
        assertThat(l13.requireNvrtc().library().linked()).containsExactlyInAnyOrder("nvrtcVersion",
                "nvrtcGetNumSupportedArchs", "nvrtcGetSupportedArchs", "nvrtcCreateProgram", "nvrtcDestroyProgram",
                "nvrtcCompileProgram", "nvrtcGetProgramLogSize", "nvrtcGetProgramLog", "nvrtcGetPTXSize", "nvrtcGetPTX",
                "nvrtcGetCUBINSize", "nvrtcGetCUBIN", "nvrtcGetErrorString");
        assertThat(l12.requireCublas().library().linked()).containsExactlyInAnyOrder("cublasCreate_v2", "cublasDestroy_v2",
                "cublasSetStream_v2", "cublasSetWorkspace_v2", "cublasGetProperty", "cublasGetStatusName",
                "cublasGetStatusString", "cublasGemmEx", "cublasGemmGroupedBatchedEx");
        assertThat(l12.requireCublas().hasGroupedGemm()).isTrue();
        assertThat(l12.requireCublasLt().library().linked()).containsExactlyInAnyOrder("cublasLtCreate", "cublasLtDestroy",
                "cublasLtGetVersion", "cublasLtGetCudartVersion", "cublasLtGetStatusName", "cublasLtGetStatusString",
                "cublasLtMatmulDescCreate", "cublasLtMatmulDescDestroy", "cublasLtMatmulDescSetAttribute",
                "cublasLtMatrixLayoutCreate", "cublasLtMatrixLayoutDestroy", "cublasLtMatmulPreferenceCreate",
                "cublasLtMatmulPreferenceDestroy", "cublasLtMatmulPreferenceSetAttribute", "cublasLtMatmulAlgoGetHeuristic",
                "cublasLtMatmul");
        assertThat(l12.requireNccl().library().linked()).containsExactlyInAnyOrder("ncclGetVersion", "ncclGetUniqueId",
                "ncclCommInitRank", "ncclCommDestroy", "ncclGroupStart", "ncclGroupEnd", "ncclSend", "ncclRecv",
                "ncclGetErrorString", "ncclGetLastError");
    }

    static final String[] CUDART = {
        "cudaRuntimeGetVersion", "cudaDriverGetVersion", "cudaGetDeviceCount", "cudaSetDevice", "cudaGetDevice",
        "cudaDeviceGetAttribute", "cudaDeviceGetPCIBusId", "cudaMemGetInfo", "cudaDeviceSynchronize", "cudaGetErrorName",
        "cudaGetErrorString", "cudaMalloc", "cudaFree", "cudaMallocHost", "cudaFreeHost", "cudaMemcpyAsync",
        "cudaMemsetAsync", "cudaStreamCreateWithFlags", "cudaStreamDestroy", "cudaStreamSynchronize", "cudaStreamWaitEvent",
        "cudaEventCreateWithFlags", "cudaEventDestroy", "cudaEventRecord", "cudaEventSynchronize", "cudaEventElapsedTime",
        "cudaLaunchKernel", "cudaLibraryLoadData", "cudaLibraryUnload", "cudaLibraryGetKernel"
    };
}
