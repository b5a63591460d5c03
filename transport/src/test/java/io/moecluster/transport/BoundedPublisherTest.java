package io.moecluster.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.aeron.Publication;
import java.time.Duration;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.YieldingIdleStrategy;
import org.junit.jupiter.api.Test;

class BoundedPublisherTest extends AeronFixture {
    @Test
    void noSubscriberFailsWithNotConnectedAtTheDeadline() {
        Publication pub = aeron.addPublication(IPC, 61);
        BoundedPublisher publisher = new BoundedPublisher(pub, new YieldingIdleStrategy(), Duration.ofMillis(200));
        UnsafeBuffer buf = new UnsafeBuffer(new byte[64]);
        long start = System.nanoTime();
        assertThatThrownBy(() -> publisher.offer(buf, 0, 64))
                .isInstanceOf(TransportException.class)
                .hasMessageContaining("NOT_CONNECTED")
                .hasMessageContaining("aeron:ipc")
                .hasMessageContaining("stream 61")
                .hasMessageContaining("deadline 200 ms");
        long elapsedMs = (System.nanoTime() - start) / 1_000_000;
        assertThat(elapsedMs).isBetween(190L, 2_000L);
        assertThat(publisher.notConnectedWaits()).isEqualTo(1);
    }

    @Test
    void messageOverMaxLengthFailsNamingBothSizes() {
        subscribe(IPC, 62);
        BoundedPublisher publisher = publisher(IPC, 62);
        int max = publisher.maxMessageLength();
        assertThat(max).isEqualTo(driver.maxMessageBytes()).isEqualTo(8 * 1024 * 1024);
        UnsafeBuffer header = new UnsafeBuffer(new byte[16]);
        UnsafeBuffer payload = new UnsafeBuffer(new byte[max]);
        assertThatThrownBy(() -> publisher.offer(header, 0, 16, payload, 0, max))
                .isInstanceOf(TransportException.class)
                .hasMessageContaining(String.valueOf(max + 16))
                .hasMessageContaining(String.valueOf(max))
                .hasMessageContaining("stream 62");
    }

    @Test
    void closedPublicationFailsAtOnce() {
        subscribe(IPC, 63);
        BoundedPublisher publisher = publisher(IPC, 63);
        publisher.publication().close();
        long start = System.nanoTime();
        assertThatThrownBy(() -> publisher.offer(new UnsafeBuffer(new byte[8]), 0, 8))
                .isInstanceOf(TransportException.class)
                .hasMessageContaining("CLOSED");
        assertThat((System.nanoTime() - start) / 1_000_000).isLessThan(1_000L);
    }

    /** Failures name the offer result as Aeron does (Publication.errorString), which operators can look up. */
    @Test
    void resultNamesAreReadable() {
        assertThat(Publication.errorString(Publication.BACK_PRESSURED)).isEqualTo("BACK_PRESSURED");
        assertThat(Publication.errorString(Publication.MAX_POSITION_EXCEEDED)).isEqualTo("MAX_POSITION_EXCEEDED");
    }
}
