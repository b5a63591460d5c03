package io.moecluster.consul;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.MissingNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A loopback stand-in for a Consul agent: exactly the HTTP API the adapter uses, with Consul's
 * semantics where the adapter depends on them.
 *
 * <ul>
 *   <li>{@code PUT /v1/agent/service/register}: stores the service with its one check
 *       ({@code service:<id>}); a TTL check starts critical unless the body gives {@code Status}.
 *   <li>{@code PUT /v1/agent/service/deregister/<id>}: removes it (404 for an unknown id).
 *   <li>{@code PUT /v1/agent/check/pass/<checkId>}: marks the check passing and stamps the time
 *       (404 for an unknown check). A TTL not refreshed in time turns the check critical, and
 *       {@code DeregisterCriticalServiceAfter} of critical removes the service.
 *   <li>{@code GET /v1/health/service/<name>}: the instances with their checks, only the all-passing
 *       ones with {@code passing}; with {@code index} (&gt; 0) and {@code wait} it blocks until the
 *       registry's index moves past {@code index} or {@code wait} elapses. Every answer carries
 *       {@code X-Consul-Index}, {@code X-Consul-KnownLeader} and {@code X-Consul-LastContact}.
 * </ul>
 *
 * Every request is recorded (method, path, query, token header, body) for assertions, and the
 * fake can answer 500 to everything or go away and come back on the same port.
 */
