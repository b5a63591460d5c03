package io.moecluster.core.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moecluster.core.io.NpyFile;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** The golden models copied from shared/golden into test resources, with their reference cases. */
public final class GoldenModels {
    public static final String MIXTRAL = "mixtral-tiny";
    public static final String QWEN2_MOE = "qwen2moe-tiny";
    /** DeepSeek-V3 (MLA, group-limited sigmoid routing, an ungated shared expert, a dense first layer), F32. */
    public static final String DEEPSEEK_V3 = "deepseek-v3-tiny";
    /** The same model stored as DeepSeek ships it: F8_E4M3 linear weights with 16x16 block scales, the rest BF16. */
    public static final String DEEPSEEK_V3_FP8 = "deepseek-v3-tiny-fp8";

    private GoldenModels() {
    }

    private static final String[] FILES = {
        "config.json", "model.safetensors", "tokenizer.json", "cases.json", "logits-short.npy", "logits-sentence.npy"
    };
    private static final Map<String, Path> EXTRACTED = new ConcurrentHashMap<>();

    /**
     * The model's directory: in place when the test resources are files (this module's tests),
     * else copied once per JVM out of the test-jar (other modules' tests).
     */
    public static Path dir(String model) {
        var url = GoldenModels.class.getResource("/golden/" + model + "/config.json");
        if (url == null) {
            throw new IllegalStateException("golden model " + model + " missing from test resources");
        }
        if (url.getProtocol().equals("file")) {
            try {
                return Path.of(url.toURI()).getParent();
            } catch (URISyntaxException e) {
                throw new IllegalStateException(e);
            }
        }
        return EXTRACTED.computeIfAbsent(model, GoldenModels::extract);
    }

    private static Path extract(String model) {
        try {
            Path dir = Files.createTempDirectory("golden-" + model);
            // deleteOnExit runs in reverse order of registration: the directory goes after its files
            dir.toFile().deleteOnExit();
            for (String f : FILES) {
                try (var in = GoldenModels.class.getResourceAsStream("/golden/" + model + "/" + f)) {
                    if (in == null) {
                        throw new IllegalStateException("golden file " + model + "/" + f + " missing");
                    }
                    Files.copy(in, dir.resolve(f));
                }
                dir.resolve(f).toFile().deleteOnExit();
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public record Case(String name, int[] tokens, float[][] logits) {
    }

    public static List<Case> cases(String model) throws IOException {
        Path dir = dir(model);
        JsonNode root = new ObjectMapper().readTree(Files.readString(dir.resolve("cases.json")));
        List<Case> cases = new ArrayList<>();
        for (JsonNode c : root.get("cases")) {
            JsonNode t = c.get("tokens");
            int[] tokens = new int[t.size()];
            for (int i = 0; i < tokens.length; i++) {
                tokens[i] = t.get(i).asInt();
            }
            cases.add(new Case(c.get("name").asText(), tokens, NpyFile.readF32(dir.resolve(c.get("logits").asText()))));
        }
        return cases;
    }

    /** ‖a − b‖ / ‖b‖ over one row. */
    public static double relativeError(float[] ours, float[] reference) {
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < reference.length; i++) {
            double d = ours[i] - reference[i];
            diff += d * d;
            norm += (double) reference[i] * reference[i];
        }
        return Math.sqrt(diff) / Math.sqrt(norm);
    }
}
