package io.moecluster.router;

import io.moecluster.proto.v1.GenerateRequest;
import io.moecluster.proto.v1.SamplingParameters;
import io.moecluster.proto.v1.TokenIds;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Writes the seed inputs of {@link RequestValidationFuzzTest#generateRequestBytes}: requests as a
 * client sends them. Run once when the API changes:
 * {@code ./mvn25 -pl router-service test -Dtest=RequestFuzzSeeds -Dmoe.fuzz.writeSeeds=src/test/resources}.
 */
class RequestFuzzSeeds {
    @Test
    @EnabledIfSystemProperty(named = "moe.fuzz.writeSeeds", matches = ".+")
    void write() throws IOException {
        Path dir = Files.createDirectories(Path.of(System.getProperty("moe.fuzz.writeSeeds"))
                .resolve("io/moecluster/router/RequestValidationFuzzTestInputs/generateRequestBytes"));
        List<GenerateRequest> seeds = List.of(
                GenerateRequest.newBuilder().setText("Hello, world").build(),
                GenerateRequest.newBuilder().setText("The quick brown fox").setAddBos(false).setSampling(SamplingParameters
                        .newBuilder().setTemperature(0.7f).setTopP(0.9f).setTopK(40).setSeed(7).setMaxTokens(16)
                        .addStopSequences("\n").setPresencePenalty(0.5f).setFrequencyPenalty(0.25f)
                        .setRepetitionPenalty(1.1f).setMinP(0.05f)).build(),
                GenerateRequest.newBuilder().setTokenIds(TokenIds.newBuilder().addAllIds(List.of(1, 15, 27, 3)))
                        .setSampling(SamplingParameters.newBuilder().setMaxTokens(8).setIgnoreEos(true).setN(2)
                                .setLogprobs(true).setTopLogprobs(3).addStopTokenIds(2)).setRequestId("seed-3").build());
        for (int i = 0; i < seeds.size(); i++) {
            Files.write(dir.resolve("seed-request-" + i), seeds.get(i).toByteArray());
        }
    }
}
