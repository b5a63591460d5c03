package io.moecluster.cluster.multihost;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * "Hosts" made of Linux network namespaces on this machine: each its own network stack with one
 * interface ({@code eth0}) and its own address in 198.18.0.0/15 (the benchmarking range), all
 * plugged into a bridge that lives in a switch namespace of its own; the test's own namespace gets
 * one more port on that bridge, so it can reach the hosts as a client on another machine would.
 * A host is cut off by taking its switch port down. Nothing else of this machine's network is
 * touched, and everything goes when the switch and host namespaces are deleted ({@link #close()},
 * also from a shutdown hook, and at the next start for the leftovers of a killed run).
 *
 * <p>Needs root and iproute2 ({@code ip netns}); {@link #unavailableReason()} says why not, for
 * the tests to skip naming it.
 */
public final class NamespaceHosts implements AutoCloseable {
    private static final String PREFIX = "moemh";
    private static final Pattern OURS = Pattern.compile(PREFIX + "(\\d+)-\\w+");

    private final String tag;
    private final int subnet;
    private final int hosts;
    private final String clientLink;
    private final List<Process> processes = new ArrayList<>();
    private final Thread hook;
    private boolean closed;

    private NamespaceHosts(int hosts) {
        long pid = ProcessHandle.current().pid();
        this.tag = PREFIX + pid;
        this.subnet = (int) (20 + pid % 200);
        this.hosts = hosts;
        this.clientLink = "mh" + (pid % 1_000_000) + "c";
        this.hook = new Thread(this::cleanUp, "namespace-hosts-cleanup");
    }

    /** Null when namespaces can be made here, else why not. */
    public static String unavailableReason() {
        if (!System.getProperty("os.name", "").toLowerCase().contains("linux")) {
            return "network namespaces need Linux, this is " + System.getProperty("os.name");
        }
        try {
            Result id = run(List.of("id", "-u"));
            if (!id.out().strip().equals("0")) {
                return "network namespaces need root (ip netns add), this runs as uid " + id.out().strip();
            }
            Result ip = run(List.of("ip", "-V"));
            if (ip.exit() != 0) {
                return "iproute2's ip is missing: " + ip.out();
            }
            String probe = PREFIX + ProcessHandle.current().pid() + "-probe";
            Result add = run(List.of("ip", "netns", "add", probe));
            run(List.of("ip", "netns", "del", probe));
            if (add.exit() != 0) {
                return "ip netns add fails here: " + add.out().strip();
            }
            return null;
        } catch (IOException e) {
            return "cannot run ip: " + e.getMessage();
        }
    }

    /**
     * Makes {@code hosts} namespaces ({@code 0..hosts-1}) on one bridge, with this process's
     * namespace as a client at {@link #clientAddress()}.
     */
    public static NamespaceHosts create(int hosts) throws IOException {
        removeLeftovers();
        NamespaceHosts h = new NamespaceHosts(hosts);
        Runtime.getRuntime().addShutdownHook(h.hook);
        try {
            h.build();
        } catch (IOException | RuntimeException e) {
            h.close();
            throw e;
        }
        return h;
    }

    private void build() throws IOException {
        String sw = namespace("sw");
        must("ip", "netns", "add", sw);
        must("ip", "-n", sw, "link", "set", "lo", "up");
        must("ip", "-n", sw, "link", "add", "br0", "type", "bridge");
        must("ip", "-n", sw, "link", "set", "br0", "up");
        for (int i = 0; i < hosts; i++) {
            String ns = namespace("h" + i);
            must("ip", "netns", "add", ns);
            must("ip", "-n", ns, "link", "set", "lo", "up");
            must("ip", "-n", sw, "link", "add", "p" + i, "type", "veth", "peer", "name", "eth0", "netns", ns);
            must("ip", "-n", sw, "link", "set", "p" + i, "master", "br0", "up");
            must("ip", "-n", ns, "addr", "add", address(i) + "/24", "dev", "eth0");
            must("ip", "-n", ns, "link", "set", "eth0", "up");
        }
        // The test's namespace as one more machine on the segment.
        must("ip", "link", "add", clientLink, "type", "veth", "peer", "name", "pc", "netns", sw);
        must("ip", "-n", sw, "link", "set", "pc", "master", "br0", "up");
        must("ip", "addr", "add", clientAddress() + "/24", "dev", clientLink);
        must("ip", "link", "set", clientLink, "up");
    }

    /** The namespace of host {@code i}. */
    public String host(int i) {
        return namespace("h" + i);
    }

    /** Host {@code i}'s address: 198.18.N.(i + 1). */
    public String address(int i) {
        return "198.18." + subnet + "." + (i + 1);
    }

    /** This process's address on the hosts' segment. */
    public String clientAddress() {
        return "198.18." + subnet + ".254";
    }

    private String namespace(String name) {
        return tag + "-" + name;
    }

    /** Takes host {@code i}'s switch port down: it can neither send nor receive (a cable pulled). */
    public void cut(int i) throws IOException {
        must("ip", "-n", namespace("sw"), "link", "set", "p" + i, "down");
    }

    /** Puts host {@code i}'s switch port back. */
    public void reconnect(int i) throws IOException {
        must("ip", "-n", namespace("sw"), "link", "set", "p" + i, "up");
    }

    /**
     * Starts {@code command} inside host {@code i}'s namespace ({@code ip netns exec}), output to
     * {@code log}; it is killed at {@link #close()} at the latest.
     */
    public synchronized Process start(int i, List<String> command, Path log, List<String> env) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", host(i)));
        cmd.addAll(command);
        ProcessBuilder b = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        for (String kv : env) {
            int eq = kv.indexOf('=');
            b.environment().put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        Process p = b.start();
        processes.add(p);
        return p;
    }

    @Override
    public synchronized void close() {
        cleanUp();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // The hook runs (or ran) the same clean-up.
        }
    }

    private synchronized void cleanUp() {
        if (closed) {
            return;
        }
        closed = true;
        for (Process p : processes) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        for (Process p : processes) {
            try {
                p.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        deleteNamespaces(tag);
        try {
            run(List.of("ip", "link", "del", clientLink));
        } catch (IOException ignored) {
            // Gone with the switch namespace.
        }
    }

    /** Kills what still runs in this tag's namespaces and deletes them. */
    private static void deleteNamespaces(String tag) {
        try {
            for (String ns : namespaces()) {
                if (!ns.startsWith(tag + "-")) {
                    continue;
                }
                for (String pid : run(List.of("ip", "netns", "pids", ns)).out().split("\\s+")) {
                    if (!pid.isBlank()) {
                        ProcessHandle.of(Long.parseLong(pid.strip())).ifPresent(ProcessHandle::destroyForcibly);
                    }
                }
                run(List.of("ip", "netns", "del", ns));
            }
        } catch (IOException | RuntimeException e) {
            System.err.println("NamespaceHosts: cleaning up " + tag + ": " + e);
        }
    }

    /** The namespaces of earlier runs whose test process is gone (killed before it could clean up). */
    private static void removeLeftovers() throws IOException {
        for (String ns : namespaces()) {
            Matcher m = OURS.matcher(ns);
            if (m.matches()) {
                long owner = Long.parseLong(m.group(1));
                if (owner != ProcessHandle.current().pid() && ProcessHandle.of(owner).map(ProcessHandle::isAlive)
                        .orElse(false)) {
                    continue;
                }
                deleteNamespaces(PREFIX + owner);
            }
        }
        // The Aeron directories of a killed run's media drivers (MultiHostCluster names them moemh-PID-...).
        Path shm = Path.of("/dev/shm");
        if (Files.isDirectory(shm)) {
            try (var dirs = Files.list(shm)) {
                for (Path d : dirs.toList()) {
                    Matcher m = Pattern.compile("moemh-(\\d+)-.*").matcher(d.getFileName().toString());
                    if (m.matches() && !ProcessHandle.of(Long.parseLong(m.group(1))).map(ProcessHandle::isAlive)
                            .orElse(false)) {
                        try (var walk = Files.walk(d)) {
                            walk.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
                        }
                    }
                }
            }
        }
    }

    private static List<String> namespaces() throws IOException {
        List<String> out = new ArrayList<>();
        for (String line : run(List.of("ip", "netns", "list")).out().split("\n")) {
            String name = line.strip().split("\\s+")[0];
            if (!name.isEmpty()) {
                out.add(name);
            }
        }
        return out;
    }

    private record Result(int exit, String out) {
    }

    private static Result run(List<String> command) throws IOException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", command) + " did not finish in 30 s");
            }
            return new Result(p.exitValue(), out);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted: " + String.join(" ", command), e);
        }
    }

    private static void must(String... command) throws IOException {
        Result r = run(List.of(command));
        if (r.exit() != 0) {
            throw new IOException(String.join(" ", command) + " failed (" + r.exit() + "): " + r.out().strip());
        }
    }

    /** Writes nothing; here so the log directory exists before the first process. */
    static Path logs(Path dir) throws IOException {
        return Files.createDirectories(dir.resolve("logs"));
    }
}
