package io.moecluster.bench;

import io.aeron.Aeron;
import io.aeron.Subscription;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.sbe.ElementType;
import io.moecluster.transport.BatchResultWriter;
import io.moecluster.transport.BoundedPublisher;
import io.moecluster.transport.EmbeddedMediaDriver;
import io.moecluster.transport.IdleStrategies;
import io.moecluster.transport.MessagePoller;
import io.moecluster.transport.TokenBatchWriter;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.HdrHistogram.Histogram;
import org.agrona.concurrent.IdleStrategy;

/**
 * Round-trip latency of one token batch: Aeron IPC (TokenBatch out, BatchResult with the same rows back,
 * both encoded from and decoded into f32 segments) against gRPC unary echo of the same bytes on loopback.
 * Everything runs in one JVM. Not a test: numbers depend on the machine.
 *
 * <pre>
 * ./mvn25 -q -pl benchmarks -am package -DskipTests
 * java --add-modules jdk.incubator.vector --add-opens java.base/jdk.internal.misc=ALL-UNNAMED \
 *      --enable-native-access=ALL-UNNAMED \
 *      -cp benchmarks/target/benchmarks.jar io.moecluster.bench.TransportRoundTrip [idle=yielding] [small=20000] [large=5000] [seconds=30]
 * </pre>
 *
 * The echo and poll loops idle with "yielding" by default (any {@link IdleStrategies} name works):
 * busy-spinning two loops plus the driver would starve a 2-core machine.
 */
public final class TransportRoundTrip {
    private static final int HIDDEN = 1024;
    private static final int REQUEST_STREAM = 1001;
    private static final int REPLY_STREAM = 1002;

    private TransportRoundTrip() {
    }

    public static void main(String[] args) throws Exception {
        String idle = "yielding";
        int small = 20_000;
        int large = 5_000;
        int seconds = 30;
        for (String arg : args) {
            String[] kv = arg.split("=", 2);
            if (kv.length != 2) {
                throw new IllegalArgumentException("expected key=value, got '" + arg + "'");
            }
            switch (kv[0]) {
                case "idle" -> idle = kv[1];
                case "small" -> small = Integer.parseInt(kv[1]);
                case "large" -> large = Integer.parseInt(kv[1]);
                case "seconds" -> seconds = Integer.parseInt(kv[1]);
                default -> throw new IllegalArgumentException("unknown option '" + kv[0] + "': idle, small, large, seconds");
            }
        }
        IdleStrategies.parse(idle); // fail early on a bad name
        System.out.printf("Round trips in one JVM on %d cores; echo/poll loops idle with '%s' (busy-spin starves 2 cores); "
                + "cap %d s per row%n", Runtime.getRuntime().availableProcessors(), idle, seconds);
        System.out.printf("%-10s %-8s %10s %10s %10s %10s %14s%n", "transport", "payload", "rounds", "p50 us", "p99 us",
                "p99.9 us", "round trips/s");
        int[][] shapes = {{2, small}, {64, large}}; // 2 x 1024 f32 = 8 KiB, 64 x 1024 f32 = 256 KiB
        for (int[] shape : shapes) {
            aeron(shape[0], shape[1], idle, seconds);
        }
        for (int[] shape : shapes) {
            grpc(shape[0], shape[1], seconds);
        }
    }

