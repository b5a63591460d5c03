package io.moecluster.service.security;

/**
 * An authenticated caller.
 *
 * @param name the token's name in the tokens file, or the client certificate's subject
 * @param role what it may do
 * @param via how it authenticated: {@code token} or {@code certificate}
 */
public record Principal(String name, Role role, String via) {
}
