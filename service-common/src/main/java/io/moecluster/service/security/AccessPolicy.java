package io.moecluster.service.security;

import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.security.cert.Certificate;
import java.util.Map;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * The gRPC side of {@link ServiceSecurity}: each call's service name maps to the role it wants
 * (absent: open, e.g. health and reflection); a caller without a credential gets
 * {@code UNAUTHENTICATED}, one whose role is too low {@code PERMISSION_DENIED}, before any of the
 * service's code runs.
 */
public final class AccessPolicy implements ServerInterceptor {
    private static final Metadata.Key<String> AUTHORIZATION =
            Metadata.Key.of(ServiceSecurity.AUTHORIZATION, Metadata.ASCII_STRING_MARSHALLER);

    private final ServiceSecurity security;
    private final Map<String, Role> wanted;

    /** @param wanted by gRPC service name (e.g. {@code moe.v1.Admin}), the role it asks for */
    public AccessPolicy(ServiceSecurity security, Map<String, Role> wanted) {
        this.security = security;
        this.wanted = Map.copyOf(wanted);
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                       ServerCallHandler<Q, R> next) {
        String service = call.getMethodDescriptor().getServiceName();
        Role required = security.required(service == null ? null : wanted.get(service));
        if (required == null) {
            return next.startCall(call, headers);
        }
        Principal caller = security.authenticate(headers.get(AUTHORIZATION), peerCertificates(call));
        String refusal = ServiceSecurity.refusal(caller, required, service);
        if (refusal == null) {
            return next.startCall(call, headers);
        }
        Status status = refusal.startsWith("unauthenticated") ? Status.UNAUTHENTICATED : Status.PERMISSION_DENIED;
        call.close(status.withDescription(refusal), new Metadata());
        return new ServerCall.Listener<>() {
        };
    }

    private static Certificate[] peerCertificates(ServerCall<?, ?> call) {
        SSLSession session = call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION);
        if (session == null) {
            return null;
        }
        try {
            return session.getPeerCertificates();
        } catch (SSLPeerUnverifiedException none) {
            return null;
        }
    }
}
