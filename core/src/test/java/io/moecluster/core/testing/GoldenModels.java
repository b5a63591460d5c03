package io.moecluster.core.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moecluster.core.io.NpyFile;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The golden models copied from shared/golden into test resources, with their reference cases. */
public final class GoldenModels {
    public static final String MIXTRAL = "mixtral-tiny";
    public static final String QWEN2_MOE = "qwen2moe-tiny";

    private GoldenModels() {
    }

    public static Path dir(String model) {
        try {
            var url = GoldenModels.class.getResource("/golden/" + model + "/config.json");
            if (url == null) {
                throw new IllegalStateException("golden model " + model + " missing from test resources");
            }
            return Path.of(url.toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
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
