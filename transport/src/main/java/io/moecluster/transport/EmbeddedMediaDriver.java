package io.moecluster.transport;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.aeron.Aeron;
import io.aeron.driver.MediaDriver;
import io.aeron.driver.ThreadingMode;
import org.agrona.CloseHelper;
import org.agrona.concurrent.IdleStrategy;

/**
 * An Aeron media driver inside this JVM, in a directory of its own, with one shared agent thread
 * (conductor, sender and receiver) so that it costs one thread, idling politely by default.
 * Clients made with {@link #connect()} are closed with the driver.
 */
public final class EmbeddedMediaDriver implements AutoCloseable {
    /** Aeron's hard cap on one message, whatever the term length. */
    public static final int AERON_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
    public static final int DEFAULT_IPC_TERM_LENGTH = 64 * 1024 * 1024;
    public static final int DEFAULT_UDP_TERM_LENGTH = 64 * 1024 * 1024;
    private static final int MIN_TERM_LENGTH = 64 * 1024;
    private static final int MAX_TERM_LENGTH = 1024 * 1024 * 1024;

    private final Path dir;
    private final int ipcTermLength;
    private final int udpTermLength;
    private final MediaDriver driver;
    private final List<Aeron> clients = new ArrayList<>();

    /** Defaults: backoff idling, 64 MiB IPC and UDP terms (8 MiB largest message). */
    public EmbeddedMediaDriver(Path dir) {
        this(dir, IdleStrategies.backoff(), DEFAULT_IPC_TERM_LENGTH, DEFAULT_UDP_TERM_LENGTH);
    }

    /** How long a client may go without a keepalive before the driver releases its resources. */
    public static final long CLIENT_LIVENESS_TIMEOUT_NANOS = 5_000_000_000L;

    /**
     * @param sharedIdle    idle strategy of the driver's single agent thread
     * @param ipcTermLength term length of IPC publications, a power of two in [64 KiB, 1 GiB]
     * @param udpTermLength term length of UDP publications, a power of two in [64 KiB, 1 GiB]
     */
    public EmbeddedMediaDriver(Path dir, IdleStrategy sharedIdle, int ipcTermLength, int udpTermLength) {
        this.dir = dir;
        this.ipcTermLength = checkTermLength("ipcTermLength", ipcTermLength);
        this.udpTermLength = checkTermLength("udpTermLength", udpTermLength);
        MediaDriver.Context ctx = new MediaDriver.Context()
                .aeronDirectoryName(dir.toString())
                .threadingMode(ThreadingMode.SHARED)
                .sharedIdleStrategy(sharedIdle)
                .dirDeleteOnStart(true)
                .dirDeleteOnShutdown(true)
                .ipcTermBufferLength(ipcTermLength)
                .publicationTermBufferLength(udpTermLength)
                // Big terms are mostly unused on a test or small machine: let the OS back pages lazily.
                .termBufferSparseFile(true)
                // A killed service's subscriptions go (and publications to it report not connected)
                // after this; Aeron's 10 s default would keep routers sending to a dead replica
                // twice as long. Clients send keepalives every 500 ms, so only a 5 s stall of a
                // whole JVM (GC) would time a live one out.
                .clientLivenessTimeoutNs(CLIENT_LIVENESS_TIMEOUT_NANOS);
        this.driver = MediaDriver.launch(ctx);
    }

    /** A fresh unique directory under /dev/shm when it exists (memory-backed), else under java.io.tmpdir. */
    public static Path newTempDir() {
        Path shm = Path.of("/dev/shm");
        Path base = Files.isDirectory(shm) && Files.isWritable(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir"));
        try {
            return Files.createTempDirectory(base, "moe-aeron-");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create an Aeron directory under " + base, e);
        }
    }

    /** A client of this driver; closed with it. */
    public synchronized Aeron connect() {
        Aeron aeron = Aeron.connect(new Aeron.Context().aeronDirectoryName(driver.aeronDirectoryName()));
        clients.add(aeron);
        return aeron;
    }

    public String aeronDirectoryName() {
        return driver.aeronDirectoryName();
    }

    public Path dir() {
        return dir;
    }

    public int ipcTermLength() {
        return ipcTermLength;
    }

    public int udpTermLength() {
        return udpTermLength;
    }

    /** The largest message every channel of this driver takes: min(term / 8, 16 MiB) over the IPC and UDP terms. */
    public int maxMessageBytes() {
        return Math.min(maxMessageBytes(ipcTermLength), maxMessageBytes(udpTermLength));
    }

    /** Aeron's rule: one message fills at most an eighth of a term, and never more than 16 MiB. */
    public static int maxMessageBytes(int termLength) {
        return Math.min(termLength / 8, AERON_MAX_MESSAGE_BYTES);
    }

    @Override
    public synchronized void close() {
        for (int i = clients.size() - 1; i >= 0; i--) {
            CloseHelper.quietClose(clients.get(i));
        }
        clients.clear();
        CloseHelper.close(driver);
        // The driver deletes its files on shutdown but can leave the (now empty) directory behind.
        try {
            Files.deleteIfExists(Path.of(driver.aeronDirectoryName()));
        } catch (IOException notEmpty) {
            // Something else wrote there; leave it for its owner.
        }
    }

    private static int checkTermLength(String name, int length) {
        if (Integer.bitCount(length) != 1 || length < MIN_TERM_LENGTH || length > MAX_TERM_LENGTH) {
            throw new IllegalArgumentException(name + " must be a power of two in [" + MIN_TERM_LENGTH + ", "
                    + MAX_TERM_LENGTH + "], got " + length);
        }
        return length;
    }
}
