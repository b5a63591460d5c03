package io.moecluster.bench;

import io.aeron.Aeron;
import io.aeron.Subscription;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.sbe.ElementType;
import io.moecluster.transport.BatchResultWriter;
import io.moecluster.transport.BoundedPublisher;
import io.moecluster.transport.DataPlaneAuth;
import io.moecluster.transport.EmbeddedMediaDriver;
import io.moecluster.transport.IdleStrategies;
import io.moecluster.transport.MessageMac;
import io.moecluster.transport.MessagePoller;
import io.moecluster.transport.TokenBatchWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.HdrHistogram.Histogram;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * What authenticating the data plane costs per batch: the data-plane MAC (HMAC-SHA256/128 over
 * header and payload, {@link MessageMac}) against none, for 8 KiB and 256 KiB batches, in one run
 * with the two modes alternating round by round. Two measurements:
 *
 * <ul>
 *   <li><b>MAC alone</b>: sign (the sender's work) and verify (the receiver's) of one message, ns
 *       each, on a heap payload and on an off-heap one (a received Aeron term), and bytes allocated;</li>
 *   <li><b>round trip</b> over Aeron IPC, as {@link TransportRoundTrip}: a TokenBatch out and a
 *       BatchResult with the same rows back, both signed and checked (4 MACs a round trip) or none.</li>
 * </ul>
 *
 * <pre>
 * ./mvn25 -q -pl benchmarks -am package -DskipTests
 * java @jvm.options -cp benchmarks/target/benchmarks.jar io.moecluster.bench.DataPlaneMacCost [rounds=5] [idle=yielding]
 * </pre>
 */
public final class DataPlaneMacCost {
    private static final int HIDDEN = 1024;
    private static final String SECRET = "bench-secret-0123456789abcdef0123456789";

    private DataPlaneMacCost() {
    }

    public static void main(String[] args) throws Exception {
        int rounds = 5;
        String idle = "yielding";
        for (String arg : args) {
            String[] kv = arg.split("=", 2);
            switch (kv[0]) {
                case "rounds" -> rounds = Integer.parseInt(kv[1]);
                case "idle" -> idle = kv[1];
                default -> throw new IllegalArgumentException("unknown option '" + arg + "': rounds=N, idle=NAME");
            }
        }
        System.out.printf(Locale.ROOT, "Data-plane MAC cost on %d cores, %s; %d rounds, the modes alternating%n",
                Runtime.getRuntime().availableProcessors(), System.getProperty("java.vm.version"), rounds);
        int[] tokens = {2, 64}; // x 1024 f32: 8 KiB and 256 KiB of rows
        String[] modes = {"none", "hmac"};
        // [size][mode] -> per-round values
        List<List<double[]>> macs = new ArrayList<>();
        List<List<double[]>> trips = new ArrayList<>();
        for (int s = 0; s < tokens.length; s++) {
            macs.add(new ArrayList<>(List.of(new double[rounds * 5], new double[rounds * 5])));
            trips.add(new ArrayList<>(List.of(new double[rounds * 3], new double[rounds * 3])));
        }
        for (int warm = 0; warm < 2; warm++) {
            for (int s = 0; s < tokens.length; s++) {
                for (String mode : modes) {
                    macAlone(auth(mode), 4 * tokens[s] * HIDDEN, 200);
                }
            }
        }
        for (int r = 0; r < rounds; r++) {
            for (int s = 0; s < tokens.length; s++) {
                for (int m = 0; m < modes.length; m++) {
                    double[] v = macAlone(auth(modes[m]), 4 * tokens[s] * HIDDEN, tokens[s] > 8 ? 400 : 4000);
                    System.arraycopy(v, 0, macs.get(s).get(m), r * 5, 5);
                    double[] t = roundTrip(auth(modes[m]), tokens[s], tokens[s] > 8 ? 1500 : 6000, idle);
                    System.arraycopy(t, 0, trips.get(s).get(m), r * 3, 3);
                }
            }
            System.out.printf(Locale.ROOT, "round %d done%n", r + 1);
        }
        System.out.println();
        System.out.printf(Locale.ROOT, "%-8s %-5s %12s %12s %12s %12s %10s %14s %14s %10s%n", "batch", "MAC", "sign heap",
                "verify heap", "sign direct", "verify off", "alloc B", "round trip p50", "round trip p99", "trips/s");
        for (int s = 0; s < tokens.length; s++) {
            for (int m = 0; m < modes.length; m++) {
                double[] v = macs.get(s).get(m);
                double[] t = trips.get(s).get(m);
                System.out.printf(Locale.ROOT, "%-8s %-5s %9.1f us %9.1f us %9.1f us %9.1f us %10.0f %11.1f us %11.1f us %10.0f%n",
                        (4 * tokens[s] * HIDDEN / 1024) + " KiB", modes[m], median(v, 0, 5) / 1e3, median(v, 1, 5) / 1e3,
                        median(v, 2, 5) / 1e3, median(v, 3, 5) / 1e3, median(v, 4, 5), median(t, 0, 3) / 1e3,
                        median(t, 1, 3) / 1e3, median(t, 2, 3));
            }
        }
        System.out.println("(medians over the rounds; sign/verify per message; alloc = bytes allocated per sign+verify; "
                + "a round trip signs and verifies twice)");
    }

    private static DataPlaneAuth auth(String mode) {
        return mode.equals("none") ? DataPlaneAuth.none() : DataPlaneAuth.fromText(SECRET, "bench");
    }

