package io.moecluster.cuda.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moecluster.cuda.bindings.CudaLibraries;
import io.moecluster.cuda.bindings.LibraryLocator;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * NVIDIA's real libraries for the binding tests, unpacked by Maven at test time (cuda/pom.xml) from
 * org.bytedeco's redistribution jars on Maven Central into {@code cuda/target/nvidia}. When a
 * folder or file is missing (no network on first build, {@code -Dmoe.nvidia.skip=true}) the tests
 * that need it are skipped, with the reason naming the file and where it comes from.
 */
public final class NvidiaLibs {
    public static final String CUDA13_JAR = "org.bytedeco:cuda-redist:13.1-9.19-1.5.13:linux-x86_64";
    public static final String CUDA12_JAR = "org.bytedeco:cuda:12.6-9.5-1.5.11:linux-x86_64-redist";
    private static final Map<String, CudaLibraries> LOADED = new ConcurrentHashMap<>();

    private NvidiaLibs() {
    }

    /** The CUDA 13.1 folder (libcudart.so.13, libnvrtc.so.13 and its builtins); skips the test when absent. */
    public static Path cuda13() {
        return folder("moe.test.cuda13", CUDA13_JAR, "libcudart.so.13", "libnvrtc.so.13");
    }

    /** The CUDA 12.6 folder (libcudart.so.12, libcublas(Lt).so.12, libnccl.so.2); skips the test when absent. */
    public static Path cuda12() {
        return folder("moe.test.cuda12", CUDA12_JAR, "libcudart.so.12", "libcublasLt.so.12", "libcublas.so.12",
                "libnccl.so.2");
    }

    /** The libraries of {@link #cuda13()}, loaded once per JVM. */
    public static CudaLibraries libs13() {
        Path dir = cuda13();
        return LOADED.computeIfAbsent("13", k -> CudaLibraries.load(LibraryLocator.ofFolders(List.of(dir))));
    }

    /** The libraries of {@link #cuda12()}, loaded once per JVM. */
    public static CudaLibraries libs12() {
        Path dir = cuda12();
        return LOADED.computeIfAbsent("12", k -> CudaLibraries.load(LibraryLocator.ofFolders(List.of(dir))));
    }

    private static Path folder(String property, String jar, String... files) {
        String dir = System.getProperty(property);
        assumeTrue(dir != null, () -> "NVIDIA libraries missing: system property " + property
                + " is not set (the cuda module's surefire configuration sets it)");
        Path p = Path.of(dir);
        for (String f : files) {
            assumeTrue(Files.isRegularFile(p.resolve(f)), () -> "NVIDIA library missing: " + p.resolve(f)
                    + " (unpacked at test time from " + jar + " on Maven Central; -Dmoe.nvidia.skip=true skips that)");
        }
        return p;
    }
}
