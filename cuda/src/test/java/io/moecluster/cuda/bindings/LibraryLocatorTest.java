package io.moecluster.cuda.bindings;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The search order of the issue, on a made-up file system: nothing here needs NVIDIA's libraries. */
class LibraryLocatorTest {
    @TempDir
    Path root;

    private Path lib(String dir, String name) throws IOException {
        Path d = root.resolve(dir);
        Files.createDirectories(d);
        return Files.writeString(d.resolve(name), "");
    }

    @Test
    void moeCudaLibDirsComeFirstThenPythonWheelsThenCudaThenTheLoadersPath() throws IOException {
        Path wheel = lib("opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib", "libcudart.so.13");
        Path nccl = lib("opt/torch/.venv/lib/python3.12/site-packages/nvidia/nccl/lib", "libnccl.so.2");
        Path cuda = lib("usr/local/cuda/lib64", "libcudart.so.13");
        Path loader = lib("usr/lib/x86_64-linux-gnu", "libcudart.so.13");
        lib("usr/local/cuda/lib64", "libnvrtc.so.13");
        Path fromLd = lib("custom/ld", "libnvrtc.so.13");
        Path override = lib("work/libs", "libcudart.so.13");
        Path home = Path.of("/root");

        LibraryLocator none = LibraryLocator.of(Map.of(), root, home);
        assertThat(none.find("libcudart.so.13")).contains(wheel);
        assertThat(none.find("libnccl.so.2")).contains(nccl);
        assertThat(none.findAll("libcudart.so.13")).containsExactly(wheel, cuda, loader);
        assertThat(none.find("libcublas.so.13")).isEmpty();

        LibraryLocator env = LibraryLocator.of(Map.of("MOE_CUDA_LIB_DIRS", "/nowhere:/work/libs",
                "LD_LIBRARY_PATH", "/custom/ld"), root, home);
        assertThat(env.find("libcudart.so.13")).contains(override);
        // /usr/local/cuda/lib64 comes before LD_LIBRARY_PATH
        assertThat(env.findAll("libnvrtc.so.13")).containsExactly(root.resolve("usr/local/cuda/lib64/libnvrtc.so.13"), fromLd);
        assertThat(env.folders().getFirst().source()).isEqualTo("MOE_CUDA_LIB_DIRS");
    }

    @Test
    void pythonsAreFoundThroughVirtualEnvPathTheSystemAndHome() throws IOException {
        Path venv = lib("srv/venv/lib/python3.11/site-packages/nvidia/cublas/lib", "libcublas.so.12");
        Path onPath = lib("tools/py/lib/python3.10/site-packages/nvidia/cuda_runtime/lib", "libcudart.so.12");
        lib("tools/py/bin", "python3.10");
        Path system = lib("usr/lib/python3/dist-packages/nvidia/cuda_nvrtc/lib", "libnvrtc.so.12");
        Path user = lib("home/u/.local/lib/python3.12/site-packages/nvidia/nccl/lib", "libnccl.so.2");
        LibraryLocator l = LibraryLocator.of(Map.of("VIRTUAL_ENV", "/srv/venv", "PATH", "/tools/py/bin:/usr/bin"),
                root, Path.of("/home/u"));
        assertThat(l.find("libcublas.so.12")).contains(venv);
        assertThat(l.find("libcudart.so.12")).contains(onPath);
        assertThat(l.find("libnvrtc.so.12")).contains(system);
        assertThat(l.find("libnccl.so.2")).contains(user);
        assertThat(l.folders()).allSatisfy(f -> assertThat(f.path()).isDirectory());
    }

    @Test
    void theLoadersConfigurationIsRead() throws IOException {
        Path cuda130 = lib("usr/local/cuda-13.0/targets/x86_64-linux/lib", "libcudart.so.13");
        Files.createDirectories(root.resolve("etc/ld.so.conf.d"));
        Files.writeString(root.resolve("etc/ld.so.conf.d/cuda-13-0.conf"),
                "# CUDA\n/usr/local/cuda-13.0/targets/x86_64-linux/lib\n");
        assertThat(LibraryLocator.of(Map.of(), root, null).find("libcudart.so.13")).contains(cuda130);
    }

    @Test
    void theDescriptionNamesEverySourceAndWhatWasThere() throws IOException {
        lib("usr/lib/x86_64-linux-gnu", "libc.so.6");
        String d = LibraryLocator.of(Map.of(), root, null).describe();
        assertThat(d).isEqualTo("MOE_CUDA_LIB_DIRS (unset), NVIDIA's Python wheels (none found), "
                + "/usr/local/cuda/lib64 (absent), LD_LIBRARY_PATH (unset), the loader's path ("
                + root.resolve("usr/lib/x86_64-linux-gnu") + ", " + root.resolve("usr/lib") + ")");
        String set = LibraryLocator.of(Map.of("MOE_CUDA_LIB_DIRS", "/missing"), root, null).describe();
        assertThat(set).startsWith("MOE_CUDA_LIB_DIRS (no such folder), ");
        assertThat(LibraryLocator.ofFolders(List.of(root)).describe()).isEqualTo(root.toString());
    }
}
