package io.moecluster.service.security;

import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ServerCredentials;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How one service authenticates: TLS on its ports (with client certificates checked against the
 * cluster CA where one is configured), bearer tokens on the public API, and who may call what.
 *
 * <ul>
 *   <li>A client certificate that chains to the cluster CA ({@code --tls-ca}) authenticates its
 *       holder as an {@link Role#OPERATOR}: the cluster's own services (the router calling
 *       attention) and operators' tools.</li>
 *   <li>A bearer token from the tokens file ({@code --api-tokens}) authenticates its holder with
 *       the token's role.</li>
 * </ul>
 *
 * What is enforced follows what is configured: with tokens, the public API needs a
 * {@link Role#USER} at least; with tokens or a CA, the Admin API, the router's {@code /metrics}
 * and the internal attention API need an {@link Role#OPERATOR}; with neither, everything is open
 * (as before; logged at start). Health checks are always open (probes).
 */
public final class ServiceSecurity implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ServiceSecurity.class);
    /** The HTTP and gRPC header carrying {@code Bearer TOKEN}. */
    public static final String AUTHORIZATION = "authorization";

    private final ServiceTls tls;
    private final ApiTokens tokens;

    private ServiceSecurity(ServiceTls tls, ApiTokens tokens) {
        this.tls = tls;
        this.tokens = tokens;
    }

    /** Nothing: plaintext ports, every call allowed. */
    public static ServiceSecurity none() {
        return new ServiceSecurity(null, null);
    }

    /** From a service's settings; either may be null. Reads the files (failing naming them). */
    public static ServiceSecurity of(TlsSettings tls, ApiTokens tokens) {
        return new ServiceSecurity(tls == null ? null : ServiceTls.load(tls), tokens);
    }

    /** The TLS material, or null without TLS. */
    public ServiceTls tls() {
        return tls;
    }

    public ApiTokens tokens() {
        return tokens;
    }

    /** Whether callers are checked at all (tokens, or client certificates against a CA). */
    public boolean enforcing() {
        return tokens != null || (tls != null && tls.verifiesClients());
    }

    /**
     * The role a call needs, from the role its kind of service asks for: USER (public API) only
     * when tokens are configured; OPERATOR whenever anything is enforced; null = open.
     */
    public Role required(Role wanted) {
        if (wanted == null || !enforcing()) {
            return null;
        }
        if (wanted == Role.USER && tokens == null) {
            return null;
        }
        return wanted;
    }

    /** Credentials of a gRPC server: TLS (client certificates {@code required} or optional) or plaintext. */
    public ServerCredentials serverCredentials(boolean clientCertificateRequired) {
        return tls == null ? InsecureServerCredentials.create() : tls.serverCredentials(clientCertificateRequired);
    }

    /** Credentials of this service's calls to another: TLS with its own certificate, or plaintext. */
    public ChannelCredentials channelCredentials() {
        return tls == null ? InsecureChannelCredentials.create() : tls.channelCredentials();
    }

    /**
     * Who is calling: the client certificate's holder (an operator) when its chain verifies
     * against the CA (checked here again: where client certificates are optional, a TLS stack may
     * complete the handshake with one it did not trust), else the bearer token's, else null.
     */
    public Principal authenticate(String authorization, Certificate[] peerCertificates) {
        if (tls != null && tls.verifiesClients() && peerCertificates != null && peerCertificates.length > 0
                && peerCertificates[0] instanceof X509Certificate x && tls.trustsClient(peerCertificates)) {
            return new Principal(x.getSubjectX500Principal().getName(), Role.OPERATOR, "certificate");
        }
        if (tokens != null && authorization != null) {
            String a = authorization.strip();
            if (a.regionMatches(true, 0, "Bearer ", 0, 7)) {
                return tokens.lookup(a.substring(7).strip());
            }
        }
        return null;
    }

    /**
     * Null when {@code caller} may do what {@code required} allows, else why not, starting with
     * {@code unauthenticated} (no or an unknown credential) or {@code denied} (a role too low).
     */
    public static String refusal(Principal caller, Role required, String what) {
        if (required == null) {
            return null;
        }
        if (caller == null) {
            return "unauthenticated: " + what + " needs a bearer token or a client certificate of the cluster"
                    + (required == Role.OPERATOR ? " (operator role)" : "");
        }
        if (!caller.role().covers(required)) {
            return "denied: " + what + " needs the " + required.name().toLowerCase(Locale.ROOT) + " role; "
                    + caller.name() + " has " + caller.role().name().toLowerCase(Locale.ROOT);
        }
        return null;
    }

    /** Logs, once at start, what this service enforces and what it leaves open. */
    public void logSummary(String service) {
        if (tls == null) {
            LOG.warn("{}: no TLS (--tls-cert/--tls-key): its ports are plaintext{}", service,
                    tokens != null ? ", and bearer tokens cross the network in clear" : "");
        } else {
            LOG.info("{}: TLS with {}{}", service, tls.settings().cert(), tls.verifiesClients()
                    ? "; client certificates checked against " + tls.settings().ca() : "; no --tls-ca: no mutual TLS");
        }
        if (!enforcing()) {
            LOG.warn("{}: callers are not authenticated (no --api-tokens, no --tls-ca): every API is open", service);
        } else if (tokens != null) {
            LOG.info("{}: {} API tokens from {}", service, tokens.size(), tokens.file());
        }
    }

    @Override
    public void close() {
        if (tls != null) {
            tls.close();
        }
    }
}
