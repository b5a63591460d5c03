package io.moecluster.core.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moecluster.core.kernels.Fp8E4m3;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsWriterTest {
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir
    Path dir;

    @Test
    void roundTripsF32F16AndBf16ThroughCheckpoint() throws IOException {
        float[] a = {1f, -2.5f, 3.25f, 0f, 1e-3f, 65504f};
        float[] b = {0.1f, -0.333f, 1000f, 6e-5f, -0f};
        float[] c = {1f, 3.14159f, -1e10f, 0.1f};
        try (SafetensorsWriter w = SafetensorsWriter.toCheckpoint(dir, 0)) {
            w.declare("a", DType.F32, 2, 3).declare("b", DType.F16, 5).declare("c", DType.BF16, 2, 2);
            w.write("a", a);
            w.write("b", b);
            w.write("c", c);
            assertThat(w.finish()).containsExactly(dir.resolve("model.safetensors"));
        }
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertThat(ckpt.isSharded()).isFalse();
            assertThat(ckpt.tensorNames()).containsExactly("a", "b", "c");
            assertThat(ckpt.info("a", 2, 3).dtype()).isEqualTo(DType.F32);
            assertThat(readFloats(ckpt, "a")).containsExactly(a);
            float[] bBack = readFloats(ckpt, "b");
            for (int i = 0; i < b.length; i++) {
                assertThat(bBack[i]).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(b[i])));
                assertThat(bBack[i]).isCloseTo(b[i], Offset.offset(Math.abs(b[i]) * 1e-3f + 1e-7f));
            }
            float[] cBack = readFloats(ckpt, "c");
            for (int i = 0; i < c.length; i++) {
                assertThat(cBack[i]).isCloseTo(c[i], Offset.offset(Math.abs(c[i]) / 128));
            }
        }
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            assertThat(f.metadata()).containsEntry("format", "pt");
        }
        ByteBuffer len = ByteBuffer.wrap(Files.readAllBytes(dir.resolve("model.safetensors")), 0, 8)
                .order(ByteOrder.LITTLE_ENDIAN);
        assertThat(len.getLong() % 8).as("data section starts 8-byte aligned").isZero();
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertThat(SafetensorsWriter.bf16(1.0f)).isEqualTo((short) 0x3F80);
        assertThat(SafetensorsWriter.bf16(-2.5f)).isEqualTo((short) 0xC020);
        // Exactly half-way, lower half even: stays.
        assertThat(SafetensorsWriter.bf16(Float.intBitsToFloat(0x3F808000))).isEqualTo((short) 0x3F80);
        // Exactly half-way, lower half odd: rounds up to even.
        assertThat(SafetensorsWriter.bf16(Float.intBitsToFloat(0x3F818000))).isEqualTo((short) 0x3F82);
        // Just above / below half-way.
        assertThat(SafetensorsWriter.bf16(Float.intBitsToFloat(0x3F808001))).isEqualTo((short) 0x3F81);
        assertThat(SafetensorsWriter.bf16(Float.intBitsToFloat(0x3F807FFF))).isEqualTo((short) 0x3F80);
        // 3.14159 = 0x40490FD0 -> 0x4049 (below half).
        assertThat(SafetensorsWriter.bf16(3.14159f)).isEqualTo((short) 0x4049);
        assertThat(SafetensorsWriter.bf16(Float.MAX_VALUE)).isEqualTo((short) 0x7F80); // overflows to +inf
        assertThat(SafetensorsWriter.bf16(Float.NEGATIVE_INFINITY)).isEqualTo((short) 0xFF80);
        short nan = SafetensorsWriter.bf16(Float.NaN);
        assertThat(Float.isNaN(Float.intBitsToFloat((nan & 0xffff) << 16))).isTrue();
        // A NaN whose payload lives only in the low bits must not become infinity.
        short lowNan = SafetensorsWriter.bf16(Float.intBitsToFloat(0x7F800001));
        assertThat(Float.isNaN(Float.intBitsToFloat((lowNan & 0xffff) << 16))).isTrue();
    }

    @Test
    void bf16ValuesInFileMatchTheRounding() throws IOException {
        float[] v = {1.0f, Float.intBitsToFloat(0x3F808000), Float.intBitsToFloat(0x3F818000), 3.14159f};
        try (SafetensorsWriter w = SafetensorsWriter.toFile(dir.resolve("x.safetensors"))) {
            w.declare("v", DType.BF16, 4);
            w.write("v", v);
            w.finish();
        }
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("x.safetensors"))) {
            MemorySegment s = f.map(f.info("v"));
            assertThat(new short[] {s.get(I16_LE, 0), s.get(I16_LE, 2), s.get(I16_LE, 4), s.get(I16_LE, 6)})
                    .containsExactly((short) 0x3F80, (short) 0x3F80, (short) 0x3F82, (short) 0x4049);
        }
    }

    @Test
    void streamsTensorsLargerThanTheStagingBuffer() throws IOException {
        int n = SafetensorsWriter.STAGING_BYTES / 4 * 2 + 12345; // several flushes and a partial chunk
        try (SafetensorsWriter w = SafetensorsWriter.toCheckpoint(dir, 0)) {
            w.declare("small", DType.F32, 3).declare("big", DType.F32, n);
            w.write("small", new float[] {7, 8, 9});
            w.write("big", (first, values, count) -> {
                for (int i = 0; i < count; i++) {
                    values[i] = (float) (first + i);
                }
            });
            w.finish();
        }
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            MemorySegment big = ckpt.map(ckpt.info("big", n));
            for (long i : new long[] {0, 1, SafetensorsWriter.CHUNK_FLOATS, n / 2, n - 1}) {
                assertThat(big.getAtIndex(F32_LE, i)).isEqualTo((float) i);
            }
            assertThat(readFloats(ckpt, "small")).containsExactly(7, 8, 9);
        }
    }

    @Test
    void shardsWithIndexWhenAMaxShardSizeIsGiven() throws IOException {
        // Five 4000-byte tensors and one 12000-byte tensor, at most 9000 bytes per shard:
        // [t0,t1] [t2,t3] [huge] [t4] -- an oversized tensor gets a shard of its own.
        List<String> names = List.of("t0", "t1", "t2", "t3", "huge", "t4");
        List<Path> written;
        try (SafetensorsWriter w = SafetensorsWriter.toCheckpoint(dir, 9000)) {
            for (String name : names) {
                w.declare(name, DType.F32, name.equals("huge") ? 3000 : 1000);
            }
            for (String name : names) {
                float tag = name.hashCode();
                w.write(name, (first, values, count) -> Arrays.fill(values, 0, count, tag));
            }
            written = w.finish();
        }
        assertThat(written).containsExactly(
                dir.resolve("model-00001-of-00004.safetensors"), dir.resolve("model-00002-of-00004.safetensors"),
                dir.resolve("model-00003-of-00004.safetensors"), dir.resolve("model-00004-of-00004.safetensors"),
                dir.resolve("model.safetensors.index.json"));
        assertThat(dir.resolve("model.safetensors")).doesNotExist();

        JsonNode index = new ObjectMapper().readTree(dir.resolve("model.safetensors.index.json").toFile());
        assertThat(index.at("/metadata/total_size").asLong()).isEqualTo(5 * 4000 + 12000);
        assertThat(index.at("/weight_map/t1").asText()).isEqualTo("model-00001-of-00004.safetensors");
        assertThat(index.at("/weight_map/t2").asText()).isEqualTo("model-00002-of-00004.safetensors");
        assertThat(index.at("/weight_map/huge").asText()).isEqualTo("model-00003-of-00004.safetensors");
        assertThat(index.at("/weight_map/t4").asText()).isEqualTo("model-00004-of-00004.safetensors");

        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertThat(ckpt.isSharded()).isTrue();
            assertThat(ckpt.tensorNames()).containsExactlyInAnyOrderElementsOf(names);
            for (String name : names) {
                float[] v = readFloats(ckpt, name);
                assertThat(v).hasSize(name.equals("huge") ? 3000 : 1000);
                assertThat(v[0]).isEqualTo((float) name.hashCode());
                assertThat(v[v.length - 1]).isEqualTo((float) name.hashCode());
            }
        }
    }

    @Test
    void writesOneFileWhenEverythingFitsInOneShard() throws IOException {
        try (SafetensorsWriter w = SafetensorsWriter.toCheckpoint(dir, 1 << 20)) {
            w.declare("x", DType.F16, 10);
            w.write("x", new float[10]);
            assertThat(w.finish()).containsExactly(dir.resolve("model.safetensors"));
        }
        assertThat(dir.resolve("model.safetensors.index.json")).doesNotExist();
    }

    @Test
    void writesF8E4m3AsTheNearestValueOneBytePerElement() throws IOException {
        float[] values = {0f, 1f, -1.0625f, 1.1875f, 448f, 1000f, 0x1p-9f, 3.3f};
        try (SafetensorsWriter w = SafetensorsWriter.toCheckpoint(dir, 0)) {
            w.declare("q", DType.F8_E4M3, 2, 4);
            w.write("q", values);
            w.finish();
        }
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertThat(ckpt.info("q").dtype()).isEqualTo(DType.F8_E4M3);
            assertThat(ckpt.info("q").byteSize()).isEqualTo(8);
            // Ties to even (-1.0625 -> -1, 1.1875 -> 1.25), saturation at 448, 3.3 -> 3.25.
            assertThat(readFloats(ckpt, "q")).containsExactly(0f, 1f, -1f, 1.25f, 448f, 448f, 0x1p-9f, 3.25f);
        }
    }

    @Test
    void refusesMisuse() throws IOException {
        try (SafetensorsWriter w = SafetensorsWriter.toCheckpoint(dir, 0)) {
            w.declare("a", DType.F32, 2).declare("b", DType.F32, 2);
            assertThatThrownBy(() -> w.declare("a", DType.F32, 1)).hasMessageContaining("'a' declared twice");
            assertThatThrownBy(() -> w.write("b", new float[2]))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("'b' written out of order").hasMessageContaining("'a'");
            assertThatThrownBy(() -> w.write("a", new float[3])).hasMessageContaining("has 2 elements");
            w.write("a", new float[2]);
            assertThatThrownBy(() -> w.declare("c", DType.F32, 1)).isInstanceOf(IllegalStateException.class);
            assertThatThrownBy(w::finish).isInstanceOf(IllegalStateException.class).hasMessageContaining("'b'");
        }
    }

    static float[] readFloats(Checkpoint ckpt, String name) {
        TensorInfo info = ckpt.info(name);
        MemorySegment s = ckpt.map(info);
        float[] out = new float[(int) info.elementCount()];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (info.dtype()) {
                case F32 -> s.getAtIndex(F32_LE, i);
                case F16 -> Float.float16ToFloat(s.getAtIndex(I16_LE, i));
                case BF16 -> Float.intBitsToFloat((s.getAtIndex(I16_LE, i) & 0xffff) << 16);
                case F8_E4M3 -> Fp8E4m3.toFloat(s.get(ValueLayout.JAVA_BYTE, i));
                case I8 -> s.get(ValueLayout.JAVA_BYTE, i);
            };
        }
        return out;
    }
}
