package io.moecluster.service;

import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.BindableService;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import org.slf4j.LoggerFactory;

/**
 * Requests that do not parse (a malformed protobuf, invalid UTF-8 in a string field, nesting past
 * protobuf's limit) answered {@code INVALID_ARGUMENT} with the parser's reason, and logged as one
 * line at most every 10 s (with a count of those left out), instead of gRPC's
 * {@code UNKNOWN: Application error processing RPC} and a stack trace per request.
 *
 * <p>gRPC parses a request before any interceptor sees it, and a parse failure is handled as an
 * application error. So a guarded service takes its requests as raw bytes
 * ({@link ServerInterceptors#useInputStreamMessages}) and parses them inside a listener this class
 * wraps, where the failure can be told apart (its cause is an {@link InvalidProtocolBufferException})
 * and answered. Nothing else changes: the same methods, schema (reflection) and responses.
 */
public final class MalformedRequests {
    private static final RateLimitedLog LOG = new RateLimitedLog(LoggerFactory.getLogger(MalformedRequests.class),
            Duration.ofSeconds(10));

    private MalformedRequests() {
    }

    public static ServerServiceDefinition guard(BindableService service) {
        return guard(service.bindService());
    }

    /** {@code service} with every request parsed under the guard. */
    public static ServerServiceDefinition guard(ServerServiceDefinition service) {
        return ServerInterceptors.intercept(ServerInterceptors.useInputStreamMessages(service), Guard.INSTANCE);
    }

    /** The cause that makes a failure a parse failure, or null. */
    static InvalidProtocolBufferException parseFailure(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof InvalidProtocolBufferException e) {
                return e;
            }
        }
        return null;
    }

    private enum Guard implements ServerInterceptor {
        INSTANCE;

        @Override
        public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                            ServerCallHandler<Q, R> next) {
            return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(next.startCall(call, headers)) {
                private boolean rejected;

                @Override
                public void onMessage(Q message) {
                    if (rejected) {
                        return;
                    }
                    try {
                        super.onMessage(message);
                    } catch (StatusRuntimeException e) {
                        InvalidProtocolBufferException cause = parseFailure(e);
                        if (cause == null) {
                            throw e;
                        }
                        rejected = true;
                        String method = call.getMethodDescriptor().getFullMethodName();
                        LOG.log("malformed request to " + method + " from "
                                + call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR) + " answered INVALID_ARGUMENT: "
                                + cause.getMessage());
                        call.close(Status.INVALID_ARGUMENT.withDescription("the request to " + method
                                + " is not a valid message: " + cause.getMessage()), new Metadata());
                    }
                }

                @Override
                public void onHalfClose() {
                    if (!rejected) {
                        super.onHalfClose();
                    }
                }
            };
        }
    }
}
