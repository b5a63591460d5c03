package io.moecluster.cli;

import io.moecluster.router.discovery.ServiceRegistry;

/** The service registries {@code moe serve --discovery} can name. */
final class Registries {
    private Registries() {
    }

    static ServiceRegistry consul(String address) {
        throw new IllegalArgumentException("--discovery consul is not available in this build");
    }
}
