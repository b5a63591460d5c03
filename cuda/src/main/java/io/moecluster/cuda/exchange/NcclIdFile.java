package io.moecluster.cuda.exchange;

import io.moecluster.cuda.bindings.NcclUniqueId;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;

/**
 * The communicator's unique id handed out through a file beside the cluster file (the local and
 * shared-file-system case; in Consul deployments the same 256 hex digits go in a KV entry): rank 0
 * makes the id and publishes it atomically, the other ranks wait for the file and read it.
 */
public final class NcclIdFile {
    private NcclIdFile() {
    }

    /** The file for {@code clusterFile}: {@code <cluster file>.nccl-id}. */
    public static Path beside(Path clusterFile) {
        return clusterFile.resolveSibling(clusterFile.getFileName() + ".nccl-id");
    }

    /** Writes {@code id} as hex, replacing the file atomically so a reader never sees half of it. */
    public static void publish(Path file, NcclUniqueId id) {
        try {
            Path tmp = Files.createTempFile(file.toAbsolutePath().getParent(), file.getFileName().toString(), ".tmp");
            Files.writeString(tmp, id.toHex() + "\n");
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot publish the NCCL unique id to " + file, e);
        }
    }

    /** Waits up to {@code timeout} for the file, then reads it; a malformed file fails naming it. */
    public static NcclUniqueId await(Path file, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            try {
                return NcclUniqueId.fromHex(Files.readString(file));
            } catch (NoSuchFileException e) {
                if (System.nanoTime() - deadline > 0) {
                    throw new IllegalStateException("no NCCL unique id at " + file + " after " + timeout.toMillis()
                            + " ms: has rank 0 started?");
                }
                Thread.sleep(50);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read the NCCL unique id from " + file, e);
            } catch (IllegalArgumentException e) {
                throw new IllegalStateException(file + ": " + e.getMessage(), e);
            }
        }
    }
}
