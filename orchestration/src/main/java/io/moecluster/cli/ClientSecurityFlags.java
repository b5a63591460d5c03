package io.moecluster.cli;

import io.moecluster.service.security.ClientSecurity;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * How a client command reaches a secured cluster: TLS (checked against a CA file or the system's
 * trust store), a client certificate (mutual TLS; a certificate of the cluster CA carries the
 * operator role) and a bearer token. Shared by generate, chat, status, loadgen, scale, drain and
 * autoscale.
 */
final class ClientSecurityFlags {
    @Option(names = "--tls", description = "Use TLS, checking the server against the system's trust store "
            + "(implied by --tls-ca and --tls-cert).")
    boolean tls;

    @Option(names = "--tls-ca", paramLabel = "FILE", description = "Use TLS, checking the server against these CA "
            + "certificates (PEM), e.g. the cluster's CA.")
    Path ca;

    @Option(names = "--tls-cert", paramLabel = "FILE", description = "A client certificate (PEM) for mutual TLS; one "
            + "the cluster CA signed has the operator role.")
    Path cert;

    @Option(names = "--tls-key", paramLabel = "FILE", description = "The private key of --tls-cert (PKCS #8 PEM).")
    Path key;

    @Option(names = "--tls-server-name", paramLabel = "NAME", description = "The name the server's certificate must "
            + "carry, when the address does not (e.g. an IP address).")
    String serverName;

    @Option(names = "--token", paramLabel = "TOKEN", defaultValue = "${env:MOE_API_TOKEN}",
            description = "A bearer token of the API (--api-tokens on the router); default: $MOE_API_TOKEN.")
    String token;

    @Option(names = "--token-file", paramLabel = "FILE", description = "Read the bearer token from this file's first line.")
    Path tokenFile;

    ClientSecurity security() {
        String t = tokenFile != null ? ClientSecurity.readToken(tokenFile) : token;
        return new ClientSecurity(tls, ca, cert, key, t, serverName);
    }
}
