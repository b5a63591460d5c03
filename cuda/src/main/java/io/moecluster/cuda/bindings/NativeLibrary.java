package io.moecluster.cuda.bindings;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;

/**
 * One shared library loaded by its full path (never by a bare name that the loader would resolve
 * somewhere else), and the downcall handles bound from it. Libraries are never unloaded: NVIDIA's
 * libraries register process-wide state, so they live in the global arena.
 */
public final class NativeLibrary {
    private static final Linker LINKER = Linker.nativeLinker();

    private final Path path;
    private final SymbolLookup lookup;
    private final List<String> linked = new ArrayList<>();

    private NativeLibrary(Path path, SymbolLookup lookup) {
        this.path = path;
        this.lookup = lookup;
    }

    /** dlopen()s {@code path}; a file that does not load fails naming it and the loader's reason. */
    public static NativeLibrary load(Path path) {
        Path absolute = path.toAbsolutePath().normalize();
        try {
            return new NativeLibrary(absolute, SymbolLookup.libraryLookup(absolute, Arena.global()));
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException("cannot load " + absolute + ": " + e.getMessage(), e);
        }
    }

    public Path path() {
        return path;
    }

    /** The file name, e.g. libcudart.so.13. */
    public String fileName() {
        return path.getFileName().toString();
    }

    /** A downcall handle for {@code name}; a missing symbol fails naming the symbol and this file. */
    public MethodHandle bind(String name, FunctionDescriptor descriptor) {
        return bindOptional(name, descriptor).orElseThrow(() ->
                new IllegalStateException(name + " not found in " + path));
    }

    /** A downcall handle for {@code name}, or empty when this version of the library lacks it. */
    public Optional<MethodHandle> bindOptional(String name, FunctionDescriptor descriptor) {
        Optional<MemorySegment> symbol = lookup.find(name);
        if (symbol.isEmpty()) {
            return Optional.empty();
        }
        MethodHandle handle = LINKER.downcallHandle(symbol.get(), descriptor);
        synchronized (linked) {
            linked.add(name);
        }
        return Optional.of(handle);
    }

    /** Every function bound from this library so far, in binding order. */
    public List<String> linked() {
        synchronized (linked) {
            return Collections.unmodifiableList(new ArrayList<>(linked));
        }
    }

    @Override
    public String toString() {
        return path.toString();
    }
}
