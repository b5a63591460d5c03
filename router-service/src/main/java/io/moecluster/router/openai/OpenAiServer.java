package io.moecluster.router.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moecluster.router.GenerationCall;
import io.moecluster.router.GenerationService;
import io.moecluster.router.chat.ChatTemplate;
import io.moecluster.service.security.Principal;
import io.moecluster.service.security.Role;
import io.moecluster.service.security.ServiceSecurity;
import io.moecluster.service.security.ServiceTls;
import io.moecluster.telemetry.HttpServerSpan;
import io.moecluster.telemetry.ServiceTracing;
import io.opentelemetry.context.Scope;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.file.FileSystemOptions;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.KeyCertOptions;
import io.vertx.core.net.TrustOptions;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.security.cert.Certificate;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import javax.net.ssl.SSLPeerUnverifiedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The router's OpenAI-compatible HTTP API, on its own port beside the gRPC API:
 * {@code POST /v1/chat/completions}, {@code POST /v1/completions} (both streaming as server-sent
 * events), {@code GET /v1/models}, {@code GET /health} and {@code GET /metrics} (the router's
 * Prometheus text, as its metrics endpoint serves it).
 *
 * <p>Vert.x (Netty underneath, not gRPC's shaded copy): an event loop per connection streams SSE
 * without a thread per request, and a closed connection is seen at once, which cancels the
 * request. Requests go through the same {@link GenerationService} as gRPC, so admission,
 * metrics and stop sequences are shared; each has a server span (its parent the client's
 * {@code traceparent}) that is current around the attention call. Parsing, the chat template and
 * tokenization run on a worker thread, not the event loop.
 */
public final class OpenAiServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(OpenAiServer.class);
    /** The largest request body (a long conversation), as vLLM's default is unbounded and OpenAI's is a few MB. */
    static final long MAX_BODY_BYTES = 8L << 20;

    /**
     * @param bind the address to listen on
     * @param port the port (0 picks a free one)
     * @param modelName the served model's name: {@code /v1/models} lists it, requests may name it
     * @param metricsEndpoint the router's Prometheus URL, or null without metrics
     */
    public record Config(String bind, int port, String modelName, String metricsEndpoint) {
    }

    private final Vertx vertx;
    private final HttpServer server;
    private final String host;
    private final boolean tls;

    private OpenAiServer(Vertx vertx, HttpServer server, String host, boolean tls) {
        this.vertx = vertx;
        this.server = server;
        this.host = host;
        this.tls = tls;
    }

    /**
     * Starts listening; fails naming the address if it cannot.
     *
     * @param ready whether the router serves (what {@code GET /health} answers)
     */
    public static OpenAiServer start(Config config, GenerationService generation, ChatTemplate template,
                                     ServiceTracing tracing, BooleanSupplier ready) {
        return start(config, generation, template, tracing, ready, ServiceSecurity.none());
    }

    /**
     * As above, secured by the router's {@link ServiceSecurity}: HTTPS with its certificate (client
     * certificates requested and checked against the cluster CA when it has one), the completions
     * and models routes for users, {@code /metrics} for operators, {@code /health} open. A refused
     * request gets OpenAI's error object: 401 {@code invalid_api_key}, or 403 for a role too low.
     */
    public static OpenAiServer start(Config config, GenerationService generation, ChatTemplate template,
                                     ServiceTracing tracing, BooleanSupplier ready, ServiceSecurity security) {
        Vertx vertx = Vertx.vertx(new VertxOptions()
                .setEventLoopPoolSize(2)
                .setWorkerPoolSize(4)
                .setUseDaemonThread(true)
                // Nothing is served from files: no cache directory, no class-path file resolution.
                .setFileSystemOptions(new FileSystemOptions().setFileCachingEnabled(false)
                        .setClassPathResolvingEnabled(false)));
        try {
            Routes routes = new Routes(vertx, config, generation, template, tracing, ready, security);
            HttpServerOptions options = new HttpServerOptions().setHost(config.bind()).setPort(config.port())
                    .setCompressionSupported(false);
            ServiceTls tls = security.tls();
            if (tls != null) {
                // The managers re-read the files when they change: new connections get the new certificate.
                options.setSsl(true).setKeyCertOptions(KeyCertOptions.wrap(tls.keyManager()));
                if (tls.verifiesClients()) {
                    options.setTrustOptions(TrustOptions.wrap(tls.clientCertificateTrust())).setClientAuth(ClientAuth.REQUEST);
                }
            }
            HttpServer server = vertx.createHttpServer(options)
                    .requestHandler(routes.router)
                    .listen().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
            return new OpenAiServer(vertx, server, config.bind(), tls != null);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            vertx.close();
            throw new IllegalStateException("interrupted while starting the HTTP server", e);
        } catch (ExecutionException | TimeoutException e) {
            vertx.close();
            Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
            throw new UncheckedIOException("cannot listen on " + config.bind() + ":" + config.port()
                    + " (--http-port): " + cause.getMessage(),
                    cause instanceof IOException io ? io : new IOException(cause));
        }
    }

    public int port() {
        return server.actualPort();
    }

    /** The API's base URL, e.g. {@code http://127.0.0.1:8000/v1} ({@code https} with TLS). */
    public String url() {
        return (tls ? "https://" : "http://") + host + ":" + port() + "/v1";
    }

    /** Stops listening and closes open connections (their requests are cancelled). */
    @Override
    public void close() {
        try {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            LOG.warn("closing the HTTP server: {}", e.toString());
        }
    }

    static ObjectNode errorBody(ApiException e) {
        ObjectNode body = OpenAiRequest.object();
        ObjectNode error = body.putObject("error");
        error.put("message", e.getMessage()).put("type", e.type);
        if (e.param == null) {
            error.putNull("param");
        } else {
            error.put("param", e.param);
        }
        if (e.code == null) {
            error.putNull("code");
        } else {
            error.put("code", e.code);
        }
        return body;
    }

    static void sendError(HttpServerResponse response, ApiException e) {
        if (response.ended() || response.closed()) {
            return;
        }
        response.setStatusCode(e.status).putHeader("content-type", "application/json")
                .end(OpenAiResponder.write(errorBody(e)));
    }

    /** The routes and what they share. */
    private static final class Routes {
        final Router router;
        private final Vertx vertx;
        private final Config config;
        private final GenerationService generation;
        private final ChatTemplate template;
        private final ServiceTracing tracing;
        private final BooleanSupplier ready;
        private final TokenTexts texts;
        private final long created = System.currentTimeMillis() / 1000;
        private final HttpClient metricsClient;
        private final ServiceSecurity security;

        Routes(Vertx vertx, Config config, GenerationService generation, ChatTemplate template, ServiceTracing tracing,
               BooleanSupplier ready, ServiceSecurity security) {
            this.security = security;
            this.vertx = vertx;
            this.config = config;
            this.generation = generation;
            this.template = template;
            this.tracing = tracing;
            this.ready = ready;
            this.texts = new TokenTexts(generation.tokenizer());
            this.metricsClient = config.metricsEndpoint() == null ? null : vertx.createHttpClient();
            router = Router.router(vertx);
            // Callers first: nothing of a refused request is read or run.
            router.route("/v1/*").handler(rc -> authorize(rc, Role.USER));
            router.route("/metrics").handler(rc -> authorize(rc, Role.OPERATOR));
            BodyHandler body = BodyHandler.create(false).setBodyLimit(MAX_BODY_BYTES);
            router.post("/v1/chat/completions").handler(body).handler(rc -> generate(rc, true));
            router.post("/v1/completions").handler(body).handler(rc -> generate(rc, false));
            router.get("/v1/models").handler(this::models);
            router.get("/v1/models/:model").handler(this::model);
            router.get("/health").handler(this::health);
            router.get("/metrics").handler(this::metrics);
            router.errorHandler(404, rc -> sendError(rc.response(), new ApiException(404, "invalid_request_error",
                    null, "not_found", "no route " + rc.request().method() + " " + rc.request().path())));
            router.errorHandler(405, rc -> sendError(rc.response(), new ApiException(405, "invalid_request_error",
                    null, "method_not_allowed", rc.request().method() + " is not allowed on " + rc.request().path())));
            router.errorHandler(413, rc -> sendError(rc.response(), ApiException.invalid(null,
                    "the request body is larger than " + MAX_BODY_BYTES + " bytes")));
            router.errorHandler(500, rc -> {
                LOG.warn("HTTP {} {} failed", rc.request().method(), rc.request().path(), rc.failure());
                sendError(rc.response(), new ApiException(500, "server_error", null, null,
                        "internal error: " + rc.failure()));
            });
        }

        /** Passes the request on when its caller may use the route, else answers 401 or 403. */
        private void authorize(RoutingContext rc, Role wanted) {
            Role required = security.required(wanted);
            if (required == null) {
                rc.next();
                return;
            }
            Certificate[] peer = null;
            if (rc.request().isSSL()) {
                try {
                    peer = rc.request().connection().peerCertificates().toArray(Certificate[]::new);
                } catch (SSLPeerUnverifiedException none) {
                    peer = null;
                }
            }
            Principal caller = security.authenticate(rc.request().getHeader(ServiceSecurity.AUTHORIZATION), peer);
            String refusal = ServiceSecurity.refusal(caller, required, rc.request().path());
            if (refusal == null) {
                rc.next();
            } else if (refusal.startsWith("unauthenticated")) {
                rc.response().putHeader("www-authenticate", "Bearer");
                sendError(rc.response(), new ApiException(401, "invalid_request_error", null, "invalid_api_key", refusal));
            } else {
                sendError(rc.response(), new ApiException(403, "invalid_request_error", null, "permission_denied", refusal));
            }
        }

        private void generate(RoutingContext rc, boolean chat) {
            String route = chat ? "/v1/chat/completions" : "/v1/completions";
            HttpServerSpan span = HttpServerSpan.start(tracing, "POST", route, rc.request().path(),
                    name -> rc.request().getHeader(name));
            HttpServerResponse response = rc.response();
            Context context = Vertx.currentContext();
            AtomicReference<GenerationCall> call = new AtomicReference<>();
            AtomicBoolean gone = new AtomicBoolean();
            // The client went away: stop generating and give the admission slot back. (An HTTP/2
            // stream, h2c included, also "closes" when its response ends: that is no leaving.)
            response.closeHandler(v -> {
                if (response.ended()) {
                    return;
                }
                gone.set(true);
                GenerationCall c = call.get();
                if (c != null) {
                    c.cancel();
                }
                span.end(499, null);
            });
            byte[] bytes = rc.body().buffer() == null ? null : rc.body().buffer().getBytes();
            vertx.executeBlocking(() -> {
                JsonNode json = OpenAiRequest.parseBody(bytes);
                OpenAiRequest.checkModel(json, config.modelName());
                return chat
                        ? OpenAiRequest.chat(json, generation.validator(), generation.tokenizer(), template)
                        : OpenAiRequest.completion(json, generation.validator(), generation.tokenizer());
            }, false).onComplete(ar -> {
                if (ar.failed()) {
                    ApiException e = ar.cause() instanceof ApiException api ? api
                            : new ApiException(500, "server_error", null, null, "internal error: " + ar.cause());
                    if (!(ar.cause() instanceof ApiException)) {
                        LOG.warn("{} failed", route, ar.cause());
                    }
                    sendError(response, e);
                    span.end(e.status, e.getMessage());
                    return;
                }
                if (gone.get()) {
                    return;
                }
                OpenAiRequest request = ar.result();
                OpenAiResponder responder = new OpenAiResponder(response, context, request, texts, span,
                        config.modelName());
                try (Scope ignored = span.context().makeCurrent()) {
                    call.set(generation.start(request.prepared, responder));
                }
                if (gone.get()) {
                    call.get().cancel();
                }
            });
        }

        private ObjectNode modelCard() {
            ObjectNode m = OpenAiRequest.object();
            m.put("id", config.modelName()).put("object", "model").put("created", created).put("owned_by", "moe-cluster")
                    .put("root", config.modelName()).put("max_model_len", generation.validator().maxSequenceLength());
            return m;
        }

        private void models(RoutingContext rc) {
            ObjectNode list = OpenAiRequest.object().put("object", "list");
            list.putArray("data").add(modelCard());
            rc.response().putHeader("content-type", "application/json").end(OpenAiResponder.write(list));
        }

        private void model(RoutingContext rc) {
            if (!rc.pathParam("model").equals(config.modelName())) {
                sendError(rc.response(), new ApiException(404, "invalid_request_error", "model", "model_not_found",
                        "The model `" + rc.pathParam("model") + "` does not exist"));
                return;
            }
            rc.response().putHeader("content-type", "application/json").end(OpenAiResponder.write(modelCard()));
        }

        private void health(RoutingContext rc) {
            boolean ok = ready.getAsBoolean();
            rc.response().setStatusCode(ok ? 200 : 503).putHeader("content-type", "application/json")
                    .end(ok ? "{\"status\":\"ok\"}" : "{\"status\":\"starting or stopping\"}");
        }

        /** The router's Prometheus text, fetched from its metrics endpoint and passed on unchanged. */
        private void metrics(RoutingContext rc) {
            if (metricsClient == null) {
                sendError(rc.response(), new ApiException(404, "invalid_request_error", null, "not_found",
                        "metrics are off; start the router with --metrics-port"));
                return;
            }
            URI uri = URI.create(config.metricsEndpoint());
            // Bounded: a metrics endpoint that does not answer is a 503 after 10 s, not a hung request.
            metricsClient.request(new RequestOptions().setMethod(HttpMethod.GET).setHost(uri.getHost())
                            .setPort(uri.getPort()).setURI(uri.getRawPath()).setConnectTimeout(2_000).setIdleTimeout(10_000))
                    .compose(req -> req.send().compose(res -> res.body().map(b -> {
                        rc.response().setStatusCode(res.statusCode());
                        String type = res.getHeader("content-type");
                        if (type != null) {
                            rc.response().putHeader("content-type", type);
                        }
                        return b;
                    })))
                    .onSuccess(b -> rc.response().end(b))
                    .onFailure(e -> sendError(rc.response(), new ApiException(503, "server_error", null,
                            "service_unavailable", "metrics endpoint " + config.metricsEndpoint() + ": " + e.getMessage())));
        }
    }
}
