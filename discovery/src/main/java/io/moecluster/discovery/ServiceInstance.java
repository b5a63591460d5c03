package io.moecluster.discovery;

import java.util.Map;
import java.util.Objects;

/**
 * One running service as a registry sees it.
 *
 * @param id unique per instance (a Consul service id, a pod name)
 * @param host the address other services reach it at
 * @param port its gRPC port; 0 for a service without one
 * @param meta role-specific facts, e.g. an expert service's experts, layers and Aeron endpoint
 *     ({@link ExpertMetadata}); keys match {@code [A-Za-z0-9_-]+} as Consul requires
 */
public record ServiceInstance(String id, ServiceRole role, String host, int port, Map<String, String> meta) {
    public ServiceInstance {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(host, "host");
        meta = Map.copyOf(meta);
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("service " + id + ": port " + port + " is outside 0-65535");
        }
    }
}
