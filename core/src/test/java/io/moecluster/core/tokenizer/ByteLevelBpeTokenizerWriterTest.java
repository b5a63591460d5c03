package io.moecluster.core.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ByteLevelBpeTokenizerWriterTest {
    private static final String TEXT = "Hello, world! こんにちは";

    @TempDir
    Path tmp;

    @Test
    void baseVocabularyIsByteIdenticalToTheGoldenTokenizer() throws Exception {
        Path golden = Path.of(getClass().getResource("/golden/mixtral-tiny/tokenizer.json").toURI());
        assertThat(ByteLevelBpeTokenizerWriter.toJson(259)).isEqualTo(Files.readString(golden, StandardCharsets.UTF_8));
    }

    @Test
    void largeVocabularyHasExactlyTheRequestedSizeAndValidMerges() throws Exception {
        JsonNode model = new ObjectMapper().readTree(ByteLevelBpeTokenizerWriter.toJson(32000)).get("model");
        JsonNode vocab = model.get("vocab");
        assertThat(vocab.size()).isEqualTo(32000);
        Set<Integer> ids = new HashSet<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
            ids.add(it.next().getValue().asInt());
        }
        assertThat(ids).hasSize(32000).allMatch(id -> id >= 0 && id < 32000);
        assertThat(vocab.get("<s>").asInt()).isEqualTo(1);
        assertThat(vocab.get("\u0100").asInt()).isEqualTo(3); // byte 0

        JsonNode merges = model.get("merges");
        assertThat(merges.size()).isEqualTo(32000 - 259);
        for (JsonNode merge : merges) {
            String[] parts = merge.asText().split(" ");
            assertThat(parts).hasSize(2);
            assertThat(vocab.has(parts[0]) && vocab.has(parts[1]) && vocab.has(parts[0] + parts[1]))
                    .as(merge.asText()).isTrue();
        }
    }

    @Test
    void largeVocabularyLoadsInHuggingFaceTokenizersAndRoundTrips() throws Exception {
        Path file = tmp.resolve("tokenizer.json");
        ByteLevelBpeTokenizerWriter.write(file, 32000);
        try (HuggingFaceTokenizer tok = HuggingFaceTokenizer.newInstance(file, Map.of())) {
            Encoding enc = tok.encode(TEXT, false, false);
            long[] ids = enc.getIds();
            assertThat(Arrays.stream(ids).allMatch(id -> id >= 3 && id < 32000)).as(Arrays.toString(ids)).isTrue();
            // Merges are applied: fewer tokens than UTF-8 bytes.
            assertThat(ids.length).isLessThan(TEXT.getBytes(StandardCharsets.UTF_8).length);
            assertThat(tok.decode(ids)).isEqualTo(TEXT);
        }
    }

    @Test
    void refusesAVocabularyTooSmallForTheBytes() {
        assertThatThrownBy(() -> ByteLevelBpeTokenizerWriter.toJson(258)).hasMessageContaining("at least 259");
    }
}
