package io.moecluster.cuda.bindings;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.cuda.testing.NvidiaLibs;
import org.junit.jupiter.api.Test;

/** NCCL 2.23 without a GPU: the unique id, its by-value passing, and a communicator refused cleanly. */
class NcclTest {
    @Test
    void theUniqueIdIsA128ByteStructPassedByValue() {
        assertThat(Nccl.UNIQUE_ID.byteSize()).isEqualTo(128);
        Nccl nccl = NvidiaLibs.libs12().requireNccl();
        NcclUniqueId id = nccl.uniqueId();
        assertThat(id.bytes()).hasSize(128).isNotEqualTo(new byte[128]);
        assertThat(nccl.uniqueId()).isNotEqualTo(id);
        assertThat(NcclUniqueId.fromHex(id.toHex())).isEqualTo(id);
        assertThat(id.toHex()).hasSize(256).matches("[0-9a-f]+");
        assertThatThrownBy(() -> NcclUniqueId.fromHex("ab")).hasMessage("an ncclUniqueId is 256 hex digits, got 2");
        assertThatThrownBy(() -> new NcclUniqueId(new byte[127])).hasMessage("an ncclUniqueId is 128 bytes, got 127");
    }

    @Test
    void aCommunicatorWithoutAGpuFailsNamingTheDriversError() {
        Nccl nccl = NvidiaLibs.libs12().requireNccl();
        // the 128-byte id goes by value through ncclCommInitRank, which fails cleanly at its first CUDA call
        assertThatThrownBy(() -> nccl.initRank(1, nccl.uniqueId(), 0)).isInstanceOfSatisfying(CudaException.class, e -> {
            assertThat(e.call()).isEqualTo("ncclCommInitRank(1 ranks, rank 0)");
            assertThat(e.statusName()).isEqualTo("ncclUnhandledCudaError");
            assertThat(e.getMessage()).contains("CUDA driver version is insufficient for CUDA runtime version");
        });
        assertThatThrownBy(() -> nccl.initRank(1, nccl.uniqueId(), 1)).isInstanceOf(IllegalArgumentException.class);
        assertThat(Nccl.versionString(22304)).isEqualTo("2.23.4");
    }
}
