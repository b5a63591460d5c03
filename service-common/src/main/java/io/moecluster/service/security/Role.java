package io.moecluster.service.security;

/**
 * What a caller may do. {@link #USER}: the public Inference API (and the OpenAI-compatible HTTP
 * API). {@link #OPERATOR}: that, and the Admin API, the router's {@code /metrics}, and the
 * internal attention API. Ordered: a role includes those before it.
 */
public enum Role {
    USER,
    OPERATOR;

    /** Whether this role may do what {@code needed} allows. */
    public boolean covers(Role needed) {
        return compareTo(needed) >= 0;
    }

    /** The role named in a tokens file ({@code user} or {@code operator}). */
    public static Role parse(String name) {
        return switch (name) {
            case "user" -> USER;
            case "operator" -> OPERATOR;
            default -> throw new IllegalArgumentException("role '" + name + "' is not user or operator");
        };
    }
}
