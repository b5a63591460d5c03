package io.moecluster.core.safetensors;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.model.ModelFormatException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every broken checkpoint fails with a {@link ModelFormatException} naming the file (and tensor). */
class MalformedCheckpointTest {
    @TempDir
    Path dir;

    private Path model() {
        return dir.resolve("model.safetensors");
    }

    /** A file with the given header length field, header text and number of zero data bytes. */
    private Path writeRaw(Path file, long declaredHeaderLength, String header, int dataBytes) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(declaredHeaderLength).put(json);
        Files.write(file, buf.array());
        return file;
    }

    private Path writeRaw(Path file, String header, int dataBytes) throws IOException {
        return writeRaw(file, header.getBytes(StandardCharsets.UTF_8).length, header, dataBytes);
    }

    @Test
    void headerLengthLargerThanFile() throws IOException {
        writeRaw(model(), 1_000_000, "{}", 0);
        assertThatThrownBy(() -> Checkpoint.open(dir)).isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(model().toString()).hasMessageContaining("bad header length 1000000");
    }

    @Test
    void negativeOrZeroHeaderLength() throws IOException {
        writeRaw(model(), -8, "{}", 8);
        assertThatThrownBy(() -> SafetensorsFile.open(model())).isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(model().toString()).hasMessageContaining("bad header length -8");
        writeRaw(model(), 0, "{}", 8);
        assertThatThrownBy(() -> SafetensorsFile.open(model())).isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(model().toString()).hasMessageContaining("bad header length 0");
    }

    @Test
    void fileTooShortForALength() throws IOException {
        Files.write(model(), new byte[] {1, 2, 3});
        assertThatThrownBy(() -> SafetensorsFile.open(model())).isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(model().toString());
    }

    @Test
    void headerNotJson() throws IOException {
        writeRaw(model(), "this is not json", 0);
        assertThatThrownBy(() -> Checkpoint.open(dir)).isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(model().toString()).hasMessageContaining("not valid JSON");
    }

    @Test
    void dataOffsetsOutOfRange() throws IOException {
        writeRaw(model(), "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
        assertThatThrownBy(() -> Checkpoint.open(dir)).isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(model().toString()).hasMessageContaining("tensor 'w'")
                .hasMessageContaining("out of range");
    }

    @Test
    void dataOffsetsNotMatchingShapeAndDtype() throws IOException {
        writeRaw(model(), "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24);
        assertThatThrownBy(() -> Checkpoint.open(dir)).isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(model().toString()).hasMessageContaining("tensor 'w'")
                .hasMessageContaining("span 24 bytes").hasMessageContaining("needs 12");
    }

    @Test
    void unsupportedDtype() throws IOException {
        writeRaw(model(), "{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16);
        assertThatThrownBy(() -> Checkpoint.open(dir)).isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(model().toString()).hasMessageContaining("tensor 'ids'")
                .hasMessageContaining("I64");
    }

    @Test
    void missingTensor() throws IOException {
        writeValid(dir, "present");
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertThatThrownBy(() -> ckpt.info("model.norm.weight")).isInstanceOf(ModelFormatException.class)
                    .hasMessageContaining(model().toString()).hasMessageContaining("'model.norm.weight'")
                    .hasMessageContaining("missing");
        }
    }

    @Test
    void wrongShapeForTheConfig() throws IOException {
        writeValid(dir, "w");
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertThatThrownBy(() -> ckpt.info("w", 4, 2)).isInstanceOf(ModelFormatException.class)
                    .hasMessageContaining(model().toString()).hasMessageContaining("tensor 'w'")
                    .hasMessageContaining("[2, 4]").hasMessageContaining("[4, 2]");
        }
    }

    @Test
    void indexNamesAShardThatDoesNotExist() throws IOException {
        writeValid(dir, "a");
        Files.move(model(), dir.resolve("model-00001-of-00002.safetensors"));
        Files.writeString(dir.resolve("model.safetensors.index.json"), """
                {"metadata": {"total_size": 64}, "weight_map": {
                  "a": "model-00001-of-00002.safetensors",
                  "b": "model-00002-of-00002.safetensors"}}
                """);
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            ckpt.info("a", 2, 4);
            Path missing = dir.resolve("model-00002-of-00002.safetensors");
            assertThatThrownBy(() -> ckpt.info("b")).isInstanceOf(ModelFormatException.class)
                    .hasMessageContaining(missing.toString()).hasMessageContaining("does not exist");
        }
    }

    @Test
    void tensorMissingFromIndex() throws IOException {
        writeValid(dir, "a");
        Files.move(model(), dir.resolve("model-00001-of-00001.safetensors"));
        Files.writeString(dir.resolve("model.safetensors.index.json"),
                "{\"weight_map\": {\"a\": \"model-00001-of-00001.safetensors\"}}");
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertThatThrownBy(() -> ckpt.info("lm_head.weight")).isInstanceOf(ModelFormatException.class)
                    .hasMessageContaining("model.safetensors.index.json").hasMessageContaining("'lm_head.weight'");
        }
    }

    @Test
    void noModelFileInDirectory() {
        assertThatThrownBy(() -> Checkpoint.open(dir)).isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(dir.toString()).hasMessageContaining("model.safetensors");
    }

    private static void writeValid(Path dir, String tensor) throws IOException {
        try (SafetensorsWriter w = SafetensorsWriter.toCheckpoint(dir, 0)) {
            w.declare(tensor, DType.F32, 2, 4);
            w.write(tensor, new float[8]);
            w.finish();
        }
    }
}