    /** ns per sign (heap), verify (heap), sign (off-heap), verify (off-heap), and bytes allocated per sign+verify. */
    private static double[] macAlone(DataPlaneAuth auth, int payload, int iterations) {
        MessageMac mac = auth.newMac();
        int headerLength = 95;
        int tagOffset = headerLength - DataPlaneAuth.TAG_BYTES;
        UnsafeBuffer header = new UnsafeBuffer(new byte[headerLength]);
        UnsafeBuffer heap = new UnsafeBuffer(new byte[headerLength + payload]);
        UnsafeBuffer direct = new UnsafeBuffer(ByteBuffer.allocateDirect(headerLength + payload));
        for (int i = 0; i < heap.capacity(); i++) {
            heap.putByte(i, (byte) i);
            direct.putByte(i, (byte) i);
        }
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long alloc0 = threads.getCurrentThreadAllocatedBytes();
        long t0 = System.nanoTime();
        for (int i = 0; i < iterations; i++) {
            mac.sign(header, headerLength, tagOffset, heap, headerLength, payload);
        }
        long t1 = System.nanoTime();
        boolean ok = true;
        for (int i = 0; i < iterations; i++) {
            ok &= mac.verify(heap, 0, heap.capacity(), tagOffset);
        }
        long t2 = System.nanoTime();
        for (int i = 0; i < iterations; i++) {
            mac.sign(header, headerLength, tagOffset, direct, headerLength, payload);
        }
        long t3 = System.nanoTime();
        for (int i = 0; i < iterations; i++) {
            ok &= mac.verify(direct, 0, direct.capacity(), tagOffset);
        }
        long t4 = System.nanoTime();
        long allocated = threads.getCurrentThreadAllocatedBytes() - alloc0;
        if (ok && auth.enabled()) {
            throw new IllegalStateException("an unsigned buffer verified");
        }
        return new double[] {(t1 - t0) / (double) iterations, (t2 - t1) / (double) iterations,
            (t3 - t2) / (double) iterations, (t4 - t3) / (double) iterations, allocated / (2.0 * iterations)};
    }

    /** p50 and p99 ns of a TokenBatch / BatchResult round trip over IPC, and round trips per second. */
    private static double[] roundTrip(DataPlaneAuth auth, int tokens, int rounds, String idleName) throws Exception {
        try (EmbeddedMediaDriver driver = new EmbeddedMediaDriver(EmbeddedMediaDriver.newTempDir());
             Arena arena = Arena.ofShared()) {
            Aeron aeron = driver.connect();
            Subscription requests = aeron.addSubscription("aeron:ipc", 1001);
            Subscription replies = aeron.addSubscription("aeron:ipc", 1002);
            TokenBatchWriter out = new TokenBatchWriter(new BoundedPublisher(aeron.addPublication("aeron:ipc", 1001)), auth);
            BatchResultWriter echoOut = new BatchResultWriter(new BoundedPublisher(aeron.addPublication("aeron:ipc", 1002)),
                    auth);
            int floats = tokens * HIDDEN;
            MemorySegment rows = arena.allocate(4L * floats, 64);
            for (int i = 0; i < floats; i++) {
                rows.setAtIndex(Kernels.F32, i, i * 0.001f);
            }
            MemorySegment echoRows = arena.allocate(4L * floats, 64);
            MemorySegment back = arena.allocate(4L * floats, 64);
            AtomicBoolean running = new AtomicBoolean(true);
            MessagePoller echoPoller = new MessagePoller(requests, auth).onTokenBatch(b -> {
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
            MessagePoller replyPoller = new MessagePoller(replies, auth).onBatchResult(r -> {
                r.copyRowsTo(back, 0);
                received[0] = r.batchId();
            });
            IdleStrategy idle = IdleStrategies.parse(idleName);
            Histogram histogram = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
            int warmup = rounds / 5;
            long measureStart = 0;
            for (int i = 0; i < warmup + rounds; i++) {
                if (i == warmup) {
                    measureStart = System.nanoTime();
                }
                long start = System.nanoTime();
                out.send(i, 0, 0, 1, 1002, rows, 0, tokens, HIDDEN, ElementType.F32);
                idle.reset();
                long giveUp = start + TimeUnit.SECONDS.toNanos(10);
                while (received[0] != i) {
                    idle.idle(replyPoller.poll(16));
                    if (System.nanoTime() > giveUp) {
                        throw new IllegalStateException("no reply to batch " + i + " (" + echoPoller.counter().snapshot()
                                + ", " + replyPoller.counter().snapshot() + ")");
                    }
                }
                if (i >= warmup) {
                    histogram.recordValue(System.nanoTime() - start);
                }
            }
            long elapsed = System.nanoTime() - measureStart;
            running.set(false);
            echo.join(5_000);
            if (back.getAtIndex(Kernels.F32, floats - 1) != rows.getAtIndex(Kernels.F32, floats - 1)) {
                throw new IllegalStateException("echoed rows differ");
            }
            return new double[] {histogram.getValueAtPercentile(50), histogram.getValueAtPercentile(99),
                rounds / (elapsed / 1e9)};
        }
    }

    private static double median(double[] values, int field, int stride) {
        double[] v = new double[values.length / stride];
        for (int i = 0; i < v.length; i++) {
            v[i] = values[i * stride + field];
        }
        Arrays.sort(v);
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }
}
