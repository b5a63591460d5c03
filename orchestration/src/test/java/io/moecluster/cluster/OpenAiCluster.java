package io.moecluster.cluster;

import io.moecluster.attention.AttentionNode;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.expert.ExpertNode;
import io.moecluster.router.RouterNode;
import io.moecluster.telemetry.TracingOptions;
import io.moecluster.transport.EmbeddedMediaDriver;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A whole cluster in this JVM for the HTTP API's tests: an embedded media driver, two expert
 * services, an attention service and a router-service with its OpenAI-compatible API and metrics,
 * on the golden Mixtral with a small chat template ({@link #TEMPLATE}; the golden model has none).
 */
final class OpenAiCluster implements AutoCloseable {
    /** Mixtral's [INST] turns, BOS written as text (the golden tokenizer has it as a special token). */
    static final String TEMPLATE = "<s>{% for m in messages %}{% if m.role == 'user' %}[INST] {{ m.content }} [/INST]"
            + "{% elif m.role == 'assistant' %}{{ m.content }}</s>{% else %}{{ m.content }}\n{% endif %}{% endfor %}";

    final List<AutoCloseable> open = new ArrayList<>();
    final Path model;
    final ClusterSpec spec;
    final RouterNode router;
    /** http://127.0.0.1:PORT (no /v1). */
    final String base;

    OpenAiCluster(Path workDir, TracingOptions tracing) throws Exception {
        model = GoldenModels.dir(GoldenModels.MIXTRAL);
        Path template = Files.writeString(workDir.resolve("chat-template.jinja"), TEMPLATE);
        try {
            EmbeddedMediaDriver driver = new EmbeddedMediaDriver(EmbeddedMediaDriver.newTempDir());
            open.add(driver);
            spec = new ClusterEndToEndTest().spec(driver, ModelConfig.load(model), false, false);
            for (ClusterSpec.Expert e : spec.experts()) {
                open.add(ExpertNode.launch(ClusterEndToEndTest.expert(spec, e.id(), model).tracing(tracing)));
            }
            open.add(AttentionNode.launch(ClusterEndToEndTest.attention(spec, model).tracing(tracing)));
            router = RouterNode.launch(ClusterEndToEndTest.router(spec, model).tracing(tracing)
                    .metricsPort(ClusterEndToEndTest.freePort()).httpPort(ClusterEndToEndTest.freePort())
                    .chatTemplate(template));
            open.add(router);
        } catch (Exception | Error e) {
            close();
            throw e;
        }
        base = router.httpUrl().substring(0, router.httpUrl().length() - "/v1".length());
    }

    /** The model's name in the API: the golden model directory's. */
    String modelName() {
        return model.getFileName().toString();
    }

    /** Closes expert-1, the second expert service. */
    void stopExpert1() throws Exception {
        AutoCloseable expert1 = open.get(2);
        expert1.close();
        open.remove(expert1);
    }

    @Override
    public void close() throws IOException {
        for (int i = open.size() - 1; i >= 0; i--) {
            try {
                open.get(i).close();
            } catch (Exception e) {
                throw new IOException(e);
            }
        }
        open.clear();
    }
}
