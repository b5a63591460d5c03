package io.moecluster.cuda.check;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;

/** The GPU check's report: Markdown, written as it goes (a crash leaves what ran), echoed to stdout. */
final class Report {
    // package-private: GpuCheck and its tests
    private final Path file;
    private int passed;
    private int failed;

    Report(Path file) {
        this.file = file;
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            Files.writeString(file, "");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    void line(String text) {
        System.out.println(text);
        System.out.flush();
        try {
            Files.writeString(file, text + "\n", StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    void line(String format, Object... args) {
        line(String.format(Locale.ROOT, format, args));
    }

    void section(String title) {
        line("");
        line("## " + title);
        line("");
    }

    /** A checked result: PASS or FAIL with what was measured against what was allowed. */
    void check(boolean ok, String what) {
        if (ok) {
            passed++;
        } else {
            failed++;
        }
        line("- " + (ok ? "PASS" : "**FAIL**") + " " + what);
    }

    int passed() {
        return passed;
    }

    int failed() {
        return failed;
    }
}
