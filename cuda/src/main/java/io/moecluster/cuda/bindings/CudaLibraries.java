package io.moecluster.cuda.bindings;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * NVIDIA's libraries as one consistent set, found by a {@link LibraryLocator} and loaded by full
 * path, dependencies first: the CUDA runtime ({@code libcudart.so.13}, else {@code .12}) decides the
 * CUDA major version, and NVRTC ({@code libnvrtc-builtins} before {@code libnvrtc}) and cuBLAS
 * ({@code libcublasLt} before {@code libcublas}) must be of that same major; each reports its own
 * version at load, and a mismatch (a file named for one major reporting another, cuBLAS 12 beside a
 * CUDA 13 runtime) is refused with a message saying what was found where. NCCL
 * ({@code libnccl.so.2}) is optional: only the row exchange needs it.
 *
 * <p>Loading never throws: what could not be loaded is a {@linkplain #problems() problem}, which
 * the backend reports as its reasons for being unavailable. The process-wide set is
 * {@link #system()}; tests load sets from explicit folders.
 */
public final class CudaLibraries {
    public static final String RUNTIME = "CUDA runtime";
    public static final String NVRTC = "NVRTC";
    public static final String CUBLAS = "cuBLAS";
    public static final String NCCL = "NCCL";
    /** The CUDA majors these bindings are written for, preferred first. */
    public static final List<Integer> MAJORS = List.of(13, 12);

    private final LibraryLocator locator;
    private final Map<String, String> problems = new LinkedHashMap<>();
    private int major;
    private Cudart cudart;
    // each problem says what is wrong with one component; where files were looked for is searched()
    private Nvrtc nvrtc;
    private Cublas cublas;
    private CublasLt cublasLt;
    private Nccl nccl;

    private CudaLibraries(LibraryLocator locator) {
        this.locator = locator;
    }

    private static final class Holder {
        static final CudaLibraries INSTANCE = load(LibraryLocator.fromEnvironment());
    }

    /** The set this process uses, found through its environment ({@link LibraryLocator#fromEnvironment()}) once. */
    public static CudaLibraries system() {
        return Holder.INSTANCE;
    }

    /** Finds and loads what it can through {@code locator}. */
    public static CudaLibraries load(LibraryLocator locator) {
        CudaLibraries l = new CudaLibraries(locator);
        l.loadRuntime();
        l.loadNvrtc();
        l.loadCublas();
        l.loadNccl();
        return l;
    }

    private void loadRuntime() {
        Path found = null;
        int fileMajor = 0;
        outer:
        for (LibraryLocator.Folder f : locator.folders()) {
            for (int m : MAJORS) {
                Path p = f.path().resolve("libcudart.so." + m);
                if (Files.isRegularFile(p)) {
                    found = p;
                    fileMajor = m;
                    break outer;
                }
            }
        }
        if (found == null) {
            problems.put(RUNTIME, "libcudart.so.13 or libcudart.so.12 not found");
            return;
        }
        Path path = found;
        int expected = fileMajor;
        cudart = attempt(RUNTIME, path, lib -> {
            Cudart c = new Cudart(lib);
            int v = c.runtimeVersion();
            if (v / 1000 != expected) {
                throw new IllegalStateException(path + " reports CUDA runtime " + Cudart.versionString(v)
                        + ", not " + expected + ".x as its name says; refusing a mismatched runtime");
            }
            return c;
        });
        if (cudart != null) {
            major = fileMajor;
        }
    }

    private void loadNvrtc() {
        List<Integer> majors = major != 0 ? List.of(major) : MAJORS;
        Path found = null;
        int m = 0;
        for (int candidate : majors) {
            Optional<Path> p = locator.find("libnvrtc.so." + candidate);
            if (p.isPresent()) {
                found = p.get();
                m = candidate;
                break;
            }
        }
        if (found == null) {
            problems.put(NVRTC, missing("libnvrtc.so", majors) + mismatch("libnvrtc.so."));
            return;
        }
        List<Path> builtins = LibraryLocator.inFolder(found.getParent(), "libnvrtc-builtins.so." + m + "*");
        if (builtins.isEmpty()) {
            problems.put(NVRTC, "libnvrtc-builtins.so." + m + ".* not found beside " + found
                    + " (NVRTC loads it to compile)");
            return;
        }
        int expected = m;
        Path path = found;
        nvrtc = attempt(NVRTC, path, lib -> {
            Nvrtc n = new Nvrtc(lib);
            int[] v = n.version();
            if (v[0] != expected) {
                throw new IllegalStateException(path + " reports NVRTC " + v[0] + "." + v[1] + ", not " + expected + ".x");
            }
            return n;
        }, builtins.getLast());
    }

    private void loadCublas() {
        List<Integer> majors = major != 0 ? List.of(major) : MAJORS;
        Path lt = null;
        int m = 0;
        for (int candidate : majors) {
            Optional<Path> p = locator.find("libcublasLt.so." + candidate);
            if (p.isPresent()) {
                lt = p.get();
                m = candidate;
                break;
            }
        }
        if (lt == null) {
            problems.put(CUBLAS, missing("libcublasLt.so", majors) + mismatch("libcublasLt.so."));
            return;
        }
        Path beside = lt.getParent().resolve("libcublas.so." + m);
        Optional<Path> blas = Files.isRegularFile(beside) ? Optional.of(beside)
                : locator.find("libcublas.so." + m);
        if (blas.isEmpty()) {
            problems.put(CUBLAS, "libcublas.so." + m + " not found (libcublasLt.so." + m + " is in " + lt.getParent() + ")");
            return;
        }
        int expected = m;
        Path ltPath = lt;
        CublasLt[] ltHolder = new CublasLt[1];
        cublas = attempt(CUBLAS, blas.get(), lib -> {
            Cublas b = new Cublas(lib);
            int[] v = b.version();
            if (v[0] != expected) {
                throw new IllegalStateException(lib.path() + " reports cuBLAS " + v[0] + "." + v[1] + ", not "
                        + expected + ".x");
            }
            return b;
        }, ltPath, l -> {
            CublasLt c = new CublasLt(l);
            long v = c.version();
            if (v / 10000 != expected) {
                throw new IllegalStateException(l.path() + " reports cuBLASLt " + v + ", not " + expected + ".x");
            }
            ltHolder[0] = c;
        });
        cublasLt = cublas == null ? null : ltHolder[0];
    }

    private void loadNccl() {
        Optional<Path> p = locator.find("libnccl.so.2");
        if (p.isEmpty()) {
            problems.put(NCCL, "libnccl.so.2 not found");
            return;
        }
        nccl = attempt(NCCL, p.get(), lib -> {
            Nccl n = new Nccl(lib);
            n.version();
            return n;
        });
    }

    /** "libX.so.13 not found" or "libX.so.13 or libX.so.12 not found". */
    private String missing(String base, List<Integer> majors) {
        List<String> names = new ArrayList<>();
        for (int m : majors) {
            names.add(base + "." + m);
        }
        return String.join(" or ", names) + " not found";
    }

    /** When the runtime fixed the major, says where another major's file was (cuBLAS 12 beside CUDA 13). */
    private String mismatch(String prefix) {
        if (major == 0) {
            return "";
        }
        for (int m : MAJORS) {
            if (m == major) {
                continue;
            }
            Optional<Path> other = locator.find(prefix + m);
            if (other.isPresent()) {
                return "; " + other.get() + " is for CUDA " + m + " but the CUDA runtime is "
                        + Cudart.versionString(cudart.runtimeVersion()) + " (" + cudart.library().path()
                        + "): refusing to mix CUDA major versions";
            }
        }
        return "";
    }

    private <T> T attempt(String component, Path path, Function<NativeLibrary, T> bind) {
        return attempt(component, path, bind, null);
    }

    private <T> T attempt(String component, Path path, Function<NativeLibrary, T> bind, Path dependency) {
        return attempt(component, path, bind, dependency, null);
    }

    private <T> T attempt(String component, Path path, Function<NativeLibrary, T> bind, Path dependency,
                          Consumer<NativeLibrary> dependencyBind) {
        try {
            if (dependency != null) {
                NativeLibrary dep = NativeLibrary.load(dependency);
                if (dependencyBind != null) {
                    dependencyBind.accept(dep);
                }
            }
            return bind.apply(NativeLibrary.load(path));
        } catch (RuntimeException | LinkageError e) {
            problems.put(component, e.getMessage());
            return null;
        }
    }

    /** The CUDA major of the loaded runtime (12 or 13), 0 when none loaded. */
    public int major() {
        return major;
    }

    public LibraryLocator locator() {
        return locator;
    }

    public Optional<Cudart> cudart() {
        return Optional.ofNullable(cudart);
    }

    public Optional<Nvrtc> nvrtc() {
        return Optional.ofNullable(nvrtc);
    }

    public Optional<Cublas> cublas() {
        return Optional.ofNullable(cublas);
    }

    public Optional<CublasLt> cublasLt() {
        return Optional.ofNullable(cublasLt);
    }

    public Optional<Nccl> nccl() {
        return Optional.ofNullable(nccl);
    }

    /** What could not be loaded, by component ({@link #RUNTIME}, {@link #NVRTC}, {@link #CUBLAS}, {@link #NCCL}). */
    public Map<String, String> problems() {
        return Collections.unmodifiableMap(problems);
    }

    public Cudart requireCudart() {
        return require(cudart, RUNTIME);
    }

    public Nvrtc requireNvrtc() {
        return require(nvrtc, NVRTC);
    }

    public Cublas requireCublas() {
        return require(cublas, CUBLAS);
    }

    public CublasLt requireCublasLt() {
        return require(cublasLt, CUBLAS);
    }

    public Nccl requireNccl() {
        return require(nccl, NCCL);
    }

    private <T> T require(T t, String component) {
        if (t == null) {
            throw new IllegalStateException(component + ": " + problems.get(component));
        }
        return t;
    }

    /** What was searched, for messages about files not found: {@link LibraryLocator#describe()}. */
    public String searched() {
        return locator.describe();
    }

    /** One line: each component's version and file, or its problem. */
    public String describe() {
        List<String> parts = new ArrayList<>();
        parts.add(cudart != null ? "CUDA runtime " + Cudart.versionString(cudart.runtimeVersion()) + " ("
                + cudart.library().path() + ")" : RUNTIME + ": " + problems.get(RUNTIME));
        if (nvrtc != null) {
            int[] v = nvrtc.version();
            parts.add("NVRTC " + v[0] + "." + v[1] + " (" + nvrtc.library().path() + ")");
        } else {
            parts.add(NVRTC + ": " + problems.get(NVRTC));
        }
        if (cublas != null) {
            int[] v = cublas.version();
            parts.add("cuBLAS " + v[0] + "." + v[1] + "." + v[2] + " (" + cublas.library().path() + ")");
        } else {
            parts.add(CUBLAS + ": " + problems.get(CUBLAS));
        }
        parts.add(nccl != null ? "NCCL " + Nccl.versionString(nccl.version()) + " (" + nccl.library().path() + ")"
                : NCCL + ": " + problems.get(NCCL));
        if (!problems.isEmpty()) {
            parts.add("searched " + searched());
        }
        return String.join("; ", parts);
    }
}
