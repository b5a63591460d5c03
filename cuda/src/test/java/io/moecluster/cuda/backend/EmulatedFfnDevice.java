package io.moecluster.cuda.backend;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;

import io.moecluster.core.kernels.Bf16;
import io.moecluster.cuda.bindings.Cublas;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * {@link FfnDevice} on the host: "device" memory is host memory (addresses are real), every step is
 * done at once with the arithmetic of the CUDA kernels ({@code expert_ffn.cu}) and of a BF16 GEMM
 * with f32 accumulation and BF16 output. What it checks is everything the GPU path does on the host
 * and the meaning of every address, shape, transpose and leading dimension the program passes;
 * what it cannot check is cuBLAS and the kernels themselves (the GPU check does).
 */
final class EmulatedFfnDevice implements FfnDevice {
    private final Arena arena = Arena.ofShared();
    long allocated;
    int groupedCalls;
    int kernelLaunches;
    int synchronizations;

    @Override
    public long allocate(long bytes) {
        allocated += bytes;
        return arena.allocate(bytes, 256).address();
    }

    @Override
    public MemorySegment allocateHost(long bytes) {
        return arena.allocate(bytes, 64);
    }

    private static MemorySegment at(long address, long bytes) {
        return MemorySegment.ofAddress(address).reinterpret(bytes);
    }

    @Override
    public void copyToDevice(long dst, MemorySegment src, long srcOffset, long bytes) {
        MemorySegment.copy(src, srcOffset, at(dst, bytes), 0, bytes);
    }

    @Override
    public void copyToHost(MemorySegment dst, long dstOffset, long src, long bytes) {
        MemorySegment.copy(at(src, bytes), 0, dst, dstOffset, bytes);
    }

    @Override
    public void f32ToBf16(long src, long dst, long n) {
        kernelLaunches++;
        MemorySegment s = at(src, n * 4);
        MemorySegment d = at(dst, n * 2);
        for (long i = 0; i < n; i++) {
            d.setAtIndex(JAVA_SHORT_UNALIGNED, i, Bf16.fromFloat(s.getAtIndex(JAVA_FLOAT_UNALIGNED, i)));
        }
    }

    @Override
    public void f16ToBf16(long src, long dst, long n) {
        kernelLaunches++;
        MemorySegment s = at(src, n * 2);
        MemorySegment d = at(dst, n * 2);
        for (long i = 0; i < n; i++) {
            d.setAtIndex(JAVA_SHORT_UNALIGNED, i, Bf16.fromFloat(Float.float16ToFloat(s.getAtIndex(JAVA_SHORT_UNALIGNED, i))));
        }
    }

    @Override
    public void groupedGemm(GroupedGemm g, long devicePointers) {
        groupedCalls++;
        MemorySegment ptrs = at(devicePointers, 3L * 8 * g.capacity());
        for (int i = 0; i < g.count(); i++) {
            // the device copy of the pointer arrays, as cuBLAS reads them
            long a = ptrs.getAtIndex(JAVA_LONG_UNALIGNED, i);
            long b = ptrs.getAtIndex(JAVA_LONG_UNALIGNED, g.capacity() + i);
            long c = ptrs.getAtIndex(JAVA_LONG_UNALIGNED, 2L * g.capacity() + i);
            gemm(g.opA(i), g.opB(i), g.m(i), g.n(i), g.k(i), a, g.lda(i), b, g.ldb(i), c, g.ldc(i));
        }
    }

    /** Column-major {@code C [m, n] = op(A) op(B)}: BF16 in, f32 sums in index order, BF16 out. */
    static void gemm(int opA, int opB, int m, int n, int k, long a, int lda, long b, int ldb, long c, int ldc) {
        long aCols = opA == Cublas.OP_N ? k : m;
        long bCols = opB == Cublas.OP_N ? n : k;
        MemorySegment am = at(a, (long) lda * aCols * 2);
        MemorySegment bm = at(b, (long) ldb * bCols * 2);
        MemorySegment cm = at(c, (long) ldc * n * 2);
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < m; i++) {
                float sum = 0f;
                for (int p = 0; p < k; p++) {
                    long ai = opA == Cublas.OP_N ? i + (long) p * lda : p + (long) i * lda;
                    long bi = opB == Cublas.OP_N ? p + (long) j * ldb : j + (long) p * ldb;
                    sum += Bf16.toFloat(am.getAtIndex(JAVA_SHORT_UNALIGNED, ai))
                            * Bf16.toFloat(bm.getAtIndex(JAVA_SHORT_UNALIGNED, bi));
                }
                cm.setAtIndex(JAVA_SHORT_UNALIGNED, i + (long) j * ldc, Bf16.fromFloat(sum));
            }
        }
    }

    @Override
    public void siluMul(long gu, long h, int rows, int ffn) {
        kernelLaunches++;
        MemorySegment in = at(gu, 2L * rows * 2 * ffn);
        MemorySegment out = at(h, 2L * rows * ffn);
        for (long i = 0; i < (long) rows * ffn; i++) {
            long r = i / ffn;
            long col = i - r * ffn;
            float g = Bf16.toFloat(in.getAtIndex(JAVA_SHORT_UNALIGNED, r * 2 * ffn + col));
            float u = Bf16.toFloat(in.getAtIndex(JAVA_SHORT_UNALIGNED, r * 2 * ffn + ffn + col));
            out.setAtIndex(JAVA_SHORT_UNALIGNED, i, Bf16.fromFloat(g / (1f + (float) Math.exp(-g)) * u));
        }
    }

    @Override
    public void scaleRows(long y, long scales, long out, int rows, int cols) {
        kernelLaunches++;
        long n = (long) rows * cols;
        MemorySegment ym = at(y, n * 2);
        MemorySegment om = at(out, n * 4);
        MemorySegment sm = scales == 0 ? null : at(scales, rows * 4L);
        for (long i = 0; i < n; i++) {
            float v = Bf16.toFloat(ym.getAtIndex(JAVA_SHORT_UNALIGNED, i));
            om.setAtIndex(JAVA_FLOAT_UNALIGNED, i, sm == null ? v : sm.getAtIndex(JAVA_FLOAT_UNALIGNED, i / cols) * v);
        }
    }

    @Override
    public void synchronize() {
        synchronizations++;
    }

    @Override
    public String describe() {
        return "host emulation of the GPU steps";
    }

    @Override
    public void close() {
        arena.close();
    }
}
