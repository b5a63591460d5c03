package io.moecluster.discovery;

/** The three kinds of service a cluster runs, with the service name each registers under. */
public enum ServiceRole {
    ROUTER("moe-router"),
    ATTENTION("moe-attention"),
    EXPERT("moe-expert");

    private final String serviceName;

    ServiceRole(String serviceName) {
        this.serviceName = serviceName;
    }

    /** The name in the registry (Consul service name, Kubernetes Service name). */
    public String serviceName() {
        return serviceName;
    }
}
