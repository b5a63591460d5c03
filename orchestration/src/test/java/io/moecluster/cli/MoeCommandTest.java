package io.moecluster.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.moecluster.core.engine.BatchGenerator;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.engine.Sequence;
import io.moecluster.core.engine.TokenSink;
import io.moecluster.core.io.NpyFile;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.core.tokenizer.TextTokenizer;
import io.moecluster.cuda.backend.CudaBackendProvider;
import io.moecluster.router.chat.ChatTemplate;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The moe command end to end, in process: exit codes, one-line errors, and what each command writes. */
class MoeCommandTest {
    @TempDir
    static Path shared;

    static Path mixtral;
    static Path qwen;

    record Run(int exit, String out, String err) {
    }

    static Run moe(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exit = MoeCommand.execute(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Run(exit, out.toString(), err.toString());
    }

    @BeforeAll
    static void makeModels() {
        mixtral = shared.resolve("mixtral");
        qwen = shared.resolve("qwen");
        assertThat(moe("model", "make-random", "--arch", "mixtral", "--preset", "tiny", "--dtype", "f32",
                "--seed", "3", mixtral.toString()).exit()).isZero();
        assertThat(moe("model", "make-random", "--arch", "qwen2_moe", "--preset", "tiny", "--dtype", "bf16",
                "--seed", "4", qwen.toString()).exit()).isZero();
    }

    @Test
    void makeRandomWritesTheHuggingFaceLayout() {
        for (Path dir : new Path[] {mixtral, qwen}) {
            assertThat(dir.resolve("config.json")).exists();
            assertThat(dir.resolve("model.safetensors")).exists();
            assertThat(dir.resolve("tokenizer.json")).exists();
        }
        Run info = moe("model", "info", "--model", qwen.toString());
        assertThat(info.exit()).isZero();
        assertThat(info.out()).contains("qwen2_moe").contains("BF16");
    }

    @Test
    void makeRandomTakesOtherSizesThanThePresets() {
        Path dir = shared.resolve("mixtral-resized");
        Run r = moe("model", "make-random", "--arch", "mixtral", "--preset", "tiny", "--dtype", "bf16", "--seed", "3",
                "--hidden-size", "128", "--intermediate-size", "96", "--layers", "3", dir.toString());
        assertThat(r.exit()).as(r.err()).isZero();
        ModelConfig c = ModelConfig.load(dir);
        assertThat(c.hiddenSize()).isEqualTo(128);
        assertThat(c.expertIntermediateSize()).isEqualTo(96);
        assertThat(c.numLayers()).isEqualTo(3);
        assertThat(c.headDim()).isEqualTo(32);
        Run bad = moe("model", "make-random", "--arch", "mixtral", "--preset", "tiny", "--dtype", "bf16", "--seed",
                "3", "--hidden-size", "100", shared.resolve("bad").toString());
        assertThat(bad.exit()).isEqualTo(MoeCommand.EXIT_USAGE);
        assertThat(bad.err()).contains("hidden size 100");
    }

    @Test
    void logitsWritesOnePrefillRowPerToken() throws Exception {
        Path npy = shared.resolve("logits.npy");
        Run r = moe("logits", "--model", mixtral.toString(), "--tokens", "1,72,101,108", "--out", npy.toString());
        assertThat(r.exit()).as(r.err()).isZero();
        float[][] written = NpyFile.readF32(npy);
        try (Engine e = Engine.open(mixtral, EngineOptions.defaults())) {
            float[][] expected = e.prefillLogits(new int[] {1, 72, 101, 108});
            assertThat(written).hasDimensions(4, e.config().vocabSize());
            for (int t = 0; t < 4; t++) {
                assertThat(written[t]).containsExactly(expected[t]);
            }
        }
    }

    @Test
    void generatePrintsTextAndThroughput() {
        Run r = moe("generate", "--model", qwen.toString(), "--prompt", "Hello", "--max-tokens", "8");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.err()).contains("completion tokens").contains("tokens/s").contains("time to first token");
    }

