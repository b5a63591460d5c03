package io.moecluster.cli;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.moecluster.proto.v1.Finished;
import io.moecluster.proto.v1.GenerateRequest;
import io.moecluster.proto.v1.GenerateStreamResponse;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.proto.v1.SamplingParameters;
import io.moecluster.service.security.ClientSecurity;
import java.io.PrintWriter;
import java.util.Iterator;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/** {@code moe generate --server}: a GenerateStream client that prints deltas as they arrive. */
final class GrpcGenerate {
    private GrpcGenerate() {
    }

    static int run(String server, String prompt, SamplingFlags s, PrintWriter out, PrintWriter err) throws InterruptedException {
        return run(server, prompt, s, out, err, ClientSecurity.plaintext());
    }

    static int run(String server, String prompt, SamplingFlags s, PrintWriter out, PrintWriter err,
                   ClientSecurity security) throws InterruptedException {
        ManagedChannel channel = security.channel(server);
        try {
            SamplingParameters.Builder sampling = SamplingParameters.newBuilder().setTemperature(s.temperature)
                    .setTopK(s.topK).setTopP(s.topP).setSeed(s.seed).setMaxTokens(s.maxTokens).setIgnoreEos(s.ignoreEos)
                    .addAllStopSequences(s.stop).setMinP(s.minP).setPresencePenalty(s.presencePenalty)
                    .setFrequencyPenalty(s.frequencyPenalty).setRepetitionPenalty(s.repetitionPenalty);
            for (int id : s.stopTokenIds) {
                sampling.addStopTokenIds(id);
            }
            GenerateRequest request = GenerateRequest.newBuilder().setText(prompt).setSampling(sampling).build();
            long start = System.nanoTime();
            Iterator<GenerateStreamResponse> it = InferenceGrpc.newBlockingStub(channel)
                    .withDeadlineAfter(10, TimeUnit.MINUTES).generateStream(request);
            Finished finished = null;
            while (it.hasNext()) {
                GenerateStreamResponse r = it.next();
                if (r.hasToken()) {
                    out.print(r.getToken().getText());
                    out.flush();
                } else if (r.hasFinished()) {
                    finished = r.getFinished();
                    out.print(finished.getText());
                }
            }
            out.println();
            double seconds = (System.nanoTime() - start) / 1e9;
            if (finished != null) {
                var u = finished.getUsage();
                double decodeSeconds = seconds - u.getTimeToFirstTokenMs() / 1000;
                err.printf(Locale.ROOT, "%d prompt tokens, %d completion tokens (finish: %s) in %.2f s; time to first "
                                + "token %.1f ms; decode %.2f tokens/s (via %s)%n", u.getPromptTokens(),
                        u.getCompletionTokens(), finished.getFinishReason().name().replace("FINISH_REASON_", "")
                                .toLowerCase(Locale.ROOT), seconds, u.getTimeToFirstTokenMs(),
                        u.getCompletionTokens() > 1 ? (u.getCompletionTokens() - 1) / decodeSeconds : 0.0, server);
            }
            return 0;
        } catch (StatusRuntimeException e) {
            throw new IllegalArgumentException("request to " + server + " failed: " + e.getStatus().getCode() + ": "
                    + e.getStatus().getDescription());
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }
}
