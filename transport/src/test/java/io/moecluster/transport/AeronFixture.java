package io.moecluster.transport;

import java.time.Duration;
import java.util.function.BooleanSupplier;

import io.aeron.Aeron;
import io.aeron.Publication;
import io.aeron.Subscription;
import org.agrona.CloseHelper;
import org.agrona.concurrent.YieldingIdleStrategy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/** A media driver and client of its own per test, closed after it. */
abstract class AeronFixture {
    static final String IPC = "aeron:ipc";

    EmbeddedMediaDriver driver;
    Aeron aeron;

    @BeforeEach
    void startDriver() {
        driver = new EmbeddedMediaDriver(EmbeddedMediaDriver.newTempDir());
        aeron = driver.connect();
    }

    @AfterEach
    void stopDriver() {
        CloseHelper.close(driver);
    }

    Subscription subscribe(String channel, int stream) {
        return aeron.addSubscription(channel, stream);
    }

    BoundedPublisher publisher(String channel, int stream) {
        Publication pub = aeron.addPublication(channel, stream);
        return new BoundedPublisher(pub, new YieldingIdleStrategy(), Duration.ofSeconds(5));
    }

    /** Polls until done or 10 s pass; fails on timeout. */
    static void pollUntil(MessagePoller poller, BooleanSupplier done) {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out polling " + poller.subscription().channel());
            }
            if (poller.poll(16) == 0) {
                Thread.yield();
            }
        }
    }
}
