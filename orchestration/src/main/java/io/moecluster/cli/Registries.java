package io.moecluster.cli;

import io.moecluster.consul.ConsulOptions;
import io.moecluster.consul.ConsulRegistry;
import io.moecluster.discovery.ServiceRegistry;

/** The service registries {@code moe serve --discovery} can name. */
final class Registries {
    private Registries() {
    }

    /** Consul at {@code address}; token, TLS and timings from the standard CONSUL_* environment. */
    static ServiceRegistry consul(String address) {
        return new ConsulRegistry(ConsulOptions.fromEnvironment().withAddress(address));
    }
}
