package io.moecluster.consul;

import io.moecluster.discovery.ClusterSpec;
import io.moecluster.discovery.ExpertMetadata;
import io.moecluster.discovery.ServiceInstance;
import io.moecluster.discovery.ServiceRegistry;
import io.moecluster.discovery.ServiceRole;
import java.math.BigInteger;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import org.kiwiproject.consul.Consul;
import org.kiwiproject.consul.ConsulException;
import org.kiwiproject.consul.NotRegisteredException;
import org.kiwiproject.consul.model.ConsulResponse;
import org.kiwiproject.consul.model.agent.ImmutableRegCheck;
import org.kiwiproject.consul.model.agent.ImmutableRegistration;
import org.kiwiproject.consul.model.health.Service;
import org.kiwiproject.consul.model.health.ServiceHealth;
import org.kiwiproject.consul.option.ImmutableQueryOptions;
import org.kiwiproject.consul.option.QueryOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The service registry of a multi-host cluster: Consul, through the agent on each host.
 *
 * <p>{@link #register} puts a service in the agent's catalog under its role's name
 * ({@code moe-router}, {@code moe-attention}, {@code moe-expert}) with a TTL check, and a heartbeat
 * passes the check every {@code ttl / 3}; closing the registration deregisters. An instance that dies
 * without deregistering goes critical once its TTL lapses, drops out of every {@code ?passing} query
 * at once, and Consul removes it after {@code deregisterCriticalAfter}. A heartbeat that finds the
 * agent has forgotten the service (an agent restarted without its data, or a process paused past
 * the reap) registers it again.
 *
 * <p>{@link #watchExperts} follows {@code /v1/health/service/moe-expert?passing} with blocking
 * queries (the {@code X-Consul-Index} of each answer is the {@code index} of the next), so an idle
 * cluster costs one request per {@code watchWait}. Failed queries back off and keep the last set.
 *
 * <p>HTTP goes through the kiwiproject consul-client: {@code AgentClient} for register, pass and
 * deregister, {@code HealthClient} for the blocking health query.
 */
public final class ConsulRegistry implements ServiceRegistry {
    private static final Logger LOG = LoggerFactory.getLogger(ConsulRegistry.class);
    private static final Duration MIN_QUERY_INTERVAL = Duration.ofMillis(50);

    private final ConsulOptions options;
    private final Consul consul;
    private final Set<AutoCloseable> open = ConcurrentHashMap.newKeySet();

    public ConsulRegistry(ConsulOptions options) {
        this.options = Objects.requireNonNull(options, "options");
        long timeout = options.requestTimeout().toMillis();
        Consul.Builder b = Consul.builder()
                .withUrl(options.address().toString())
                .withPing(false)
                .withConnectTimeoutMillis(timeout)
                .withWriteTimeoutMillis(timeout)
                // the client's TimeoutInterceptor stretches this for a blocking query to its wait + wait/16
                // (Consul's jitter) + a margin, so only register, pass and deregister are held to it
                .withReadTimeoutMillis(timeout);
        if (options.token() != null) {
            b.withTokenAuth(options.token()); // the X-Consul-Token header (withAclToken would put it in the URL)
        }
        this.consul = b.build();
    }

    /** Consul at {@code CONSUL_HTTP_ADDR} (else the local agent) with {@code CONSUL_HTTP_TOKEN}. */
    public static ConsulRegistry fromEnvironment() {
        return new ConsulRegistry(ConsulOptions.fromEnvironment());
    }

    public ConsulOptions options() {
        return options;
    }

    // ---------------------------------------------------------------- registration

    @Override
    public Registration register(ServiceInstance instance) {
        Objects.requireNonNull(instance, "instance");
        org.kiwiproject.consul.model.agent.Registration registration = registration(instance);
        try {
            consul.agentClient().register(registration);
        } catch (RuntimeException e) {
            throw new IllegalStateException("cannot register " + instance.role().serviceName() + " " + instance.id()
                    + " with Consul at " + options.address() + ": " + message(e), e);
        }
        LOG.info("registered {} {} ({}:{}) with Consul at {}, check TTL {}", instance.role().serviceName(),
                instance.id(), instance.host(), instance.port(), options.address(), options.ttl());
        Heartbeat heartbeat = new Heartbeat(instance, registration);
        open.add(heartbeat);
        heartbeat.start();
        return heartbeat;
    }

    /** What Consul is told about {@code instance}: name, id, address, port, meta, tags and the TTL check. */
    org.kiwiproject.consul.model.agent.Registration registration(ServiceInstance instance) {
        List<String> tags = new ArrayList<>();
        tags.add(instance.role().name().toLowerCase(Locale.ROOT));
        if (instance.role() == ServiceRole.EXPERT) {
            // fails here, not in every router, when an expert service describes itself wrongly
            ClusterSpec.Expert expert = ExpertMetadata.parse(instance.id(), instance.meta());
            expert.experts().forEach(k -> tags.add("expert-" + k));
        }
        return ImmutableRegistration.builder()
                .name(instance.role().serviceName())
                .id(instance.id())
                .address(instance.host())
                .port(instance.port())
                .meta(instance.meta())
                .tags(tags)
                .check(ImmutableRegCheck.builder()
                        .ttl(ConsulOptions.goDuration(options.ttl()))
                        .deregisterCriticalServiceAfter(ConsulOptions.goDuration(options.deregisterCriticalAfter()))
                        // passing from the start: a service registers once it serves
                        .status("passing")
                        .notes("moe heartbeat every " + ConsulOptions.goDuration(options.heartbeatInterval()))
                        .build())
                .build();
    }

    /** Passes the TTL check every ttl/3 until closed; closing deregisters. */
    private final class Heartbeat implements Registration {
        private final ServiceInstance instance;
        private final org.kiwiproject.consul.model.agent.Registration registration;
        private final Thread thread;
        private volatile boolean closed;
        private boolean failing;

        Heartbeat(ServiceInstance instance, org.kiwiproject.consul.model.agent.Registration registration) {
            this.instance = instance;
            this.registration = registration;
            this.thread = Thread.ofVirtual().name("consul-heartbeat-" + instance.id()).unstarted(this::run);
        }

        void start() {
            thread.start();
        }

        private void run() {
            long interval = options.heartbeatInterval().toNanos();
            long next = System.nanoTime() + interval;
            while (!closed) {
                try {
                    long sleep = next - System.nanoTime();
                    if (sleep > 0) {
                        Thread.sleep(Duration.ofNanos(sleep));
                    }
                } catch (InterruptedException e) {
                    return;
                }
                next += interval;
                if (next < System.nanoTime()) { // a long stall: beat now, then on the interval from here
                    next = System.nanoTime() + interval;
                }
                if (closed) {
                    return;
                }
                beat();
            }
        }

        private void beat() {
            try {
                consul.agentClient().pass(instance.id());
                recovered();
            } catch (NotRegisteredException e) {
                if (!closed && e.getCause() instanceof ConsulException ce && ce.hasCode() && ce.getCode() == 404) {
                    reregister();
                } else {
                    failed(e.getCause() != null ? e.getCause() : e);
                }
            } catch (RuntimeException e) {
                failed(e);
            }
        }

        private void reregister() {
            try {
                consul.agentClient().register(registration);
                LOG.warn("Consul at {} no longer knew {} {} (agent restarted, or the check went critical long enough "
                        + "to be reaped); registered it again", options.address(), instance.role().serviceName(),
                        instance.id());
                recovered();
            } catch (RuntimeException e) {
                failed(e);
            }
        }

        private void recovered() {
            if (failing) {
                failing = false;
                LOG.info("heartbeat of {} reaches Consul at {} again", instance.id(), options.address());
            }
        }

        private void failed(Throwable e) {
            if (closed) {
                return;
            }
            if (!failing) {
                failing = true;
                LOG.warn("heartbeat of {} cannot reach Consul at {} ({}); retrying every {}, the service drops out of "
                        + "discovery if this lasts past its TTL {}", instance.id(), options.address(), message(e),
                        options.heartbeatInterval(), options.ttl());
            }
        }

        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            open.remove(this);
            thread.interrupt();
            try {
                thread.join(options.requestTimeout());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            try {
                consul.agentClient().deregister(instance.id());
                LOG.info("deregistered {} {} from Consul at {}", instance.role().serviceName(), instance.id(),
                        options.address());
            } catch (RuntimeException e) {
                LOG.warn("cannot deregister {} from Consul at {} ({}); Consul drops it from discovery when its TTL {} "
                        + "lapses and removes it {} later", instance.id(), options.address(), message(e),
                        options.ttl(), options.deregisterCriticalAfter());
            }
        }
    }

    // ---------------------------------------------------------------- expert watch

    @Override
    public Watch watchExperts(Consumer<List<ClusterSpec.Expert>> listener) {
        Objects.requireNonNull(listener, "listener");
        ExpertWatch watch = new ExpertWatch(listener);
        ConsulResponse<List<ServiceHealth>> first;
        try {
            first = consul.healthClient().getHealthyServiceInstances(ServiceRole.EXPERT.serviceName(),
                    QueryOptions.BLANK);
        } catch (RuntimeException e) {
            throw new IllegalStateException("cannot read the expert services (" + ServiceRole.EXPERT.serviceName()
                    + ") from Consul at " + options.address() + ": " + message(e), e);
        }
        watch.index = sane(0, index(first));
        watch.last = watch.experts(first.getResponse());
        LOG.info("Consul at {}: {} healthy expert services", options.address(), watch.last.size());
        listener.accept(watch.last);
        open.add(watch);
        watch.thread.start();
        return watch;
    }

    private final class ExpertWatch implements Watch {
        private final Consumer<List<ClusterSpec.Expert>> listener;
        private final Thread thread;
        private final Set<String> warned = new HashSet<>();
        private volatile boolean closed;
        private long index;
        private List<ClusterSpec.Expert> last;

        ExpertWatch(Consumer<List<ClusterSpec.Expert>> listener) {
            this.listener = listener;
            this.thread = Thread.ofVirtual().name("consul-expert-watch").unstarted(this::run);
        }

        private void run() {
            Duration backoff = options.retryInitial();
            boolean failing = false;
            long lastQuery = 0;
            while (!closed) {
                try {
                    // a floor between queries: a server that answers at once forever cannot spin this thread
                    long since = System.nanoTime() - lastQuery;
                    if (since < MIN_QUERY_INTERVAL.toNanos()) {
                        Thread.sleep(Duration.ofNanos(MIN_QUERY_INTERVAL.toNanos() - since));
                    }
                    lastQuery = System.nanoTime();
                    ConsulResponse<List<ServiceHealth>> r = query(index);
                    if (closed) {
                        return;
                    }
                    index = sane(index, index(r));
                    if (failing) {
                        failing = false;
                        LOG.info("Consul at {} answers the expert watch again", options.address());
                    }
                    backoff = options.retryInitial();
                    List<ClusterSpec.Expert> experts = experts(r.getResponse());
                    if (!experts.equals(last)) {
                        last = experts;
                        LOG.info("Consul at {}: expert services changed, now {}: {}", options.address(),
                                experts.size(), experts.stream().map(ClusterSpec.Expert::id).toList());
                        deliver(experts);
                    }
                } catch (InterruptedException e) {
                    return;
                } catch (RuntimeException e) {
                    if (closed) {
                        return;
                    }
                    if (!failing) {
                        failing = true;
                        LOG.warn("expert watch cannot query Consul at {} ({}); keeping the last {} expert services, "
                                + "retrying with backoff up to {}", options.address(), message(e), last.size(),
                                options.retryMax());
                    }
                    try {
                        Thread.sleep(backoff);
                    } catch (InterruptedException ie) {
                        return;
                    }
                    backoff = backoff.multipliedBy(2);
                    if (backoff.compareTo(options.retryMax()) > 0) {
                        backoff = options.retryMax();
                    }
                }
            }
        }

        private ConsulResponse<List<ServiceHealth>> query(long index) {
            QueryOptions q = index <= 0 ? QueryOptions.BLANK : ImmutableQueryOptions.builder()
                    .wait(ConsulOptions.waitSeconds(options.watchWait()))
                    .index(BigInteger.valueOf(index))
                    .build();
            return consul.healthClient().getHealthyServiceInstances(ServiceRole.EXPERT.serviceName(), q);
        }

        private void deliver(List<ClusterSpec.Expert> experts) {
            if (closed) {
                return;
            }
            try {
                listener.accept(experts);
            } catch (RuntimeException e) {
                LOG.error("expert watch listener failed on {} expert services", experts.size(), e);
            }
        }

        /** The expert services in a health answer, by id; an instance with bad meta is skipped with a warning. */
        List<ClusterSpec.Expert> experts(List<ServiceHealth> health) {
            Map<String, ClusterSpec.Expert> byId = new TreeMap<>();
            Set<String> problems = new HashSet<>();
            for (ServiceHealth h : health) {
                Service s = h.getService();
                String node = h.getNode() == null ? "?" : h.getNode().getNode();
                String problem;
                try {
                    ClusterSpec.Expert e = ExpertMetadata.parse(s.getId(), s.getMeta() == null ? Map.of() : s.getMeta());
                    if (byId.putIfAbsent(s.getId(), e) == null) {
                        continue;
                    }
                    problem = "expert service id " + s.getId() + " is registered twice (again on node " + node
                            + "); using the first";
                } catch (RuntimeException e) {
                    problem = "skipping expert service " + s.getId() + " on node " + node + ": " + e.getMessage();
                }
                problems.add(problem);
                if (warned.add(problem)) { // once per problem, not once per answer
                    LOG.warn(problem);
                }
            }
            warned.retainAll(problems);
            return List.copyOf(byId.values());
        }

        @Override
        public void close() {
            closed = true;
            open.remove(this);
            thread.interrupt(); // a virtual thread blocked in a socket read gives up at once
        }
    }

    private static long index(ConsulResponse<?> r) {
        BigInteger i = r.getIndex();
        return i == null ? 0 : i.min(BigInteger.valueOf(Long.MAX_VALUE)).longValue();
    }

    /**
     * The index for the next query, as Consul's blocking-query guide says: an index that went
     * backwards (a restarted or replaced server) starts over from 0, and one below 1 becomes 1 so a
     * broken answer cannot make every later query return at once.
     */
    static long sane(long previous, long answered) {
        if (answered < previous) {
            LOG.info("Consul index went backwards ({} -> {}); reading the expert services afresh", previous, answered);
            return 0;
        }
        return Math.max(1, answered);
    }

    private static String message(Throwable e) {
        StringBuilder m = new StringBuilder(String.valueOf(e.getMessage()));
        for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
            if (c.getMessage() != null && !m.toString().contains(c.getMessage())) {
                m.append(": ").append(c.getMessage());
            }
        }
        return m.toString();
    }

    /** Stops every watch, then deregisters every registration still open, and frees the HTTP client. */
    @Override
    public void close() {
        List<AutoCloseable> all = List.copyOf(open);
        // watches first: the deregistrations below must not reach a listener as a shrinking cluster
        for (boolean watches : new boolean[] {true, false}) {
            for (AutoCloseable c : all) {
                if ((c instanceof ExpertWatch) != watches) {
                    continue;
                }
                try {
                    c.close();
                } catch (Exception e) {
                    LOG.warn("closing {}: {}", c, e.getMessage());
                }
            }
        }
        consul.destroy();
    }
}
