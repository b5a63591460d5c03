package io.moecluster.cuda.bindings;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.cuda.testing.NvidiaLibs;
import org.junit.jupiter.api.Test;

/** cuBLAS and cuBLASLt 12.6 without a GPU: versions, host descriptors, and handle creation refused cleanly. */
class CublasTest {
    @Test
    void cublasCreateWithoutADeviceIsACleanError() {
        Cublas cublas = NvidiaLibs.libs12().requireCublas();
        assertThatThrownBy(cublas::create).isInstanceOfSatisfying(CudaException.class, e -> {
            assertThat(e.status()).isEqualTo(Cublas.STATUS_NOT_INITIALIZED);
            assertThat(e).hasMessage("cublasCreate_v2: CUBLAS_STATUS_NOT_INITIALIZED (1): the library was not initialized");
        });
        assertThat(cublas.statusName(7)).isEqualTo("CUBLAS_STATUS_INVALID_VALUE");
    }

    @Test
    void cublasLtDescriptorsLayoutsAndPreferencesAreCreatedAndDestroyed() {
        CublasLt lt = NvidiaLibs.libs12().requireCublasLt();
        CublasLt.MatmulDesc desc = lt.matmulDesc(Cublas.COMPUTE_32F, Cublas.R_32F);
        CublasLt.MatrixLayout a = lt.layout(Cublas.R_16BF, 4096, 14336, 4096);
        CublasLt.MatrixLayout c = lt.layout(Cublas.R_32F, 14336, 64, 14336);
        CublasLt.MatmulPreference pref = lt.preference(32L << 20);
        lt.setInt(desc, CublasLt.MATMUL_DESC_TRANSA, Cublas.OP_T);
        lt.setInt(desc, CublasLt.MATMUL_DESC_TRANSB, Cublas.OP_N);
        for (NativeHandle h : new NativeHandle[] {desc, a, c, pref}) {
            assertThat(h.isOpen()).isTrue();
            h.close();
            assertThat(h.isOpen()).isFalse();
        }
        // a closed descriptor is never handed to cuBLASLt again
        assertThatThrownBy(() -> lt.setInt(desc, CublasLt.MATMUL_DESC_TRANSA, Cublas.OP_N))
                .isInstanceOf(IllegalStateException.class).hasMessage("cublasLtMatmulDesc_t is closed");
        assertThatThrownBy(() -> lt.setInt(lt.matmulDesc(Cublas.COMPUTE_32F, Cublas.R_32F), 9999, 0))
                .isInstanceOf(CudaException.class).hasMessageStartingWith("cublasLtMatmulDescSetAttribute(9999): CUBLAS_STATUS_INVALID_VALUE (7)");
    }

    @Test
    void cublasLtCreateWithoutADeviceIsACleanError() {
        CublasLt lt = NvidiaLibs.libs12().requireCublasLt();
        assertThatThrownBy(lt::create).isInstanceOf(CudaException.class)
                .hasMessage("cublasLtCreate: CUBLAS_STATUS_NOT_INITIALIZED (1): the library was not initialized");
    }
}