    @Test
    void generateIsReproducibleWithASeed() {
        String[] args = {"generate", "--model", mixtral.toString(), "--prompt", "abc", "--max-tokens", "12",
            "--temperature", "0.9", "--top-p", "0.9", "--seed", "11"};
        assertThat(moe(args).out()).isEqualTo(moe(args).out());
    }

    @Test
    void benchReportsBothBatchSizes() {
        Run r = moe("bench", "--model", mixtral.toString(), "--batch", "1,3", "--prompt-tokens", "4",
                "--new-tokens", "4", "--warmup-tokens", "2");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("decode tok/s").containsPattern("(?m)^\\s+1\\s").containsPattern("(?m)^\\s+3\\s");
    }

    /** moe model quantize --format int8 from an FP8 checkpoint: the result loads and decodes, bad formats are refused. */
    @Test
    void quantizeWritesAnInt8ModelThatBenchRuns() {
        Path fp8 = shared.resolve("ds-fp8-q");
        Path int8 = shared.resolve("ds-int8");
        assertThat(moe("model", "make-random", "--arch", "deepseek_v3", "--preset", "tiny", "--dtype", "fp8",
                "--seed", "5", fp8.toString()).exit()).isZero();
        Run q = moe("model", "quantize", "--format", "int8", fp8.toString(), int8.toString());
        assertThat(q.exit()).as(q.err()).isZero();
        assertThat(q.out()).contains("wrote " + int8).contains("int8: ").contains("tensors quantized");
        Run info = moe("model", "info", "--model", int8.toString());
        assertThat(info.out()).contains("I8").contains("BlockQuantization[blockRows=1, blockCols=32, weights=I8]");
        Run r = moe("bench", "--model", int8.toString(), "--batch", "1,2", "--prompt-tokens", "4", "--new-tokens", "4",
                "--warmup-tokens", "2", "--bandwidth-mib", "0");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("weights: I8 (1x32 blocks)").contains("decode tok/s");
        Run bad = moe("model", "quantize", "--format", "q4_0", fp8.toString(), shared.resolve("ds-q4").toString());
        assertThat(bad.exit()).isNotZero();
        assertThat(bad.err()).contains("--format q4_0 is not supported (only int8)");
    }

