package io.moecluster.cli.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ListenPortsTest {
    /**
     * Ports for the services come from below the kernel's ephemeral range (where outgoing
     * connections take their source ports), are free, and are not handed out twice.
     */
    @Test
    void portsAreFreeDistinctAndBelowTheEphemeralRange() throws IOException {
        int low = ListenPorts.ephemeralLow();
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < 50; i++) {
            int port = ListenPorts.next();
            assertThat(seen.add(port)).as("port %d handed out twice", port).isTrue();
            if (low - ListenPorts.LOWEST >= 1000) {
                assertThat(port).isBetween(ListenPorts.LOWEST, low - 1);
            }
            try (ServerSocket s = new ServerSocket()) {
                s.bind(new InetSocketAddress("127.0.0.1", port));
                assertThat(s.getLocalPort()).isEqualTo(port);
            }
        }
    }
}
