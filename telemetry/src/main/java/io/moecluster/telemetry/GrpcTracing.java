package io.moecluster.telemetry;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import io.opentelemetry.context.propagation.TextMapGetter;
import io.opentelemetry.context.propagation.TextMapSetter;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * gRPC server and client interceptors that carry W3C trace context in metadata and make one span
 * per call (named {@code package.Service/Method}, with the {@code rpc.*} attributes), ended when
 * the call closes or is cancelled. With tracing off they pass calls through untouched.
 */
final class GrpcTracing {
    static final AttributeKey<String> RPC_SYSTEM = AttributeKey.stringKey("rpc.system");
    static final AttributeKey<String> RPC_SERVICE = AttributeKey.stringKey("rpc.service");
    static final AttributeKey<String> RPC_METHOD = AttributeKey.stringKey("rpc.method");
    static final AttributeKey<Long> RPC_STATUS = AttributeKey.longKey("rpc.grpc.status_code");

    private static final TextMapGetter<Metadata> GETTER = new TextMapGetter<>() {
        @Override
        public Iterable<String> keys(Metadata carrier) {
            return carrier.keys();
        }

        @Override
        public String get(Metadata carrier, String key) {
            return carrier == null ? null : carrier.get(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER));
        }
    };

    private static final TextMapSetter<Metadata> SETTER =
            (carrier, key, value) -> carrier.put(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER), value);

    private GrpcTracing() {
    }

    private static Span start(ServiceTracing tracing, MethodDescriptor<?, ?> method, SpanKind kind, Context parent) {
        return tracing.tracer().spanBuilder(method.getFullMethodName())
                .setParent(parent)
                .setSpanKind(kind)
                .setAttribute(RPC_SYSTEM, "grpc")
                .setAttribute(RPC_SERVICE, String.valueOf(method.getServiceName()))
                .setAttribute(RPC_METHOD, String.valueOf(method.getBareMethodName()))
                .startSpan();
    }

    /** Ends a call's span once, with its status. */
    private static final class Ending {
        private final Span span;
        private final AtomicBoolean ended = new AtomicBoolean();

        Ending(Span span) {
            this.span = span;
        }

        void end(Status status) {
            end(status, true);
        }

        /** @param failed whether a status other than OK is a failure (not for a cancel this side asked for) */
        void end(Status status, boolean failed) {
            if (!ended.compareAndSet(false, true)) {
                return;
            }
            span.setAttribute(RPC_STATUS, (long) status.getCode().value());
            if (failed && !status.isOk()) {
                span.setStatus(StatusCode.ERROR, status.getCode() + (status.getDescription() == null ? ""
                        : ": " + status.getDescription()));
            }
            span.end();
        }
    }

    static final class Server implements ServerInterceptor {
        private final ServiceTracing tracing;

        Server(ServiceTracing tracing) {
            this.tracing = tracing;
        }

        @Override
        public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                           ServerCallHandler<Q, R> next) {
            if (!tracing.enabled()) {
                return next.startCall(call, headers);
            }
            Context parent = tracing.propagator().extract(Context.root(), headers, GETTER);
            Span span = start(tracing, call.getMethodDescriptor(), SpanKind.SERVER, parent);
            Context context = parent.with(span);
            Ending ending = new Ending(span);
            ServerCall<Q, R> traced = new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
                @Override
                public void close(Status status, Metadata trailers) {
                    ending.end(status);
                    super.close(status, trailers);
                }
            };
            ServerCall.Listener<Q> listener;
            try (Scope ignored = context.makeCurrent()) {
                listener = next.startCall(traced, headers);
            }
            return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(listener) {
                @Override
                public void onMessage(Q message) {
                    try (Scope ignored = context.makeCurrent()) {
                        super.onMessage(message);
                    }
                }

                @Override
                public void onHalfClose() {
                    try (Scope ignored = context.makeCurrent()) {
                        super.onHalfClose();
                    }
                }

                @Override
                public void onCancel() {
                    try (Scope ignored = context.makeCurrent()) {
                        super.onCancel();
                    } finally {
                        ending.end(Status.CANCELLED);
                    }
                }

                @Override
                public void onComplete() {
                    try (Scope ignored = context.makeCurrent()) {
                        super.onComplete();
                    }
                }

                @Override
                public void onReady() {
                    try (Scope ignored = context.makeCurrent()) {
                        super.onReady();
                    }
                }
            };
        }
    }

    static final class Client implements ClientInterceptor {
        private final ServiceTracing tracing;

        Client(ServiceTracing tracing) {
            this.tracing = tracing;
        }

        @Override
        public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
            if (!tracing.enabled()) {
                return next.newCall(method, options);
            }
            Context parent = Context.current();
            if (!Span.fromContext(parent).getSpanContext().isValid()) {
                return next.newCall(method, options); // background calls (status polls) start no traces
            }
            Span span = start(tracing, method, SpanKind.CLIENT, parent);
            Context context = parent.with(span);
            Ending ending = new Ending(span);
            return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
                @Override
                public void start(Listener<R> listener, Metadata headers) {
                    tracing.propagator().inject(context, headers, SETTER);
                    super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
                        @Override
                        public void onClose(Status status, Metadata trailers) {
                            ending.end(status);
                            super.onClose(status, trailers);
                        }
                    }, headers);
                }

                @Override
                public void cancel(String message, Throwable cause) {
                    // This side ended the call (a stop sequence matched, the client left): not a failure.
                    ending.end(Status.CANCELLED.withDescription(message), false);
                    super.cancel(message, cause);
                }
            };
        }
    }
}