    /** DeepSeek-V3 in BF16 and FP8, side by side in one bench run: formats, KV cache against uncompressed, medians. */
    @Test
    void benchComparesDeepseekBf16AndFp8SideBySide() {
        Path bf16 = shared.resolve("ds-bf16");
        Path fp8 = shared.resolve("ds-fp8");
        assertThat(moe("model", "make-random", "--arch", "deepseek_v3", "--preset", "tiny", "--dtype", "bf16",
                "--seed", "5", bf16.toString()).exit()).isZero();
        Run make = moe("model", "make-random", "--arch", "deepseek_v3", "--preset", "tiny", "--dtype", "fp8",
                "--seed", "5", fp8.toString());
        assertThat(make.exit()).as(make.err()).isZero();
        assertThat(make.out()).contains("deepseek_v3").contains("F8_E4M3");
        Run info = moe("model", "info", "--model", fp8.toString());
        assertThat(info.out()).contains("F8_E4M3").contains("BlockQuantization[blockRows=16, blockCols=16, weights=F8_E4M3]");
        Run r = moe("bench", "--model", bf16.toString(), "--vs", fp8.toString(), "--rounds", "2", "--batch", "1,2",
                "--prompt-tokens", "4", "--new-tokens", "4", "--warmup-tokens", "2", "--bandwidth-mib", "0");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out())
                .contains("model a " + bf16).contains("model b " + fp8)
                .contains("multi-head latent attention")
                .contains("weights: BF16 ").contains("weights: F8_E4M3 (16x16 blocks)")
                .contains("KV cache per token: 0.4 KiB (32 floats x 3 layers) vs 1.9 KiB uncompressed")
                .contains("median of 2 rounds")
                .containsPattern("(?m)^\\s+a batch\\s+1: ").containsPattern("(?m)^\\s+b batch\\s+2: ");
        Run gen = moe("generate", "--model", fp8.toString(), "--prompt", "Hello", "--max-tokens", "4");
        assertThat(gen.exit()).as(gen.err()).isZero();
    }

    @Test
    void badModelDirectoryIsOneLineAndExitOne() {
        Run r = moe("logits", "--model", shared.resolve("nope").toString(), "--tokens", "1", "--out",
                shared.resolve("x.npy").toString());
        assertThat(r.exit()).isEqualTo(MoeCommand.EXIT_FAILURE);
        assertThat(r.err().strip()).doesNotContain("\n").contains("config.json").contains("not found");
    }

    @Test
    void corruptCheckpointIsOneLineNamingTheFile() throws Exception {
        Path broken = shared.resolve("broken");
        Files.createDirectories(broken);
        Files.copy(mixtral.resolve("config.json"), broken.resolve("config.json"));
        Files.write(broken.resolve("model.safetensors"), new byte[] {(byte) 0xff, (byte) 0xff, 0, 0, 0, 0, 0, 0, 1});
        Run r = moe("generate", "--model", broken.toString(), "--prompt", "x");
        assertThat(r.exit()).isEqualTo(MoeCommand.EXIT_FAILURE);
        assertThat(r.err().strip()).doesNotContain("\n").contains("model.safetensors").contains("header length");
    }

    @Test
    void badArgumentsAreOneLineAndExitTwo() {
        for (String[] args : new String[][] {
            {"logits", "--model", "x", "--tokens", "a,b", "--out", "y"},
            {"generate", "--prompt", "x"},
            {"frobnicate"},
            {"model", "make-random", "--arch", "llama", "--preset", "tiny", "--dtype", "f32", "--seed", "1", "out"},
        }) {
            Run r = moe(args);
            assertThat(r.exit()).as(String.join(" ", args)).isEqualTo(MoeCommand.EXIT_USAGE);
            assertThat(r.err().strip()).as(String.join(" ", args)).startsWith("moe: ").doesNotContain("\n");
        }
    }

    @Test
    void outOfVocabularyTokensAreRejected() {
        Run r = moe("logits", "--model", mixtral.toString(), "--tokens", "1,99999", "--out",
                shared.resolve("z.npy").toString());
        assertThat(r.exit()).isEqualTo(MoeCommand.EXIT_FAILURE);
        assertThat(r.err()).contains("99999").contains("outside the vocabulary");
    }

    @Test
    void flagErrorsSpeakTheFlagsName() {
        Run zero = moe("generate", "--model", mixtral.toString(), "--prompt", "x", "--max-tokens", "0");
        assertThat(zero.exit()).isEqualTo(MoeCommand.EXIT_FAILURE);
        assertThat(zero.err().strip()).isEqualTo("moe: --max-tokens must be >= 1, got 0");
        Run threads = moe("generate", "--model", mixtral.toString(), "--prompt", "x", "--threads", "-1");
        assertThat(threads.err().strip()).startsWith("moe: --threads must be >= 0");
        Run batch = moe("bench", "--model", mixtral.toString(), "--max-batch-tokens", "0");
        assertThat(batch.err().strip()).startsWith("moe: --max-batch-tokens must be >= 1");
    }

    @Test
    void backendsAreListedAndAnUnknownOneIsRefusedByName() {
        Run list = moe("backends");
        assertThat(list.exit()).as(list.err()).isZero();
        assertThat(list.out()).containsPattern("(?m)^cpu\\s+available \\(default\\); Vector API kernels, ");
        Run unknown = moe("generate", "--model", mixtral.toString(), "--prompt", "x", "--backend", "tpu");
        assertThat(unknown.exit()).isEqualTo(MoeCommand.EXIT_FAILURE);
        assertThat(unknown.err().strip()).doesNotContain("\n").contains("--device: unknown compute backend 'tpu'")
                .contains("known: cpu");
    }

    @Test
    void generateStopsAtAStopTextWithoutPrintingIt() {
        String[] free = {"generate", "--model", mixtral.toString(), "--prompt", "abc", "--max-tokens", "16", "--ignore-eos"};
        Run whole = moe(free);
        assertThat(whole.exit()).as(whole.err()).isZero();
        String text = whole.out().stripTrailing();
        String stop = text.substring(4, 6);
        String[] stopped = Stream.concat(Arrays.stream(free), Stream.of(
                "--stop", stop)).toArray(String[]::new);
        Run r = moe(stopped);
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).isEqualTo(text.substring(0, text.indexOf(stop)) + System.lineSeparator());
        assertThat(r.err()).contains("(finish: stop)");
        assertThat(moe("generate", "--model", mixtral.toString(), "--prompt", "x", "--stop", "").err().strip())
                .isEqualTo("moe: --stop must not be empty");
        assertThat(moe("generate", "--model", mixtral.toString(), "--prompt", "x", "--repetition-penalty", "0").err()
                .strip()).startsWith("moe: --repetition-penalty must be a number > 0");
    }

    @Test
    void chatWithAModelReadsTurnsFromStdinAndRepliesWithTheChatTemplate() throws Exception {
        String conversation = "Hello there\n\nHow are you?\n/exit\nnever read\n";
        InputStream saved = ChatCommand.input;
        ChatCommand.input = new ByteArrayInputStream(conversation.getBytes(StandardCharsets.UTF_8));
        Run r;
        try {
            r = moe("chat", "--model", mixtral.toString(), "--system", "Be brief.", "--max-tokens", "6", "--ignore-eos");
        } finally {
            ChatCommand.input = saved;
        }
        assertThat(r.exit()).as(r.err()).isZero();
        // Each turn is the model's greedy reply to the rendered conversation so far.
        ChatTemplate template = ChatTemplate.load(mixtral, null);
        List<Map<String, Object>> messages = new ArrayList<>();
        messages.add(Map.of("role", "system", "content", "Be brief."));
        StringBuilder expected = new StringBuilder();
        try (Engine e = Engine.open(mixtral, EngineOptions.defaults());
             TextTokenizer tok = TextTokenizer.load(mixtral, 1)) {
            for (String turn : new String[] {"Hello there", "How are you?"}) {
                messages.add(Map.of("role", "user", "content", turn));
                String prompt = template.render(messages, true, Map.of());
                BatchGenerator gen = new BatchGenerator(e, 1);
                Sequence s = gen.submit(tok.encode(prompt, false),
                        SamplingParams.greedy(6).withIgnoreEos(true),
                        TokenSink.NONE);
                gen.runToCompletion();
                String reply = tok.decode(s.generatedTokens(), true);
                expected.append(reply).append(System.lineSeparator());
                messages.add(Map.of("role", "assistant", "content", reply));
            }
        }
        assertThat(r.out()).isEqualTo(expected.toString());
        Run noTemplate = moe("chat", "--model", GoldenModels.dir(GoldenModels.MIXTRAL).toString(), "--message", "x");
        assertThat(noTemplate.exit()).isEqualTo(MoeCommand.EXIT_FAILURE);
        assertThat(noTemplate.err()).contains("has no chat template").contains("--chat-template");
    }

    @Test
    void deviceCudaIsListedAndRefusedInOneLineWhereItCannotRun() throws Exception {
        Run list = moe("backends");
        assertThat(list.out()).containsPattern("(?m)^cuda\\s+(available|unavailable: \\S)");
        Run cpuIndex = moe("generate", "--model", mixtral.toString(), "--prompt", "x", "--device", "cpu:1");
        assertThat(cpuIndex.err().strip()).isEqualTo("moe: --device cpu:1: cpu takes no device index");
        Run malformed = moe("generate", "--model", mixtral.toString(), "--prompt", "x", "--device", "cuda:one");
        assertThat(malformed.err().strip()).startsWith("moe: --device: 'cuda:one' is not NAME or NAME:INDEX");
        // These machines have no GPU; where one is usable, the refusals below do not apply.
        Assumptions.assumeFalse(
                new CudaBackendProvider().availability().available(), "a usable GPU is present");
        Run generate = moe("generate", "--model", mixtral.toString(), "--prompt", "x", "--device", "cuda");
        assertThat(generate.exit()).isEqualTo(MoeCommand.EXIT_FAILURE);
        assertThat(generate.err().strip()).doesNotContain("\n").startsWith("moe: --device cuda: cannot run on this machine: ");
        Path cluster = shared.resolve("cuda-cluster.json");
        Files.writeString(cluster, """
                { "aeronDir": "%s", "channel": "aeron:ipc", "embeddedRouter": false,
                  "router": { "id": "router", "host": "127.0.0.1", "grpcPort": 50051, "moeStreamId": 1000, "replyStreamId": 1001 },
                  "attention": [ { "id": "attention-0", "host": "127.0.0.1", "grpcPort": 50061, "replyStreamId": 1100 } ],
                  "experts": [ { "id": "expert-0", "experts": [0, 1, 2, 3, 4, 5, 6, 7], "firstLayer": 0, "lastLayer": 1,
                                 "streamId": 2000 } ] }
                """.formatted(shared.resolve("aeron")));
        Run serve = moe("serve", "expert", "--cluster", cluster.toString(), "--id", "expert-0", "--model",
                mixtral.toString(), "--device", "cuda:0");
        assertThat(serve.exit()).isEqualTo(MoeCommand.EXIT_FAILURE);
        assertThat(serve.out()).isEmpty();
        assertThat(serve.err().strip()).doesNotContain("\n").startsWith("moe: --device cuda:0: cannot run on this machine: ");
    }

    @Test
    void samplingValidationNamesTheFlag() {
        Run r = moe("generate", "--model", mixtral.toString(), "--prompt", "x", "--top-p", "0");
        assertThat(r.exit()).isNotZero();
        assertThat(r.err().strip()).doesNotContain("\n").containsIgnoringCase("top");
    }

    @Test
    void upAndDemoEmbedTheRouterUnlessToldNotTo() {
        for (java.util.function.Supplier<Object> command : List.<java.util.function.Supplier<Object>>of(UpCommand::new,
                DemoCommand::new)) {
            String[] model = command.get() instanceof UpCommand ? new String[] {"--model", "m"} : new String[0];
            assertThat(embedded(command.get(), model)).isTrue();
            assertThat(embedded(command.get(), concat(model, "--embedded-router"))).isTrue();
            assertThat(embedded(command.get(), concat(model, "--no-embedded-router"))).isFalse();
        }
    }

    @Test
    void upRunsWholeStepsWithAnEmbeddedRouterAndPingPongWithoutUnlessTold() {
        assertThat(io.moecluster.cli.cluster.LocalClusterLauncher.Options.defaultMicroBatches(true)).isEqualTo(1);
        assertThat(io.moecluster.cli.cluster.LocalClusterLauncher.Options.defaultMicroBatches(false)).isEqualTo(2);
        UpCommand up = new UpCommand();
        new picocli.CommandLine(up).parseArgs("--model", "m");
        assertThat(up.microBatches).as("not given: the layout decides").isNull();
        up = new UpCommand();
        new picocli.CommandLine(up).parseArgs("--model", "m", "--micro-batches", "2");
        assertThat(up.microBatches).isEqualTo(2);
    }

    private static boolean embedded(Object command, String... args) {
        new picocli.CommandLine(command).parseArgs(args);
        return command instanceof UpCommand up ? up.embeddedRouter : ((DemoCommand) command).embeddedRouter;
    }

    private static String[] concat(String[] a, String b) {
        String[] r = Arrays.copyOf(a, a.length + 1);
        r[a.length] = b;
        return r;
    }
}
