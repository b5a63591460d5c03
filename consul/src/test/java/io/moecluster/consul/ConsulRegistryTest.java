package io.moecluster.consul;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.discovery.ExpertMetadata;
import io.moecluster.discovery.ServiceInstance;
import io.moecluster.discovery.ServiceRegistry;
import io.moecluster.discovery.ServiceRole;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(30)
class ConsulRegistryTest {
    private static final Duration TTL = Duration.ofMillis(300);

    private FakeConsul consul;
    private final List<AutoCloseable> toClose = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        consul = new FakeConsul();
    }

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : toClose.reversed()) {
            c.close();
        }
        consul.close();
    }

    private ConsulOptions options() {
        return ConsulOptions.at(consul.address())
                .withTtl(TTL)
                .withDeregisterCriticalAfter(Duration.ofMillis(600))
                .withWatchWait(Duration.ofSeconds(5))
                .withRetry(Duration.ofMillis(50), Duration.ofMillis(200))
                .withRequestTimeout(Duration.ofSeconds(2));
    }

    private ConsulRegistry registry(ConsulOptions options) {
        ConsulRegistry r = new ConsulRegistry(options);
        toClose.add(r);
        return r;
    }

    private static ClusterSpec.Expert expert(String id, List<Integer> experts, int stream) {
        return new ClusterSpec.Expert(id, experts, 0, 31, stream, "aeron:udp?endpoint=10.0.0.5:" + (40100 + stream % 100));
    }

    private static ServiceInstance instance(ClusterSpec.Expert e) {
        return new ServiceInstance(e.id(), ServiceRole.EXPERT, "10.0.0.5", 50071, ExpertMetadata.of(e, e.channel()));
    }

    /** Records every listener call. */
    static final class Seen implements Consumer<List<ClusterSpec.Expert>> {
        final List<List<ClusterSpec.Expert>> calls = new CopyOnWriteArrayList<>();

        @Override
        public void accept(List<ClusterSpec.Expert> experts) {
            calls.add(experts);
        }

        List<String> lastIds() {
            return calls.getLast().stream().map(ClusterSpec.Expert::id).toList();
        }
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(10);
        }
    }

    private List<FakeConsul.Request> passes(String id) {
        return consul.requests("PUT", "/v1/agent/check/pass/service:" + id);
    }

    private List<FakeConsul.Request> healthQueries() {
        return consul.requests("GET", "/v1/health/service/moe-expert");
    }

    // ---------------------------------------------------------------- registration

    @Test
    void registrationSendsNameIdAddressPortMetaTagsAndTtlCheckThenHeartbeats() throws Exception {
        ClusterSpec.Expert e = expert("expert-a", List.of(0, 1), 2000);
        registry(options()).register(instance(e));

        List<FakeConsul.Request> registers = consul.requests("PUT", "/v1/agent/service/register");
        assertThat(registers).hasSize(1);
        JsonNode body = registers.getFirst().json();
        assertThat(FakeConsul.field(body, "Name").asText()).isEqualTo("moe-expert");
        assertThat(FakeConsul.field(body, "ID").asText()).isEqualTo("expert-a");
        assertThat(FakeConsul.field(body, "Address").asText()).isEqualTo("10.0.0.5");
        assertThat(FakeConsul.field(body, "Port").asInt()).isEqualTo(50071);
        Map<String, String> meta = new HashMap<>();
        FakeConsul.field(body, "Meta").fields().forEachRemaining(f -> meta.put(f.getKey(), f.getValue().asText()));
        assertThat(meta).isEqualTo(ExpertMetadata.of(e, e.channel()));
        List<String> tags = new ArrayList<>();
        FakeConsul.field(body, "Tags").forEach(t -> tags.add(t.asText()));
        assertThat(tags).containsExactly("expert", "expert-0", "expert-1");
        assertThat(FakeConsul.field(FakeConsul.field(body, "Check"), "TTL").asText()).isEqualTo("300ms");
        assertThat(FakeConsul.field(FakeConsul.field(body, "Check"), "DeregisterCriticalServiceAfter").asText()).isEqualTo("600ms");
        assertThat(consul.status("expert-a")).isEqualTo("passing");

        // heartbeats every ttl/3 keep the check passing well past its TTL
        Thread.sleep(TTL.multipliedBy(3).toMillis());
        // About 9 at ttl/3; at least one per TTL (a loaded machine delays some), and not a busy loop.
        assertThat(passes("expert-a")).hasSizeBetween(3, 12);
        assertThat(consul.status("expert-a")).isEqualTo("passing");
    }

    @Test
    void nonExpertRolesAreTaggedWithTheirRoleOnly() {
        registry(options()).register(new ServiceInstance("router-0", ServiceRole.ROUTER, "10.0.0.1", 50051, Map.of()));
        JsonNode body = consul.requests("PUT", "/v1/agent/service/register").getFirst().json();
        assertThat(FakeConsul.field(body, "Name").asText()).isEqualTo("moe-router");
        assertThat(FakeConsul.field(body, "Tags")).hasSize(1);
        assertThat(FakeConsul.field(body, "Tags").get(0).asText()).isEqualTo("router");
    }

    @Test
    void anExpertWithMetaTheRouterCannotReadIsRefusedAtRegistration() {
        ServiceInstance bad = new ServiceInstance("expert-x", ServiceRole.EXPERT, "10.0.0.5", 50071,
                Map.of(ExpertMetadata.EXPERTS, "0-1"));
        assertThatThrownBy(() -> registry(options()).register(bad))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("expert-x");
        assertThat(consul.requests("PUT", "/v1/agent/service/register")).isEmpty();
    }

    @Test
    void closeStopsHeartbeatsAndDeregisters() throws Exception {
        ServiceRegistry.Registration reg = registry(options()).register(instance(expert("expert-a", List.of(0), 2000)));
        await("a heartbeat", () -> !passes("expert-a").isEmpty());

        reg.close();
        assertThat(consul.requests("PUT", "/v1/agent/service/deregister/expert-a")).hasSize(1);
        assertThat(consul.service("expert-a")).isNull();
        int beats = passes("expert-a").size();
        Thread.sleep(TTL.toMillis());
        assertThat(passes("expert-a")).hasSize(beats);
        reg.close(); // idempotent
        assertThat(consul.requests("PUT", "/v1/agent/service/deregister/")).hasSize(1);
    }

    @Test
    void closingTheRegistryDeregistersWhatIsStillRegistered() {
        ConsulRegistry registry = new ConsulRegistry(options());
        registry.register(instance(expert("expert-a", List.of(0), 2000)));
        registry.register(new ServiceInstance("attention-0", ServiceRole.ATTENTION, "10.0.0.2", 50061, Map.of()));
        registry.close();
        assertThat(consul.service("expert-a")).isNull();
        assertThat(consul.service("attention-0")).isNull();
    }

    @Test
    void registerFailsNamingTheConsulAddressWhenConsulIsUnreachable() {
        ConsulRegistry registry = registry(options());
        consul.goAway();
        assertThatThrownBy(() -> registry.register(instance(expert("expert-a", List.of(0), 2000))))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("http://127.0.0.1:" + consul.port())
                .hasMessageContaining("expert-a");
    }

    @Test
    void heartbeatRegistersAgainWhenConsulForgotTheService() throws Exception {
        registry(options()).register(instance(expert("expert-a", List.of(0), 2000)));
        consul.forgetAll(); // an agent restarted without its data
        await("the service registered again", () -> consul.service("expert-a") != null);
        assertThat(consul.requests("PUT", "/v1/agent/service/register")).hasSize(2);
        await("passing again", () -> "passing".equals(consul.status("expert-a")));
    }

    @Test
    void heartbeatsSurviveAnOutageAndPassAgainWhenConsulIsBack() throws Exception {
        registry(options()).register(instance(expert("expert-a", List.of(0), 2000)));
        consul.failing(true);
        await("the TTL to lapse while Consul fails", () -> "critical".equals(consul.status("expert-a")));
        consul.failing(false);
        await("passing again", () -> "passing".equals(consul.status("expert-a")));
    }

    // ---------------------------------------------------------------- watch

    @Test
    void watchSeesAnInstanceAppearAndDisappearWhenItDeregisters() throws Exception {
        ConsulRegistry registry = registry(options());
        Seen seen = new Seen();
        toClose.add(registry.watchExperts(seen));
        assertThat(seen.calls).containsExactly(List.of()); // synchronously, before watchExperts returned

        ServiceRegistry.Registration reg = registry.register(instance(expert("expert-a", List.of(0, 1), 2000)));
        await("expert-a to appear", () -> seen.calls.size() == 2);
        assertThat(seen.lastIds()).containsExactly("expert-a");

        reg.close();
        await("expert-a to disappear", () -> seen.calls.size() == 3);
        assertThat(seen.calls.getLast()).isEmpty();
    }

    @Test
    void watchDropsADeadInstanceOnceItsTtlLapsesAndConsulReapsIt() throws Exception {
        Seen seen = new Seen();
        toClose.add(registry(options()).watchExperts(seen));

        // what a crashed process leaves behind: a registration nobody heartbeats
        ClusterSpec.Expert e = expert("expert-dead", List.of(3), 2003);
        String body = new ObjectMapper().writeValueAsString(Map.of(
                "Name", "moe-expert", "ID", e.id(), "Address", "10.0.0.7", "Port", 50071,
                "Meta", ExpertMetadata.of(e, e.channel()),
                "Check", Map.of("TTL", "300ms", "DeregisterCriticalServiceAfter", "300ms", "Status", "passing")));
        try (HttpClient http = HttpClient.newHttpClient()) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(
                            URI.create("http://" + consul.address() + "/v1/agent/service/register"))
                    .PUT(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).isEqualTo(200);
        }
        await("expert-dead to appear", () -> seen.calls.size() == 2);
        assertThat(seen.lastIds()).containsExactly("expert-dead");

        await("the TTL to lapse", () -> seen.calls.size() == 3);
        assertThat(seen.calls.getLast()).isEmpty();
        assertThat(consul.service("expert-dead")).isNotNull(); // critical, not yet reaped
        assertThat(consul.status("expert-dead")).isEqualTo("critical");
        await("Consul to reap it", () -> consul.service("expert-dead") == null);
        assertThat(seen.calls).hasSize(3); // reaping a critical instance changes nothing passing
    }

    @Test
    void watchUsesBlockingQueriesInsteadOfPolling() throws Exception {
        // a wait longer than the request timeout: the blocking query must outlast the plain read timeout
        ConsulRegistry registry = registry(options().withWatchWait(Duration.ofSeconds(1))
                .withRequestTimeout(Duration.ofMillis(400)));
        registry.register(new ServiceInstance("router-0", ServiceRole.ROUTER, "10.0.0.1", 50051, Map.of()));
        Seen seen = new Seen();
        toClose.add(registry.watchExperts(seen));
        await("the first blocking query", () -> healthQueries().size() >= 2);

        Thread.sleep(1500); // nothing changes for the experts (the router's heartbeats move no index)
        List<FakeConsul.Request> queries = healthQueries();
        assertThat(queries).as("initial read, a blocking query that waited its second out, the next one")
                .hasSizeBetween(2, 3);
        assertThat(queries.getFirst().query()).containsEntry("passing", "true").doesNotContainKey("index");
        FakeConsul.Request blocking = queries.get(1);
        assertThat(blocking.query()).containsEntry("wait", "1s").containsEntry("passing", "true");
        assertThat(Long.parseLong(blocking.query().get("index"))).isEqualTo(consul.index());

        // a change answers the blocked query at once
        long before = System.nanoTime();
        registry.register(instance(expert("expert-a", List.of(0), 2000)));
        await("expert-a to appear", () -> seen.calls.size() == 2);
        assertThat(Duration.ofNanos(System.nanoTime() - before)).as("before the 1 s wait ran out").isLessThan(Duration.ofMillis(800));
        await("the next blocking query", () -> Long.parseLong(healthQueries().getLast().query().getOrDefault("index",
                "0")) == consul.index());
    }

    @Test
    void watchKeepsTheLastSetWhileConsulAnswers500AndRecovers() throws Exception {
        ConsulRegistry registry = registry(options().withTtl(Duration.ofSeconds(5)));
        registry.register(instance(expert("expert-a", List.of(0), 2000)));
        Seen seen = new Seen();
        toClose.add(registry.watchExperts(seen));
        assertThat(seen.lastIds()).containsExactly("expert-a");

        consul.failing(true);
        int before = healthQueries().size();
        Thread.sleep(700);
        int during = healthQueries().size() - before;
        assertThat(during).as("retries back off (50 ms doubling to 200 ms)").isBetween(2, 8);
        assertThat(seen.calls).hasSize(1);

        consul.failing(false);
        registry.register(instance(expert("expert-b", List.of(1), 2001)));
        await("expert-b after recovery", () -> seen.calls.size() == 2);
        assertThat(seen.lastIds()).containsExactly("expert-a", "expert-b");
    }

    @Test
    void watchKeepsTheLastSetWhileConsulIsGoneAndRecovers() throws Exception {
        ConsulRegistry registry = registry(options().withTtl(Duration.ofSeconds(5)));
        registry.register(instance(expert("expert-a", List.of(0), 2000)));
        Seen seen = new Seen();
        toClose.add(registry.watchExperts(seen));

        consul.goAway();
        Thread.sleep(500);
        assertThat(seen.calls).hasSize(1);
        assertThat(seen.lastIds()).containsExactly("expert-a");

        consul.comeBack();
        registry.register(instance(expert("expert-b", List.of(1), 2001)));
        await("expert-b after Consul is back", () -> seen.calls.size() == 2);
        assertThat(seen.lastIds()).containsExactly("expert-a", "expert-b");
    }

    @Test
    void watchStartsOverFromIndexZeroWhenTheIndexGoesBackwards() throws Exception {
        ConsulRegistry registry = registry(options().withWatchWait(Duration.ofSeconds(1)));
        registry.register(instance(expert("expert-a", List.of(0), 2000)));
        registry.register(instance(expert("expert-b", List.of(1), 2001)));
        Seen seen = new Seen();
        toClose.add(registry.watchExperts(seen));
        await("a blocking query", () -> healthQueries().size() >= 2);

        consul.resetIndex(1); // a replaced server whose raft index is lower
        consul.put("expert-c", "moe-expert", ExpertMetadata.of(expert("expert-c", List.of(2), 2002),
                "aeron:udp?endpoint=10.0.0.9:40102"), "passing");
        await("expert-c", () -> seen.calls.size() == 2);
        assertThat(seen.lastIds()).containsExactly("expert-a", "expert-b", "expert-c");
        // the answer with the lower index is followed by a fresh, non-blocking read (index 0: no index)
        await("a fresh read after the index went backwards", () -> healthQueries().stream().skip(1)
                .anyMatch(q -> !q.query().containsKey("index")));
    }

    @Test
    void instancesWithBadMetaAreSkippedNotFatal() throws Exception {
        ConsulRegistry registry = registry(options());
        registry.register(instance(expert("expert-a", List.of(0), 2000)));
        consul.put("expert-bad", "moe-expert", Map.of(ExpertMetadata.EXPERTS, "zero", ExpertMetadata.FIRST_LAYER, "0",
                ExpertMetadata.LAST_LAYER, "31", ExpertMetadata.STREAM_ID, "2009", ExpertMetadata.CHANNEL, "aeron:ipc"),
                "passing");
        consul.put("expert-nochannel", "moe-expert", Map.of(ExpertMetadata.EXPERTS, "1", ExpertMetadata.FIRST_LAYER,
                "0", ExpertMetadata.LAST_LAYER, "31", ExpertMetadata.STREAM_ID, "2008"), "passing");
        Seen seen = new Seen();
        toClose.add(registry.watchExperts(seen));
        assertThat(seen.lastIds()).containsExactly("expert-a");

        registry.register(instance(expert("expert-b", List.of(1), 2001)));
        await("expert-b", () -> seen.calls.size() == 2);
        assertThat(seen.lastIds()).containsExactly("expert-a", "expert-b");
    }

    @Test
    void watchFailsNamingTheConsulAddressWhenConsulIsUnreachable() {
        ConsulRegistry registry = registry(options());
        consul.goAway();
        assertThatThrownBy(() -> registry.watchExperts(experts -> { }))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("http://127.0.0.1:" + consul.port());
    }

    @Test
    void aClosedWatchCallsNoMore() throws Exception {
        ConsulRegistry registry = registry(options());
        Seen seen = new Seen();
        ServiceRegistry.Watch watch = registry.watchExperts(seen);
        await("a blocking query", () -> healthQueries().size() >= 2);
        watch.close();
        registry.register(instance(expert("expert-a", List.of(0), 2000)));
        Thread.sleep(300);
        assertThat(seen.calls).hasSize(1);
    }

    @Test
    void theAclTokenTravelsInTheHeaderOfEveryRequest() throws Exception {
        ConsulRegistry registry = registry(options().withToken("s3cr3t-token"));
        ServiceRegistry.Registration reg = registry.register(instance(expert("expert-a", List.of(0), 2000)));
        toClose.add(registry.watchExperts(experts -> { }));
        await("a heartbeat", () -> !passes("expert-a").isEmpty());
        reg.close();

        List<FakeConsul.Request> all = consul.requests();
        assertThat(all).extracting(FakeConsul.Request::path).contains("/v1/agent/service/register",
                "/v1/agent/check/pass/service:expert-a", "/v1/health/service/moe-expert",
                "/v1/agent/service/deregister/expert-a");
        assertThat(all).allSatisfy(r -> {
            assertThat(r.token()).isEqualTo("s3cr3t-token");
            assertThat(r.query()).doesNotContainKey("token");
        });
    }

    @Test
    void expertMetadataRoundTripsThroughConsul() throws Exception {
        ClusterSpec.Expert a = new ClusterSpec.Expert("expert-a", List.of(0, 1, 2, 5, 7), 0, 15, 2000,
                "aeron:udp?endpoint=10.0.0.5:40100");
        ClusterSpec.Expert b = new ClusterSpec.Expert("expert-b", List.of(3, 4, 6, 8), 16, 31, 2001,
                "aeron:udp?endpoint=10.0.0.6:40100|mtu=8192");
        ConsulRegistry registry = registry(options());
        registry.register(instance(a));
        registry.register(instance(b));
        Seen seen = new Seen();
        toClose.add(registry.watchExperts(seen));
        assertThat(seen.calls.getLast()).containsExactly(a, b);
    }
}
