package io.moecluster.cuda.bindings;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Where NVIDIA's libraries are looked for, in order:
 * <ol>
 *   <li>{@code MOE_CUDA_LIB_DIRS}, colon-separated, as given;
 *   <li>the folders NVIDIA's Python wheels install into ({@code nvidia/cu13/lib},
 *       {@code nvidia/nccl/lib}, and the CUDA 12 wheels' {@code nvidia/cuda_runtime/lib},
 *       {@code nvidia/cuda_nvrtc/lib}, {@code nvidia/cublas/lib}) under the {@code site-packages}
 *       of any Python found: {@code $VIRTUAL_ENV}, {@code $CONDA_PREFIX}, each Python on
 *       {@code $PATH}, the system's, {@code /opt/*} (and their {@code .venv}, {@code venv}), and
 *       the user's ({@code ~/.local}, {@code ~/.venv}, {@code ~/miniconda3} and kin);
 *   <li>{@code /usr/local/cuda/lib64};
 *   <li>the loader's path: {@code $LD_LIBRARY_PATH}, the folders named in
 *       {@code /etc/ld.so.conf.d/*.conf}, and the system library folders.
 * </ol>
 * Only folders that exist are kept, each once. The first folder holding a file wins, so
 * {@code MOE_CUDA_LIB_DIRS} overrides everything. Nothing here loads anything: it only finds files.
 */
public final class LibraryLocator {
    /** One folder searched, and why it is in the list. */
    public record Folder(Path path, String source) {
    }

    static final List<String> WHEEL_FOLDERS = List.of(
            "nvidia/cu13/lib", "nvidia/nccl/lib", "nvidia/cu12/lib",
            "nvidia/cuda_runtime/lib", "nvidia/cuda_nvrtc/lib", "nvidia/cublas/lib");
    private static final List<String> SYSTEM_SITE_PACKAGES = List.of(
            "usr/lib/python3*/site-packages", "usr/lib/python3*/dist-packages", "usr/lib/python3/dist-packages",
            "usr/local/lib/python3*/site-packages", "usr/local/lib/python3*/dist-packages",
            "usr/lib64/python3*/site-packages",
            "opt/*/lib/python3*/site-packages", "opt/*/.venv/lib/python3*/site-packages",
            "opt/*/venv/lib/python3*/site-packages", "opt/*/envs/*/lib/python3*/site-packages");
    private static final List<String> HOME_SITE_PACKAGES = List.of(
            ".local/lib/python3*/site-packages", ".venv/lib/python3*/site-packages",
            "miniconda3/lib/python3*/site-packages", "anaconda3/lib/python3*/site-packages",
            "miniforge3/lib/python3*/site-packages", "miniconda3/envs/*/lib/python3*/site-packages");
    private static final List<String> SYSTEM_LIBRARY_FOLDERS = List.of(
            "lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64", "lib", "usr/lib", "usr/local/lib");

    private final List<Folder> folders;
    private final Map<String, List<Path>> bySource;
    private final List<String> unsetVariables;

    private LibraryLocator(List<Folder> folders, List<String> unsetVariables) {
        this.folders = List.copyOf(folders);
        this.unsetVariables = List.copyOf(unsetVariables);
        Map<String, List<Path>> m = new LinkedHashMap<>();
        for (Folder f : folders) {
            m.computeIfAbsent(f.source(), k -> new ArrayList<>()).add(f.path());
        }
        this.bySource = m;
    }

    /** The search of this process: its environment, the machine's folders. */
    public static LibraryLocator fromEnvironment() {
        return of(System.getenv(), Path.of("/"), Path.of(System.getProperty("user.home", "/root")));
    }

    /** Exactly these folders, in this order (tests, and callers that know where the libraries are). */
    public static LibraryLocator ofFolders(List<Path> folders) {
        List<Folder> found = new ArrayList<>();
        Set<Path> seen = new LinkedHashSet<>();
        for (Path p : folders) {
            if (Files.isDirectory(p) && seen.add(p.toAbsolutePath().normalize())) {
                found.add(new Folder(p.toAbsolutePath().normalize(), "given"));
            }
        }
        return new LibraryLocator(found, List.of());
    }

    /**
     * The search for environment {@code env} on a file system whose root is {@code root} (absolute
     * paths, also those in variables and {@code home}, the user's home, are taken under it).
     */
    public static LibraryLocator of(Map<String, String> env, Path root, Path home) {
        Builder b = new Builder(root);
        List<String> unset = new ArrayList<>();
        String dirs = env.get("MOE_CUDA_LIB_DIRS");
        if (dirs == null || dirs.isBlank()) {
            unset.add("MOE_CUDA_LIB_DIRS");
        } else {
            for (String d : dirs.split(":")) {
                if (!d.isBlank()) {
                    b.add(b.under(d), "MOE_CUDA_LIB_DIRS");
                }
            }
        }
        for (Path sitePackages : sitePackages(env, b, home)) {
            for (String w : WHEEL_FOLDERS) {
                b.add(sitePackages.resolve(w), "NVIDIA's Python wheels");
            }
        }
        b.add(b.under("/usr/local/cuda/lib64"), "/usr/local/cuda/lib64");
        String ld = env.get("LD_LIBRARY_PATH");
        if (ld == null || ld.isBlank()) {
            unset.add("LD_LIBRARY_PATH");
        } else {
            for (String d : ld.split(":")) {
                if (!d.isBlank()) {
                    b.add(b.under(d), "LD_LIBRARY_PATH");
                }
            }
        }
        for (Path conf : b.glob("etc/ld.so.conf.d/*.conf")) {
            try {
                for (String line : Files.readAllLines(conf)) {
                    String l = line.strip();
                    if (l.startsWith("/")) {
                        b.add(b.under(l), "the loader's path");
                    }
                }
            } catch (IOException | RuntimeException e) {
                // an unreadable loader configuration only narrows the search
            }
        }
        for (String s : SYSTEM_LIBRARY_FOLDERS) {
            b.add(root.resolve(s), "the loader's path");
        }
        return new LibraryLocator(b.folders, unset);
    }

    private static List<Path> sitePackages(Map<String, String> env, Builder b, Path home) {
        Set<Path> found = new LinkedHashSet<>();
        for (String var : List.of("VIRTUAL_ENV", "CONDA_PREFIX")) {
            String v = env.get(var);
            if (v != null && !v.isBlank()) {
                found.addAll(b.glob(b.relative(v) + "/lib/python3*/site-packages"));
            }
        }
        String path = env.get("PATH");
        if (path != null) {
            for (String d : path.split(":")) {
                if (d.isBlank() || b.glob(b.relative(d) + "/python3*").isEmpty()) {
                    continue;
                }
                Path prefix = Path.of(b.relative(d)).getParent();
                String p = prefix == null ? "" : prefix + "/";
                found.addAll(b.glob(p + "lib/python3*/site-packages"));
                found.addAll(b.glob(p + "lib/python3*/dist-packages"));
                found.addAll(b.glob(p + "lib/python3/dist-packages"));
            }
        }
        for (String s : SYSTEM_SITE_PACKAGES) {
            found.addAll(b.glob(s));
        }
        if (home != null) {
            String h = b.relative(home.toString());
            for (String s : HOME_SITE_PACKAGES) {
                found.addAll(b.glob(h + "/" + s));
            }
        }
        return new ArrayList<>(found);
    }

    public List<Folder> folders() {
        return folders;
    }

    /** The first folder holding {@code fileName}, as a path to that file. */
    public Optional<Path> find(String fileName) {
        for (Folder f : folders) {
            Path p = f.path().resolve(fileName);
            if (Files.isRegularFile(p)) {
                return Optional.of(p);
            }
        }
        return Optional.empty();
    }

    /** Every folder's {@code fileName}, in search order. */
    public List<Path> findAll(String fileName) {
        List<Path> all = new ArrayList<>();
        for (Folder f : folders) {
            Path p = f.path().resolve(fileName);
            if (Files.isRegularFile(p)) {
                all.add(p);
            }
        }
        return all;
    }

    /** Files in {@code folder} whose names match {@code glob} (e.g. {@code libnvrtc-builtins.so.13*}), sorted. */
    public static List<Path> inFolder(Path folder, String glob) {
        List<Path> found = new ArrayList<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(folder, glob)) {
            s.forEach(found::add);
        } catch (IOException e) {
            return List.of();
        }
        found.sort(null);
        return found;
    }

    /**
     * What was searched, for an error message: each source with the folders found there, e.g.
     * {@code MOE_CUDA_LIB_DIRS (unset), NVIDIA's Python wheels (none), /usr/local/cuda/lib64
     * (absent), LD_LIBRARY_PATH (unset), the loader's path (/usr/lib/x86_64-linux-gnu, /usr/lib)}.
     */
    public String describe() {
        List<String> parts = new ArrayList<>();
        if (bySource.containsKey("given")) {
            parts.add(bySource.get("given").stream().map(Path::toString).collect(Collectors.joining(", ")));
        }
        if (unsetVariables.isEmpty() && bySource.isEmpty()) {
            return "no folders";
        }
        if (!bySource.containsKey("given")) {
            parts.add(part("MOE_CUDA_LIB_DIRS", "unset"));
            parts.add(part("NVIDIA's Python wheels", "none found"));
            parts.add(part("/usr/local/cuda/lib64", "absent"));
            parts.add(part("LD_LIBRARY_PATH", "unset"));
            parts.add(part("the loader's path", "none"));
        }
        return String.join(", ", parts);
    }

    private String part(String source, String whenEmpty) {
        List<Path> paths = bySource.get(source);
        if (paths == null) {
            boolean unset = unsetVariables.contains(source);
            return source + " (" + (unset ? "unset" : whenEmpty.equals("unset") ? "no such folder" : whenEmpty) + ")";
        }
        if (source.equals("/usr/local/cuda/lib64")) {
            return source;
        }
        return source + " (" + paths.stream().map(Path::toString).collect(Collectors.joining(", ")) + ")";
    }

    private static final class Builder {
        final Path root;
        final List<Folder> folders = new ArrayList<>();
        final Set<Path> seen = new LinkedHashSet<>();

        Builder(Path root) {
            this.root = root;
        }

        /** An absolute path of the environment, under {@link #root}. */
        Path under(String absolute) {
            return root.resolve(relative(absolute));
        }

        String relative(String absolute) {
            String r = absolute.strip();
            while (r.startsWith("/")) {
                r = r.substring(1);
            }
            while (r.endsWith("/") && r.length() > 1) {
                r = r.substring(0, r.length() - 1);
            }
            return r;
        }

        void add(Path p, String source) {
            if (!Files.isDirectory(p)) {
                return;
            }
            Path key;
            try {
                key = p.toRealPath();
            } catch (IOException e) {
                key = p.toAbsolutePath().normalize();
            }
            if (seen.add(key)) {
                folders.add(new Folder(p.toAbsolutePath().normalize(), source));
            }
        }

        /** Paths under the root matching {@code pattern}, whose segments may hold * and ? (relative). */
        List<Path> glob(String pattern) {
            List<Path> current = List.of(root);
            for (String segment : pattern.split("/")) {
                if (segment.isEmpty()) {
                    continue;
                }
                List<Path> next = new ArrayList<>();
                for (Path dir : current) {
                    if (segment.indexOf('*') < 0 && segment.indexOf('?') < 0) {
                        Path p = dir.resolve(segment);
                        if (Files.exists(p)) {
                            next.add(p);
                        }
                    } else if (Files.isDirectory(dir)) {
                        next.addAll(inFolder(dir, segment));
                    }
                }
                current = next;
            }
            return current;
        }
    }
}
