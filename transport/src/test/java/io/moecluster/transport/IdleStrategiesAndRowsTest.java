package io.moecluster.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.kernels.Kernels;
import io.moecluster.sbe.ElementType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.BusySpinIdleStrategy;
import org.agrona.concurrent.NoOpIdleStrategy;
import org.agrona.concurrent.SleepingIdleStrategy;
import org.agrona.concurrent.SleepingMillisIdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.YieldingIdleStrategy;
import org.junit.jupiter.api.Test;

class IdleStrategiesAndRowsTest {
    @Test
    void parsesEveryIdleStrategy() {
        assertThat(IdleStrategies.parse("backoff")).isInstanceOf(BackoffIdleStrategy.class);
        assertThat(IdleStrategies.parse(null)).isInstanceOf(BackoffIdleStrategy.class);
        assertThat(IdleStrategies.parse("sleeping:250")).isInstanceOf(SleepingIdleStrategy.class);
        assertThat(IdleStrategies.parse("yielding")).isInstanceOf(YieldingIdleStrategy.class);
        assertThat(IdleStrategies.parse("busy-spin")).isInstanceOf(BusySpinIdleStrategy.class);
        assertThatThrownBy(() -> IdleStrategies.parse("spinny")).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("spinny");
        assertThatThrownBy(() -> IdleStrategies.parse("sleeping:x")).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("sleeping:x");
        assertThat(IdleStrategies.parse("backoff:50")).isNotNull();
        assertThatThrownBy(() -> IdleStrategies.parse("backoff:0")).hasMessageContaining("backoff:0");
    }

    @Test
    void acceptsAeronsIdleStrategyNames() {
        assertThat(IdleStrategies.parse("spin")).isInstanceOf(BusySpinIdleStrategy.class);
        assertThat(IdleStrategies.parse("yield")).isInstanceOf(YieldingIdleStrategy.class);
        assertThat(IdleStrategies.parse("noop")).isInstanceOf(NoOpIdleStrategy.class);
        assertThat(IdleStrategies.parse("sleep-ms")).isInstanceOf(SleepingMillisIdleStrategy.class);
        assertThat(IdleStrategies.parse("org.agrona.concurrent.BackoffIdleStrategy")).isInstanceOf(BackoffIdleStrategy.class);
        assertThatThrownBy(() -> IdleStrategies.parse("org.example.Missing"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("org.example.Missing")
                .hasMessageContaining("busy-spin");
    }

    @Test
    void termLengthMustBeAPowerOfTwo(@org.junit.jupiter.api.io.TempDir Path dir) {
        assertThatThrownBy(() -> new EmbeddedMediaDriver(dir.resolve("aeron"), IdleStrategies.backoff(), 3 << 20, 1 << 24))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("ipcTermLength");
        assertThat(EmbeddedMediaDriver.maxMessageBytes(64 << 20)).isEqualTo(8 << 20);
        assertThat(EmbeddedMediaDriver.maxMessageBytes(1 << 30)).isEqualTo(16 << 20);
    }

    @Test
    void rowsRoundTripThroughHeapAndDirectBuffers() {
        try (Arena arena = Arena.ofConfined()) {
            int n = 3 * 5;
            MemorySegment src = arena.allocate(4L * (n + 2));
            for (int i = 0; i < n + 2; i++) {
                src.setAtIndex(Kernels.F32, i, i * 1.25f - 7);
            }
            for (ElementType type : new ElementType[] {ElementType.F32, ElementType.BF16, ElementType.F16}) {
                for (UnsafeBuffer buf : new UnsafeBuffer[] {new UnsafeBuffer(new byte[200]), new UnsafeBuffer(ByteBuffer.allocateDirect(200))}) {
                    TokenRows.encode(src, 2, 3, 5, type, buf, 7);
                    MemorySegment dst = arena.allocate(4L * (n + 1));
                    TokenRows.decode(buf, 7, 3, 5, type, dst, 1);
                    for (int i = 0; i < n; i++) {
                        // these values are exact in bf16 and f16
                        assertThat(dst.getAtIndex(Kernels.F32, 1 + i)).as("%s %d", type, i).isEqualTo(src.getAtIndex(Kernels.F32, 2 + i));
                    }
                }
            }
            assertThat(TokenRows.bytes(3, 5, ElementType.BF16)).isEqualTo(30);
            assertThatThrownBy(() -> TokenRows.encode(src, 0, 3, 5, ElementType.F32, new UnsafeBuffer(new byte[59]), 0))
                    .isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> TokenRows.bytes(1 << 20, 1 << 16, ElementType.F32)).isInstanceOf(IllegalArgumentException.class);
        }
    }
}