public final class FakeConsul implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern GO_DURATION = Pattern.compile("(\\d+)(ms|s|m|h)?");

    /** One HTTP request as the fake saw it. */
    record Request(String method, String path, Map<String, String> query, String token, String body, long atNanos) {
        JsonNode json() {
            try {
                return JSON.readTree(body);
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /**
     * A field of a request body matched as Consul (Go's encoding/json) matches it: ignoring case, so
     * {@code Id} is {@code ID}. A missing or null field is a missing node.
     */
    static JsonNode field(JsonNode object, String name) {
        if (object != null && object.isObject()) {
            for (var it = object.fields(); it.hasNext(); ) {
                var e = it.next();
                if (e.getKey().equalsIgnoreCase(name) && !e.getValue().isNull()) {
                    return e.getValue();
                }
            }
        }
        return MissingNode.getInstance();
    }

    /** One registered service with its check. */
    static final class Svc {
        final String id;
        final String name;
        final String address;
        final int port;
        final List<String> tags;
        final Map<String, String> meta;
        final long ttlNanos;
        final long deregisterAfterNanos;
        String status;
        long lastPassNanos;
        long criticalSinceNanos;

        Svc(JsonNode body, long now) {
            name = field(body, "Name").asText();
            id = field(body, "ID").asText(name);
            address = field(body, "Address").asText("");
            port = field(body, "Port").asInt(0);
            tags = new ArrayList<>();
            field(body, "Tags").forEach(t -> tags.add(t.asText()));
            meta = new LinkedHashMap<>();
            field(body, "Meta").fields().forEachRemaining(e -> meta.put(e.getKey(), e.getValue().asText()));
            JsonNode check = field(body, "Check");
            JsonNode ttl = field(check, "TTL");
            JsonNode deregister = field(check, "DeregisterCriticalServiceAfter");
            JsonNode status = field(check, "Status");
            ttlNanos = ttl.isTextual() ? parseGo(ttl.asText()).toNanos() : 0;
            deregisterAfterNanos = deregister.isTextual() ? parseGo(deregister.asText()).toNanos() : 0;
            this.status = status.isTextual() ? status.asText() : check.isObject() ? "critical" : "passing";
            lastPassNanos = now;
            criticalSinceNanos = now;
        }

        String checkId() {
            return "service:" + id;
        }
    }

    private final Object lock = new Object();
    private final Map<String, Svc> services = new LinkedHashMap<>();
    private final List<Request> requests = new CopyOnWriteArrayList<>();
    private final ScheduledExecutorService ticker = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "fake-consul-ttl");
        t.setDaemon(true);
        return t;
    });
    private final int port;
    private long index = 1;
    private volatile boolean failing;
    private volatile HttpServer server;
    private ExecutorService handlers;

    public FakeConsul() throws IOException {
        this(0);
    }

    private FakeConsul(int port) throws IOException {
        this.server = start(port);
        this.port = server.getAddress().getPort();
        ticker.scheduleWithFixedDelay(this::expire, 10, 10, TimeUnit.MILLISECONDS);
    }

    private HttpServer start(int port) throws IOException {
        HttpServer s = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 0);
        handlers = Executors.newVirtualThreadPerTaskExecutor();
        s.setExecutor(handlers);
        s.createContext("/", this::handle);
        s.start();
        return s;
    }

    public String address() {
        return "127.0.0.1:" + port;
    }

    int port() {
        return port;
    }

    // ---------------------------------------------------------------- control

    /** Every request answers 500 while true (the requests are still recorded). */
    void failing(boolean failing) {
        this.failing = failing;
        wake();
    }

    /** Stops listening; connections are closed and blocked queries cut off. The registry is kept. */
    void goAway() {
        HttpServer s = server;
        server = null;
        if (s != null) {
            s.stop(0);
            handlers.shutdownNow();
        }
        wake();
    }

    /** Listens again on the same port with the same registry. */
    void comeBack() throws IOException {
        if (server == null) {
            server = start(port);
        }
    }

    /** Forgets every service without touching the index's monotony: an agent restarted without its data. */
    void forgetAll() {
        synchronized (lock) {
            services.clear();
            bump();
        }
    }

    /** Stores a service as if registered by someone else (e.g. with meta the adapter would refuse to send). */
    void put(String id, String name, Map<String, String> meta, String status) {
        ObjectMapper m = JSON;
        var body = m.createObjectNode().put("ID", id).put("Name", name).put("Address", "10.0.0.9").put("Port", 50071);
        var metaNode = body.putObject("Meta");
        meta.forEach(metaNode::put);
        body.putObject("Check").put("Status", status);
        synchronized (lock) {
            services.put(id, new Svc(body, System.nanoTime()));
            bump();
        }
    }

    /** Sets the registry's index lower, as a replaced server with a shorter raft log would answer. */
    void resetIndex(long index) {
        synchronized (lock) {
            this.index = index;
            lock.notifyAll();
        }
    }

    long index() {
        synchronized (lock) {
            return index;
        }
    }

    Svc service(String id) {
        synchronized (lock) {
            return services.get(id);
        }
    }

    String status(String id) {
        synchronized (lock) {
            Svc s = services.get(id);
            return s == null ? null : s.status;
        }
    }

    List<Request> requests() {
        return List.copyOf(requests);
    }

    List<Request> requests(String method, String pathPrefix) {
        return requests.stream().filter(r -> r.method().equals(method) && r.path().startsWith(pathPrefix)).toList();
    }

    @Override
    public void close() {
        goAway();
        ticker.shutdownNow();
    }

    // ---------------------------------------------------------------- state

    private void bump() {
        index++;
        lock.notifyAll();
    }

    private void wake() {
        synchronized (lock) {
            lock.notifyAll();
        }
    }

    /** TTL lapse turns a check critical; critical for DeregisterCriticalServiceAfter removes the service. */
    private void expire() {
        long now = System.nanoTime();
        synchronized (lock) {
            boolean changed = false;
            for (var it = services.values().iterator(); it.hasNext(); ) {
                Svc s = it.next();
                if (s.ttlNanos > 0 && !s.status.equals("critical") && now - s.lastPassNanos > s.ttlNanos) {
                    s.status = "critical";
                    s.criticalSinceNanos = now;
                    changed = true;
                }
                if (s.status.equals("critical") && s.deregisterAfterNanos > 0
                        && now - s.criticalSinceNanos > s.deregisterAfterNanos) {
                    it.remove();
                    changed = true;
                }
            }
            if (changed) {
                bump();
            }
        }
    }

    // ---------------------------------------------------------------- HTTP

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getPath();
            Map<String, String> query = query(ex.getRequestURI().getRawQuery());
            String body = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
            requests.add(new Request(ex.getRequestMethod(), path, query, ex.getRequestHeaders().getFirst("X-Consul-Token"),
                    body, System.nanoTime()));
            if (failing) {
                send(ex, 500, "text/plain", "rpc error: No cluster leader");
                return;
            }
            String method = ex.getRequestMethod();
            if (method.equals("PUT") && path.equals("/v1/agent/service/register")) {
                register(ex, body);
            } else if (method.equals("PUT") && path.startsWith("/v1/agent/service/deregister/")) {
                deregister(ex, path.substring("/v1/agent/service/deregister/".length()));
            } else if (method.equals("PUT") && path.startsWith("/v1/agent/check/pass/")) {
                pass(ex, path.substring("/v1/agent/check/pass/".length()));
            } else if (method.equals("GET") && path.startsWith("/v1/health/service/")) {
                health(ex, path.substring("/v1/health/service/".length()), query);
            } else {
                send(ex, 404, "text/plain", "fake Consul does not serve " + method + " " + path);
            }
        } catch (IOException | RuntimeException e) {
            // a client gone or the server stopped mid-answer
        }
    }

    private void register(HttpExchange ex, String body) throws IOException {
        JsonNode json = JSON.readTree(body);
        if (!field(json, "Name").isTextual()) {
            send(ex, 400, "text/plain", "Missing service name");
            return;
        }
        synchronized (lock) {
            Svc s = new Svc(json, System.nanoTime());
            services.put(s.id, s);
            bump();
        }
        send(ex, 200, "text/plain", "");
    }

    private void deregister(HttpExchange ex, String id) throws IOException {
        boolean removed;
        synchronized (lock) {
            removed = services.remove(id) != null;
            if (removed) {
                bump();
            }
        }
        if (removed) {
            send(ex, 200, "text/plain", "");
        } else {
            send(ex, 404, "text/plain", "Unknown service ID \"" + id + "\". Ensure that the service ID is passed, "
                    + "not the service name.");
        }
    }

    private void pass(HttpExchange ex, String checkId) throws IOException {
        boolean known = false;
        synchronized (lock) {
            for (Svc s : services.values()) {
                if (s.checkId().equals(checkId)) {
                    known = true;
                    s.lastPassNanos = System.nanoTime();
                    if (!s.status.equals("passing")) {
                        s.status = "passing";
                        bump();
                    }
                }
            }
        }
        if (known) {
            send(ex, 200, "text/plain", "");
        } else {
            send(ex, 404, "text/plain", "Unknown check ID \"" + checkId + "\". Ensure that the check ID is passed, "
                    + "not the check name.");
        }
    }

    private void health(HttpExchange ex, String name, Map<String, String> query) throws IOException {
        boolean passing = query.containsKey("passing") && !"false".equalsIgnoreCase(query.get("passing"));
        long want = query.containsKey("index") ? Long.parseLong(query.get("index")) : 0;
        Duration wait = query.containsKey("wait") ? parseGo(query.get("wait")) : Duration.ofMinutes(5);
        List<Object> out = new ArrayList<>();
        long answerIndex;
        synchronized (lock) {
            if (want > 0) {
                long deadline = System.nanoTime() + wait.toNanos();
                while (index <= want && !failing && server != null) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        break;
                    }
                    try {
                        TimeUnit.NANOSECONDS.timedWait(lock, left);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }
            if (failing || server == null) {
                send(ex, 500, "text/plain", "rpc error: No cluster leader");
                return;
            }
            answerIndex = index;
            for (Svc s : services.values()) {
                if (!s.name.equals(name) || passing && !s.status.equals("passing")) {
                    continue;
                }
                out.add(entry(s));
            }
        }
        ex.getResponseHeaders().add("X-Consul-Index", Long.toString(answerIndex));
        ex.getResponseHeaders().add("X-Consul-KnownLeader", "true");
        ex.getResponseHeaders().add("X-Consul-LastContact", "0");
        ex.getResponseHeaders().add("X-Consul-Effective-Consistency", "leader");
        send(ex, 200, "application/json", JSON.writeValueAsString(out));
    }

    private static Map<String, Object> entry(Svc s) {
        Map<String, Object> node = new LinkedHashMap<>();
        node.put("ID", "3f1c8a2e-0000-4000-8000-000000000001");
        node.put("Node", "fake-node");
        node.put("Address", "127.0.0.1");
        node.put("Datacenter", "dc1");
        node.put("TaggedAddresses", Map.of("lan", "127.0.0.1", "wan", "127.0.0.1"));
        node.put("Meta", Map.of("consul-network-segment", ""));
        node.put("CreateIndex", 5);
        node.put("ModifyIndex", 5);

        Map<String, Object> service = new LinkedHashMap<>();
        service.put("ID", s.id);
        service.put("Service", s.name);
        service.put("Tags", s.tags);
        service.put("Address", s.address);
        service.put("Meta", s.meta);
        service.put("Port", s.port);
        service.put("Weights", Map.of("Passing", 1, "Warning", 1));
        service.put("EnableTagOverride", false);
        service.put("CreateIndex", 10);
        service.put("ModifyIndex", 10);

        Map<String, Object> serf = new LinkedHashMap<>();
        serf.put("Node", "fake-node");
        serf.put("CheckID", "serfHealth");
        serf.put("Name", "Serf Health Status");
        serf.put("Status", "passing");
        serf.put("Notes", "");
        serf.put("Output", "Agent alive and reachable");
        serf.put("ServiceID", "");
        serf.put("ServiceName", "");
        serf.put("ServiceTags", List.of());
        serf.put("Type", "");
        serf.put("CreateIndex", 5);
        serf.put("ModifyIndex", 5);

        Map<String, Object> ttl = new LinkedHashMap<>();
        ttl.put("Node", "fake-node");
        ttl.put("CheckID", s.checkId());
        ttl.put("Name", "Service '" + s.name + "' check");
        ttl.put("Status", s.status);
        ttl.put("Notes", "");
        ttl.put("Output", s.status.equals("critical") ? "TTL expired" : "");
        ttl.put("ServiceID", s.id);
        ttl.put("ServiceName", s.name);
        ttl.put("ServiceTags", s.tags);
        ttl.put("Type", "ttl");
        ttl.put("CreateIndex", 10);
        ttl.put("ModifyIndex", 10);

        Map<String, Object> e = new LinkedHashMap<>();
        e.put("Node", node);
        e.put("Service", service);
        e.put("Checks", List.of(serf, ttl));
        return e;
    }

    private static void send(HttpExchange ex, int code, String type, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(code, bytes.length == 0 ? -1 : bytes.length);
        if (bytes.length > 0) {
            try (OutputStream out = ex.getResponseBody()) {
                out.write(bytes);
            }
        }
    }

    private static Map<String, String> query(String raw) {
        Map<String, String> q = new LinkedHashMap<>();
        if (raw == null || raw.isEmpty()) {
            return q;
        }
        for (String part : raw.split("&")) {
            int eq = part.indexOf('=');
            String k = URLDecoder.decode(eq < 0 ? part : part.substring(0, eq), StandardCharsets.UTF_8);
            String v = eq < 0 ? "" : URLDecoder.decode(part.substring(eq + 1), StandardCharsets.UTF_8);
            q.put(k, v);
        }
        return q;
    }

    /** A Go duration as Consul reads it, in the forms the adapter sends ({@code 10s}, {@code 300ms}, {@code 1m}). */
    static Duration parseGo(String s) {
        Matcher m = GO_DURATION.matcher(s.strip());
        if (!m.matches()) {
            throw new IllegalArgumentException("not a duration the fake understands: " + s);
        }
        long n = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "ns" : m.group(2);
        return switch (unit) {
            case "ms" -> Duration.ofMillis(n);
            case "s" -> Duration.ofSeconds(n);
            case "m" -> Duration.ofMinutes(n);
            case "h" -> Duration.ofHours(n);
            default -> Duration.ofNanos(n);
        };
    }
}
