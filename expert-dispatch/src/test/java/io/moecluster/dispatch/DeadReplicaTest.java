package io.moecluster.dispatch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.aeron.Aeron;
import io.aeron.Subscription;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.moe.ExpertUnavailableException;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.dispatch.placement.ExpertPlacement;
import io.moecluster.dispatch.placement.ExpertReplica;
import io.moecluster.transport.EmbeddedMediaDriver;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Issue 13, defect 4, at the dispatcher: an expert whose only replica is gone fails its batches
 * at once instead of after the publication deadline or the layer's deadline, and the replica's
 * outstanding tokens never go below zero. The replica here is a stream nobody (or a plain
 * subscription that never answers) reads.
 */
class DeadReplicaTest {
    static final int STREAM = 2000;
    static final int TOKENS = 5;

    private EmbeddedMediaDriver driver;
    private Aeron aeron;
    private ModelConfig config;
    private ExpertPlacement placement;
    private final Arena arena = Arena.ofConfined();

    @BeforeEach
    void start() {
        driver = new EmbeddedMediaDriver(EmbeddedMediaDriver.newTempDir());
        aeron = driver.connect();
        config = ModelConfig.load(GoldenModels.dir(GoldenModels.MIXTRAL));
        ClusterSpec spec = new ClusterSpec(driver.aeronDirectoryName(), "aeron:ipc", false,
                new ClusterSpec.Router("router-0", "127.0.0.1", 1, 1000, 1001),
                List.of(new ClusterSpec.Attention("attention-0", "127.0.0.1", 2, 1100)),
                List.of(new ClusterSpec.Expert("e0", List.of(0, 1, 2, 3, 4, 5, 6, 7), 0, config.numLayers() - 1, STREAM)));
        placement = ExpertPlacement.build(spec, config);
    }

    @AfterEach
    void stop() {
        arena.close();
        driver.close();
    }

    AeronExpertDispatcher dispatcher(Duration publicationDeadline, Duration layerTimeout, Duration attemptTimeout) {
        return new AeronExpertDispatcher(new AeronExpertDispatcher.Context().aeron(aeron).placement(placement)
                .replies("aeron:ipc", 1001).senderId(ClusterSpec.ROUTER_SENDER).model(config)
                .publicationDeadline(publicationDeadline).replyTimeout(layerTimeout).attemptTimeout(attemptTimeout));
    }

    void dispatchOne(AeronExpertDispatcher d) {
        int hidden = config.hiddenSize();
        MemorySegment rows = arena.allocate((long) TOKENS * hidden * 4, 64);
        MemorySegment weights = arena.allocate(TOKENS * 4L, 64);
        MemorySegment out = arena.allocate((long) TOKENS * hidden * 4, 64);
        d.dispatch(0, 3, rows, 0, TOKENS, weights, out);
        d.awaitAll();
    }

    ExpertReplica replica() {
        return placement.replicas().getFirst();
    }

    @Test
    void aBatchThatNeverReachedTheReplicaIsNotSettledThere() {
        // Just opened: within the connect grace, so the send waits for a subscriber (100 ms) and fails.
        try (AeronExpertDispatcher d = dispatcher(Duration.ofMillis(100), Duration.ofSeconds(10), Duration.ofSeconds(2))) {
            for (int i = 0; i < 3; i++) {
                assertThatThrownBy(() -> dispatchOne(d)).isInstanceOf(ExpertUnavailableException.class)
                        .hasMessageContaining("e0");
                assertThat(replica().outstandingTokens()).as("outstanding after failure %d", i).isZero();
            }
        }
    }

    /**
     * Gone for longer than the connect grace (1 s): no wait at all. Bound: the publication
     * deadline is 3 s, which the old code waited for every request; each of 3 must fail in under
     * 2 s together (it takes microseconds).
     */
    @Test
    void aGoneLoneReplicaFailsNewBatchesAtOnce() throws Exception {
        try (AeronExpertDispatcher d = dispatcher(Duration.ofSeconds(3), Duration.ofSeconds(10), Duration.ofSeconds(2))) {
            Thread.sleep(ReplicaPublications.CONNECT_GRACE_NANOS / 1_000_000 + 200);
            long t0 = System.nanoTime();
            for (int i = 0; i < 3; i++) {
                assertThatThrownBy(() -> dispatchOne(d)).isInstanceOf(ExpertUnavailableException.class)
                        .hasMessageContaining("gone (its publication has had no subscriber");
            }
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(2));
            assertThat(replica().outstandingTokens()).isZero();
            assertThat(d.live(replica(), System.nanoTime())).isFalse();
            assertThat(replica().lastFailure()).contains("disconnected");
        }
    }

    /**
     * A lone replica that goes away with a batch out (its subscription closes after the attempt
     * timeout, as a killed process's does once the driver notices) fails the batch when it
     * disconnects, not at the layer's 30 s deadline. Bound: 15 s, half the deadline.
     */
    @Test
    void aLoneReplicaThatDiesWithABatchOutFailsItWhenItDisconnects() throws Exception {
        Subscription hung = aeron.addSubscription("aeron:ipc", STREAM); // subscribed, never answers
        try (AeronExpertDispatcher d = dispatcher(Duration.ofSeconds(2), Duration.ofSeconds(30), Duration.ofMillis(200))) {
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (!d.live(replica(), System.nanoTime()) && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertThat(d.live(replica(), System.nanoTime())).as("live while subscribed").isTrue();
            Thread closer = Thread.ofPlatform().start(() -> {
                try {
                    Thread.sleep(1000); // well past the 200 ms attempt timeout: the batch has had its last chance
                } catch (InterruptedException e) {
                    return;
                }
                hung.close();
            });
            long t0 = System.nanoTime();
            assertThatThrownBy(() -> dispatchOne(d)).isInstanceOf(ExpertUnavailableException.class)
                    .hasMessageContaining("disconnected");
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(15));
            closer.join();
            assertThat(replica().outstandingTokens()).isZero();
        }
    }
}
