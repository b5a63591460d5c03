package io.moecluster.core.attention;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.testing.GoldenModels;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * YaRN reaches every architecture's attention: with factor 1 it is plain RoPE (every blend and
 * scale is 1), so the golden logits still hold; with factor 8 the rope and its scales change the
 * logits. (The tables themselves are tested against float64 in {@link RotaryEmbeddingTest}.)
 */
class YarnEngineTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private Path withYarn(String model, double factor) throws Exception {
        Path src = GoldenModels.dir(model);
        Path dir = Files.createDirectories(tmp.resolve(model + "-" + factor));
        for (String f : new String[] {"model.safetensors", "tokenizer.json"}) {
            Files.copy(src.resolve(f), dir.resolve(f));
        }
        ObjectNode config = (ObjectNode) JSON.readTree(Files.readString(src.resolve("config.json")));
        config.putObject("rope_scaling").put("type", "yarn").put("factor", factor).put("mscale", 1.0)
                .put("mscale_all_dim", 1.0);
        Files.writeString(dir.resolve("config.json"), config.toPrettyString());
        return dir;
    }

    @ParameterizedTest
    @ValueSource(strings = {GoldenModels.MIXTRAL, GoldenModels.QWEN2_MOE, GoldenModels.DEEPSEEK_V3})
    void yarnOfFactorOneIsPlainRopeAndALargerFactorMovesTheLogits(String model) throws Exception {
        GoldenModels.Case sentence = GoldenModels.cases(model).get(1);
        try (Engine one = Engine.open(withYarn(model, 1.0), EngineOptions.defaults().withThreads(2));
             Engine eight = Engine.open(withYarn(model, 8.0), EngineOptions.defaults().withThreads(2))) {
            float[][] same = one.prefillLogits(sentence.tokens());
            float[][] moved = eight.prefillLogits(sentence.tokens());
            double worstMoved = 0;
            for (int t = 0; t < same.length; t++) {
                assertThat(GoldenModels.relativeError(same[t], sentence.logits()[t])).as("%s row %d", model, t)
                        .isLessThan(1e-4);
                worstMoved = Math.max(worstMoved, GoldenModels.relativeError(moved[t], sentence.logits()[t]));
            }
            assertThat(worstMoved).as("factor 8 changes the attention").isGreaterThan(1e-3);
        }
    }
}
