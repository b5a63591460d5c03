package io.moecluster.cli.cluster;

import java.io.BufferedReader;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Listening ports for the services {@code moe up} starts. A port the kernel hands out for a bind to
 * port 0 comes from its ephemeral range, the range it also takes the source ports of outgoing
 * connections from; a service binds its port seconds later (after loading its weights), and in
 * that window any connection on the host (a client, a build fetching dependencies) can take it:
 * {@code moe up} once failed with "cannot listen on 127.0.0.1:39207 (--http-port): Address already
 * in use". So ports are drawn below that range (Linux: {@code /proc/sys/net/ipv4/ip_local_port_range}),
 * checked bindable now, and never handed out twice by this process; where the range is unknown or
 * leaves no room below it, a bind to port 0 picks one as before.
 */
final class ListenPorts {
    private static final Path EPHEMERAL_RANGE = Path.of("/proc/sys/net/ipv4/ip_local_port_range");
    /** Ports below this are left alone: well-known and registered services' conventional ports. */
    static final int LOWEST = 10_000;
    private static final int ATTEMPTS = 100;
    private static final Set<Integer> HANDED_OUT = ConcurrentHashMap.newKeySet();

    private ListenPorts() {
    }

    /** A port that is free now and that this process has not handed out before. */
    static int next() throws IOException {
        int below = ephemeralLow();
        if (below - LOWEST >= 1000) {
            ThreadLocalRandom random = ThreadLocalRandom.current();
            for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
                int port = LOWEST + random.nextInt(below - LOWEST);
                if (!HANDED_OUT.contains(port) && bindable(port) && HANDED_OUT.add(port)) {
                    return port;
                }
            }
        }
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /**
     * The first port of the kernel's ephemeral range, or 0 where it cannot be read. Read as a line:
     * {@code Files.readString} on this procfs file returned only its first character on JDK 25.
     */
    static int ephemeralLow() {
        try (BufferedReader r = Files.newBufferedReader(EPHEMERAL_RANGE)) {
            String line = r.readLine();
            return line == null ? 0 : Integer.parseInt(line.trim().split("\\s+")[0]);
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    /** Whether a listening socket can bind {@code port} on every address now. */
    private static boolean bindable(int port) {
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress(port));
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