    private static void aeron(int tokens, int rounds, String idleName, int seconds) throws Exception {
        try (EmbeddedMediaDriver driver = new EmbeddedMediaDriver(EmbeddedMediaDriver.newTempDir());
             Arena arena = Arena.ofShared()) {
            Aeron aeron = driver.connect();
            Subscription requests = aeron.addSubscription("aeron:ipc", REQUEST_STREAM);
            Subscription replies = aeron.addSubscription("aeron:ipc", REPLY_STREAM);
            TokenBatchWriter out = new TokenBatchWriter(new BoundedPublisher(aeron.addPublication("aeron:ipc", REQUEST_STREAM)));
            BatchResultWriter echoOut = new BatchResultWriter(new BoundedPublisher(aeron.addPublication("aeron:ipc", REPLY_STREAM)));
            int floats = tokens * HIDDEN;
            MemorySegment rows = arena.allocate(4L * floats, 64);
            for (int i = 0; i < floats; i++) {
                rows.setAtIndex(Kernels.F32, i, i * 0.001f);
            }
            MemorySegment echoRows = arena.allocate(4L * floats, 64);
            MemorySegment back = arena.allocate(4L * floats, 64);

            AtomicBoolean running = new AtomicBoolean(true);
            MessagePoller echoPoller = new MessagePoller(requests).onTokenBatch(b -> {
                b.copyRowsTo(echoRows, 0);
                echoOut.sendRows(b.batchId(), b.layer(), b.expertId(), 2, echoRows, 0, b.tokenCount(), b.hiddenSize(),
                        b.elementType());
            });
            Thread echo = new Thread(() -> {
                IdleStrategy echoIdle = IdleStrategies.parse(idleName);
                while (running.get()) {
                    echoIdle.idle(echoPoller.poll(16));
                }
            }, "aeron-echo");
            echo.setDaemon(true);
            echo.start();

            long[] received = {-1};
            MessagePoller replyPoller = new MessagePoller(replies).onBatchResult(r -> {
                r.copyRowsTo(back, 0);
                received[0] = r.batchId();
            });
            IdleStrategy idle = IdleStrategies.parse(idleName);
            Histogram histogram = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
            int warmup = Math.max(100, rounds / 5);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            int done = 0;
            long measureStart = 0;
            for (int i = 0; i < warmup + rounds && System.nanoTime() < deadline; i++) {
                if (i == warmup) {
                    measureStart = System.nanoTime();
                }
                long start = System.nanoTime();
                out.send(i, 0, 0, 1, REPLY_STREAM, rows, 0, tokens, HIDDEN, ElementType.F32);
                idle.reset();
                while (received[0] != i) {
                    idle.idle(replyPoller.poll(16));
                    if (System.nanoTime() > deadline + TimeUnit.SECONDS.toNanos(5)) {
                        throw new IllegalStateException("no reply to batch " + i);
                    }
                }
                if (i >= warmup) {
                    histogram.recordValue(System.nanoTime() - start);
                    done++;
                }
            }
            long elapsed = System.nanoTime() - measureStart;
            running.set(false);
            echo.join(5_000);
            if (back.getAtIndex(Kernels.F32, floats - 1) != rows.getAtIndex(Kernels.F32, floats - 1)) {
                throw new IllegalStateException("echoed rows differ");
            }
            report("aeron-ipc", 4 * floats, done, histogram, elapsed);
        }
    }

    private static void grpc(int tokens, int rounds, int seconds) throws Exception {
        MethodDescriptor<byte[], byte[]> echo = MethodDescriptor.<byte[], byte[]>newBuilder()
                .setType(MethodDescriptor.MethodType.UNARY)
                .setFullMethodName(MethodDescriptor.generateFullMethodName("moe.bench.Echo", "Echo"))
                .setRequestMarshaller(BytesMarshaller.INSTANCE)
                .setResponseMarshaller(BytesMarshaller.INSTANCE)
                .build();
        ServerServiceDefinition service = ServerServiceDefinition.builder("moe.bench.Echo")
                .addMethod(echo, ServerCalls.asyncUnaryCall((byte[] request, StreamObserver<byte[]> response) -> {
                    response.onNext(request);
                    response.onCompleted();
                }))
                .build();
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(service)
                .maxInboundMessageSize(16 << 20)
                .build()
                .start();
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.getPort())
                .usePlaintext()
                .maxInboundMessageSize(16 << 20)
                .build();
        try {
            byte[] payload = new byte[4 * tokens * HIDDEN];
            for (int i = 0; i < payload.length; i++) {
                payload[i] = (byte) i;
            }
            Histogram histogram = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
            int warmup = Math.max(100, rounds / 5);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            int done = 0;
            long measureStart = 0;
            for (int i = 0; i < warmup + rounds && System.nanoTime() < deadline; i++) {
                if (i == warmup) {
                    measureStart = System.nanoTime();
                }
                long start = System.nanoTime();
                byte[] reply = ClientCalls.blockingUnaryCall(channel, echo, CallOptions.DEFAULT, payload);
                if (reply.length != payload.length) {
                    throw new IllegalStateException("echo returned " + reply.length + " bytes for " + payload.length);
                }
                if (i >= warmup) {
                    histogram.recordValue(System.nanoTime() - start);
                    done++;
                }
            }
            report("grpc-tcp", payload.length, done, histogram, System.nanoTime() - measureStart);
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    private static void report(String transport, int payloadBytes, int rounds, Histogram h, long elapsedNs) {
        String payload = payloadBytes >= 1024 ? (payloadBytes / 1024) + " KiB" : payloadBytes + " B";
        double perSecond = rounds == 0 ? 0 : rounds / (elapsedNs / 1e9);
        System.out.printf("%-10s %-8s %10d %10.1f %10.1f %10.1f %14.0f%n", transport, payload, rounds,
                h.getValueAtPercentile(50) / 1e3, h.getValueAtPercentile(99) / 1e3, h.getValueAtPercentile(99.9) / 1e3,
                perSecond);
    }

    /** byte[] as the message, no protobuf: the gRPC side carries exactly the payload bytes. */
    private enum BytesMarshaller implements MethodDescriptor.Marshaller<byte[]> {
        INSTANCE;

        @Override
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException("reading an echo message", e);
            }
        }
    }
}
