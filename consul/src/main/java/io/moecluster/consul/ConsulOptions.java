package io.moecluster.consul;

import java.net.URI;
import java.net.URISyntaxException;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * How to reach Consul and how this cluster's services use it.
 *
 * @param address the Consul HTTP API, e.g. {@code http://127.0.0.1:8500} (the agent on this host)
 * @param token the ACL token sent as {@code X-Consul-Token}; null for none
 * @param ttl the TTL of each registration's check; heartbeats pass it every {@code ttl / 3}
 * @param deregisterCriticalAfter how long a check may stay critical before Consul removes the service
 *     (what makes a crashed instance disappear); Consul itself never reaps sooner than about a minute
 * @param watchWait the {@code wait} of each blocking query of the expert watch, sent in whole seconds
 *     (rounded up; Consul caps it at 10 minutes)
 * @param retryInitial the first pause of the expert watch after a failed query; doubles per failure
 * @param retryMax the longest such pause
 * @param requestTimeout the longest a register, heartbeat or deregister call may take
 */
public record ConsulOptions(
        URI address,
        String token,
        Duration ttl,
        Duration deregisterCriticalAfter,
        Duration watchWait,
        Duration retryInitial,
        Duration retryMax,
        Duration requestTimeout) {

    public static final String ADDRESS_ENV = "CONSUL_HTTP_ADDR";
    public static final String TOKEN_ENV = "CONSUL_HTTP_TOKEN";
    /** As with the consul command: {@code true} makes an address without a scheme https. */
    public static final String SSL_ENV = "CONSUL_HTTP_SSL";
    public static final String DEFAULT_ADDRESS = "http://127.0.0.1:8500";

    public ConsulOptions {
        Objects.requireNonNull(address, "address");
        if (token != null && token.isBlank()) {
            token = null;
        }
        positive(ttl, "ttl");
        positive(deregisterCriticalAfter, "deregisterCriticalAfter");
        positive(watchWait, "watchWait");
        positive(retryInitial, "retryInitial");
        positive(retryMax, "retryMax");
        positive(requestTimeout, "requestTimeout");
        if (ttl.toMillis() < 3) {
            throw new IllegalArgumentException("Consul check ttl must be at least 3 ms, got " + ttl);
        }
        if (watchWait.compareTo(Duration.ofMinutes(10)) > 0) {
            throw new IllegalArgumentException("Consul caps a blocking query's wait at 10 minutes, got " + watchWait);
        }
        if (retryMax.compareTo(retryInitial) < 0) {
            throw new IllegalArgumentException("retryMax " + retryMax + " is shorter than retryInitial " + retryInitial);
        }
    }

    /** The defaults, with the address and token from {@code CONSUL_HTTP_ADDR} and {@code CONSUL_HTTP_TOKEN}. */
    public static ConsulOptions fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    public static ConsulOptions fromEnvironment(Map<String, String> env) {
        String addr = env.get(ADDRESS_ENV);
        boolean ssl = "true".equalsIgnoreCase(String.valueOf(env.get(SSL_ENV)).strip());
        URI address = addr == null || addr.isBlank() ? parseAddress(DEFAULT_ADDRESS, false) : parseAddress(addr, ssl);
        return new ConsulOptions(address, env.get(TOKEN_ENV), Duration.ofSeconds(10), Duration.ofMinutes(1),
                Duration.ofSeconds(30), Duration.ofSeconds(1), Duration.ofSeconds(10), Duration.ofSeconds(5));
    }

    /** The defaults at {@code address}, no token. */
    public static ConsulOptions at(String address) {
        return fromEnvironment(Map.of()).withAddress(address);
    }

    /**
     * {@code host:port}, {@code host} (port 8500) or a full {@code http://} / {@code https://} URL, as
     * {@code CONSUL_HTTP_ADDR} accepts them.
     */
    public static URI parseAddress(String address, boolean https) {
        String a = Objects.requireNonNull(address, "address").strip();
        if (a.startsWith("unix://")) {
            throw new IllegalArgumentException("Consul address " + a + ": unix sockets are not supported, use host:port");
        }
        boolean schemeGiven = a.contains("://");
        if (!schemeGiven) {
            a = (https ? "https://" : "http://") + a;
        }
        URI uri;
        try {
            uri = new URI(a);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("Consul address '" + address + "' is not host:port or a URL: "
                    + e.getMessage(), e);
        }
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https")) {
            throw new IllegalArgumentException("Consul address '" + address + "': scheme must be http or https");
        }
        if (uri.getHost() == null) {
            throw new IllegalArgumentException("Consul address '" + address + "' names no host");
        }
        // host alone means Consul's port; a URL without a port means the scheme's, as for any URL
        int port = uri.getPort() > 0 ? uri.getPort() : !schemeGiven ? 8500 : scheme.equals("https") ? 443 : 80;
        return URI.create(scheme + "://" + uri.getHost() + ":" + port);
    }

    public ConsulOptions withAddress(String address) {
        return new ConsulOptions(parseAddress(address, false), token, ttl, deregisterCriticalAfter, watchWait,
                retryInitial, retryMax, requestTimeout);
    }

    public ConsulOptions withToken(String token) {
        return new ConsulOptions(address, token, ttl, deregisterCriticalAfter, watchWait, retryInitial, retryMax,
                requestTimeout);
    }

    public ConsulOptions withTtl(Duration ttl) {
        return new ConsulOptions(address, token, ttl, deregisterCriticalAfter, watchWait, retryInitial, retryMax,
                requestTimeout);
    }

    public ConsulOptions withDeregisterCriticalAfter(Duration after) {
        return new ConsulOptions(address, token, ttl, after, watchWait, retryInitial, retryMax, requestTimeout);
    }

    public ConsulOptions withWatchWait(Duration wait) {
        return new ConsulOptions(address, token, ttl, deregisterCriticalAfter, wait, retryInitial, retryMax,
                requestTimeout);
    }

    public ConsulOptions withRetry(Duration initial, Duration max) {
        return new ConsulOptions(address, token, ttl, deregisterCriticalAfter, watchWait, initial, max, requestTimeout);
    }

    public ConsulOptions withRequestTimeout(Duration timeout) {
        return new ConsulOptions(address, token, ttl, deregisterCriticalAfter, watchWait, retryInitial, retryMax,
                timeout);
    }

    /** How often a registration passes its check. */
    public Duration heartbeatInterval() {
        return ttl.dividedBy(3);
    }

    /** The address without the token, for messages. */
    @Override
    public String toString() {
        return "ConsulOptions[address=" + address + ", token=" + (token == null ? "none" : "set") + ", ttl=" + ttl
                + ", deregisterCriticalAfter=" + deregisterCriticalAfter + ", watchWait=" + watchWait + "]";
    }

    /** A duration as Consul's Go parser reads it: whole seconds as {@code 10s}, else milliseconds. */
    static String goDuration(Duration d) {
        long ms = Math.max(1, d.toMillis());
        return ms % 1000 == 0 ? (ms / 1000) + "s" : ms + "ms";
    }

    /**
     * A blocking query's {@code wait} in whole seconds, rounded up: the client library reads only
     * seconds or minutes there when it stretches the read timeout to outlast the query.
     */
    static String waitSeconds(Duration d) {
        return Math.max(1, (d.toMillis() + 999) / 1000) + "s";
    }

    private static void positive(Duration d, String name) {
        Objects.requireNonNull(d, name);
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException(name + " must be positive, got " + d);
        }
    }
}
