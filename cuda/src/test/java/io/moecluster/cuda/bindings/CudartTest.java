package io.moecluster.cuda.bindings;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.cuda.testing.NvidiaLibs;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** The CUDA runtime on a machine without a GPU driver: versions, the driver's error, checked statuses. */
class CudartTest {
    @Test
    void withoutADriverEveryDeviceCallFailsWithError35Named() {
        for (CudaLibraries l : new CudaLibraries[] {NvidiaLibs.libs13(), NvidiaLibs.libs12()}) {
            Cudart c = l.requireCudart();
            assertThat(c.driverVersion()).isZero();
            assertThatThrownBy(c::deviceCount).isInstanceOfSatisfying(CudaException.class, e -> {
                assertThat(e.call()).isEqualTo("cudaGetDeviceCount");
                assertThat(e.status()).isEqualTo(Cudart.ERROR_INSUFFICIENT_DRIVER);
                assertThat(e.statusName()).isEqualTo("cudaErrorInsufficientDriver");
                assertThat(e).hasMessage("cudaGetDeviceCount: cudaErrorInsufficientDriver (35): "
                        + "CUDA driver version is insufficient for CUDA runtime version");
            });
            assertThatThrownBy(() -> c.malloc(1024)).isInstanceOfSatisfying(CudaException.class,
                    e -> assertThat(e.getMessage()).startsWith("cudaMalloc(1024 bytes): cudaErrorInsufficientDriver (35)"));
            assertThatThrownBy(() -> c.attribute(DeviceAttribute.COMPUTE_CAPABILITY_MAJOR, 0))
                    .hasMessageStartingWith("cudaDeviceGetAttribute(COMPUTE_CAPABILITY_MAJOR): cudaErrorInsufficientDriver");
            assertThatThrownBy(c::streamCreate).hasMessageStartingWith("cudaStreamCreateWithFlags: cudaErrorInsufficientDriver");
        }
    }

    @Test
    void errorsAreNamedByTheRuntime() {
        Cudart c = NvidiaLibs.libs13().requireCudart();
        assertThat(c.errorName(2)).isEqualTo("cudaErrorMemoryAllocation");
        assertThat(c.errorString(2)).isEqualTo("out of memory");
        assertThat(c.errorName(100)).isEqualTo("cudaErrorNoDevice");
        assertThat(Cudart.versionString(13010)).isEqualTo("13.1");
        assertThatThrownBy(() -> c.check("cudaFoo", 1)).hasMessage("cudaFoo: cudaErrorInvalidValue (1): invalid argument");
    }

    @Test
    void dim3IsThreeIntsByValue() {
        assertThat(Cudart.DIM3.byteSize()).isEqualTo(12);
        assertThat(Cudart.DIM3.memberLayouts()).hasSize(3);
    }

    @Test
    void handlesAreNeverNullAndRefuseUseAfterClose() {
        assertThatThrownBy(() -> new TestHandle(MemorySegment.NULL)).isInstanceOf(IllegalStateException.class)
                .hasMessage("test handle: the library returned success but a NULL handle");
        TestHandle h = new TestHandle(MemorySegment.ofAddress(0x1000));
        assertThat(h.ptr().address()).isEqualTo(0x1000);
        h.close();
        h.close();
        assertThat(h.destroyed).isEqualTo(1);
        assertThat(h.isOpen()).isFalse();
        assertThatThrownBy(h::ptr).isInstanceOf(IllegalStateException.class).hasMessage("test handle is closed");
    }

    static final class TestHandle extends NativeHandle {
        int destroyed;

        TestHandle(MemorySegment p) {
            super("test handle", p);
        }

        @Override
        protected void destroy(MemorySegment p) {
            destroyed++;
        }
    }
}
