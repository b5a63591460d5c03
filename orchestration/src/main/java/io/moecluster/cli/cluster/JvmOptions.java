package io.moecluster.cli.cluster;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The JVM options every moe process runs with: {@code jvm.options} at the repository root, which
 * the build copies into the launcher jar. The {@code ./moe} script and the tests hand the same file
 * to the java launcher as an argument file; {@code moe up} reads it here for the services it starts.
 */
public final class JvmOptions {
    private static final String RESOURCE = "/jvm.options";

    private JvmOptions() {
    }

    /** The options, one per element, comments and blank lines left out. */
    public static List<String> read() {
        try (InputStream in = JvmOptions.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException(RESOURCE + " is missing from the class path; rebuild the launcher jar");
            }
            return parse(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + RESOURCE, e);
        }
    }

    /** The argument-file format the java launcher reads, restricted to one option per line. */
    static List<String> parse(String text) {
        return text.lines().map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("#")).toList();
    }
}
