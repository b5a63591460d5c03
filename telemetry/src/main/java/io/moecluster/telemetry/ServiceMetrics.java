package io.moecluster.telemetry;

import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.api.metrics.MeterProvider;
import io.opentelemetry.exporter.prometheus.PrometheusHttpServer;
import io.opentelemetry.sdk.common.export.MemoryMode;
import io.opentelemetry.sdk.metrics.SdkMeterProvider;
import io.opentelemetry.sdk.resources.Resource;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One service's metrics: an OpenTelemetry meter whose instruments are served in Prometheus text
 * format at {@code http://HOST:PORT/metrics}. A port below 1 turns metrics off (a no-op meter),
 * so instruments can be registered unconditionally.
 *
 * <p>The services register observable instruments over counters they keep anyway, so collecting
 * costs nothing on the data path; histograms are recorded where the value arises.
 *
 * <p>The endpoint is the OpenTelemetry Prometheus exporter's own server (the JDK's HTTP server),
 * with two changes so that one client cannot block it: {@value #SCRAPE_THREADS} threads serve
 * scrapes instead of the exporter's one (its default reuses one buffer, so it must serialize them;
 * here each scrape gets its own data), and a request that has not been read whole within
 * {@value #MAX_REQUEST_SECONDS} s, or whose answer has not been taken within that time, is dropped
 * ({@code sun.net.httpserver.maxReqTime} / {@code maxRspTime}, set unless the JVM sets them).
 * Without these, one unfinished request held the endpoint for as long as its client liked.
 */
public final class ServiceMetrics implements AutoCloseable {
    /** Scrapes served at once. */
    public static final int SCRAPE_THREADS = 4;
    /** Longest time a scrape request may take to arrive, and its answer to be read. */
    public static final int MAX_REQUEST_SECONDS = 10;

    static {
        // Read once, when the JDK's HTTP server is first used in this JVM: here, before any is made.
        if (System.getProperty("sun.net.httpserver.maxReqTime") == null) {
            System.setProperty("sun.net.httpserver.maxReqTime", Integer.toString(MAX_REQUEST_SECONDS));
        }
        if (System.getProperty("sun.net.httpserver.maxRspTime") == null) {
            System.setProperty("sun.net.httpserver.maxRspTime", Integer.toString(MAX_REQUEST_SECONDS));
        }
    }

    public static final AttributeKey<String> SERVICE_NAME = AttributeKey.stringKey("service.name");
    public static final AttributeKey<String> INSTANCE_ID = AttributeKey.stringKey("service.instance.id");
    /** The expert id of a per-expert series (the shared expert is num_experts), at routers and expert services alike. */
    public static final AttributeKey<Long> EXPERT = AttributeKey.longKey("expert");

    private final SdkMeterProvider provider;
    private final Meter meter;
    private final String endpoint;

    private ServiceMetrics(SdkMeterProvider provider, Meter meter, String endpoint) {
        this.provider = provider;
        this.meter = meter;
        this.endpoint = endpoint;
    }

    /** @param port the Prometheus port; below 1 means no metrics */
    public static ServiceMetrics start(String service, String instance, String host, int port) {
        if (port < 1) {
            return new ServiceMetrics(null, MeterProvider.noop().get("io.moecluster"), null);
        }
        AtomicInteger thread = new AtomicInteger();
        ExecutorService scrapes = Executors.newFixedThreadPool(SCRAPE_THREADS, r -> {
            Thread t = new Thread(r, "metrics-http-" + port + "-" + thread.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        PrometheusHttpServer server = PrometheusHttpServer.builder().setHost(host).setPort(port)
                .setMemoryMode(MemoryMode.IMMUTABLE_DATA).setExecutor(scrapes).build();
        SdkMeterProvider provider = SdkMeterProvider.builder()
                .setResource(Resource.getDefault().merge(Resource.create(
                        Attributes.of(SERVICE_NAME, service, INSTANCE_ID, instance))))
                .registerMetricReader(server)
                .build();
        return new ServiceMetrics(provider, provider.get("io.moecluster"), "http://" + host + ":" + port + "/metrics");
    }

    /** A port free right now on {@code host}, for a metrics endpoint chosen at start. */
    public static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free port for metrics", e);
        }
    }

    public Meter meter() {
        return meter;
    }

    /** The scrape URL, or null when metrics are off. */
    public String endpoint() {
        return endpoint;
    }

    @Override
    public void close() {
        if (provider != null) {
            provider.close();
        }
    }
}
