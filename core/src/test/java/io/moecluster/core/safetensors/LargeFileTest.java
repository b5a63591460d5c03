package io.moecluster.core.safetensors;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tensors beyond the 2 GiB mark (where int offsets and ByteBuffer mappings break) map and read
 * correctly. The file is sparse: only the header and the last tensor's bytes are written, so the
 * test costs a few KB of disk and milliseconds.
 */
class LargeFileTest {
    @TempDir
    Path dir;

    @Test
    void readsATensorPastTwoGibibytes() throws IOException {
        long padBytes = 2_362_232_012L & ~3L; // ~2.2 GiB of zero floats, never written (a hole)
        float[] values = {1.5f, -2.25f, 3e-7f, 42f};
        String header = "{\"pad\":{\"dtype\":\"F32\",\"shape\":[" + padBytes / 4 + "],\"data_offsets\":[0," + padBytes
                + "]},\"far\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[" + padBytes + "," + (padBytes + 16)
                + "]}}";
        byte[] json = (header + " ".repeat((8 - header.length() % 8) % 8)).getBytes(StandardCharsets.UTF_8);
        long dataStart = 8 + json.length;
        Path file = dir.resolve("model.safetensors");
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                StandardOpenOption.SPARSE)) {
            ByteBuffer head = ByteBuffer.allocate((int) dataStart).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(json.length).put(json).flip();
            ch.write(head, 0);
            ByteBuffer far = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : values) {
                far.putFloat(v);
            }
            far.flip();
            ch.write(far, dataStart + padBytes);
        }
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            TensorInfo info = ckpt.info("far", 2, 2);
            assertThat(info.begin()).isGreaterThan(Integer.MAX_VALUE);
            MemorySegment s = ckpt.map(info);
            ValueLayout.OfFloat f32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < values.length; i++) {
                assertThat(s.getAtIndex(f32, i)).isEqualTo(values[i]);
            }
            // The pad tensor maps too (a > 2 GiB segment); its pages are never touched but one.
            MemorySegment pad = ckpt.map(ckpt.info("pad"));
            assertThat(pad.byteSize()).isEqualTo(padBytes);
            assertThat(pad.get(f32, padBytes - 4)).isEqualTo(0f);
        }
    }
}
