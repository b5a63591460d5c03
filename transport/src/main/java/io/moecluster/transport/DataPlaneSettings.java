package io.moecluster.transport;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;

/**
 * The data-plane settings every context of this project shares (as Aeron's contexts share
 * {@code CommonContext}): how a thread waits for messages, how long an offer may wait for
 * back-pressure or a connection, and the cluster secret that signs and checks every message. Subclasses add their own settings and checks; {@link #conclude()}
 * fills the defaults, checks everything once, and returns the context.
 *
 * @param <C> the concrete context, returned by every setter for chaining
 */
public abstract class DataPlaneSettings<C extends DataPlaneSettings<C>> {
    private String idleStrategy;
    private Duration publicationDeadline = BoundedPublisher.DEFAULT_DEADLINE;
    private Path dataPlaneSecretFile;
    private DataPlaneAuth dataPlaneAuth;
    private boolean concluded;

    @SuppressWarnings("unchecked")
    protected final C self() {
        return (C) this;
    }

    /** How a thread waits for messages ({@link IdleStrategies#parse}); default {@code $MOE_IDLE}, else backoff. */
    public C idleStrategy(String idleStrategy) {
        this.idleStrategy = idleStrategy;
        return self();
    }

    public String idleStrategy() {
        return idleStrategy;
    }

    /** How long an offer may wait for back-pressure or a connection; default 2 s. */
    public C publicationDeadline(Duration publicationDeadline) {
        this.publicationDeadline = publicationDeadline;
        return self();
    }

    public Duration publicationDeadline() {
        return publicationDeadline;
    }

    /**
     * The file holding the cluster's data-plane secret ({@code --data-plane-secret-file}; one
     * secret per line, the first signs). Default: {@code $MOE_DATA_PLANE_SECRET_FILE}, else
     * {@code $MOE_DATA_PLANE_SECRET}, else none: messages unsigned, signed ones refused.
     */
    public C dataPlaneSecretFile(Path file) {
        this.dataPlaneSecretFile = file;
        return self();
    }

    public Path dataPlaneSecretFile() {
        return dataPlaneSecretFile;
    }

    /**
     * The data-plane authentication itself, e.g. a service's, shared with the contexts of its
     * parts so that they count failures together; wins over {@link #dataPlaneSecretFile(Path)}.
     */
    public C dataPlaneAuth(DataPlaneAuth auth) {
        this.dataPlaneAuth = auth;
        return self();
    }

    /** The data-plane authentication; set by {@link #conclude()} at the latest. */
    public DataPlaneAuth dataPlaneAuth() {
        return dataPlaneAuth;
    }

    /** Fills the defaults and checks every value, once; errors name the flag where there is one. */
    public final C conclude() {
        if (!concluded) {
            Objects.requireNonNull(publicationDeadline, "publication deadline");
            if (publicationDeadline.isNegative() || publicationDeadline.isZero()) {
                throw new IllegalArgumentException("publication deadline must be positive, got " + publicationDeadline);
            }
            if (idleStrategy == null) {
                idleStrategy = System.getenv(IdleStrategies.ENV);
            }
            IdleStrategies.parse(idleStrategy);
            if (dataPlaneAuth == null) {
                dataPlaneAuth = dataPlaneSecretFile != null ? loadSecret(dataPlaneSecretFile)
                        : DataPlaneAuth.fromEnvironment();
            }
            concludeSettings();
            concluded = true;
        }
        return self();
    }

    private static DataPlaneAuth loadSecret(Path file) {
        try {
            return DataPlaneAuth.fromFile(file);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("--data-plane-secret-file: " + e.getMessage(), e);
        }
    }

    /** The subclass's own defaults and checks. */
    protected abstract void concludeSettings();

    /** Fails naming {@code flag} unless {@code value >= min}. */
    protected static void requireAtLeast(String flag, long value, long min) {
        if (value < min) {
            throw new IllegalArgumentException(flag + " must be >= " + min + ", got " + value);
        }
    }

    /** Fails naming {@code flag} unless the duration is at least 1 ms. */
    protected static void requirePositiveMillis(String flag, Duration value) {
        Objects.requireNonNull(value, flag);
        requireAtLeast(flag, value.toMillis(), 1);
    }
}
