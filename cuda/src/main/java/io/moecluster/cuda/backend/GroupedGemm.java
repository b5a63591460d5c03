package io.moecluster.cuda.backend;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.MemorySegment;

/**
 * The host-side arguments of one {@code cublasGemmGroupedBatchedEx} call, one group (of one GEMM)
 * per expert: {@code C_g = op(A_g) op(B_g)} column-major, with per-group transposes, shapes and
 * leading dimensions, alpha 1 and beta 0. The A, B and C pointer arrays are written here (host
 * memory) and copied to the device before the call, as cuBLAS reads them there.
 *
 * <p>A row-major {@code [rows, cols]} matrix is a column-major {@code [cols, rows]} one, so
 * {@code y = W x} for row-major weights {@code W [out, in]} and rows {@code x [n, in]} is the
 * column-major {@code Y [out, n] = op_T(W [in, out]) X [in, n]}: m = out, n = rows, k = in,
 * lda = ldb = in, ldc = out.
 */
public final class GroupedGemm {
    private final int capacity;
    private final MemorySegment transa;
    private final MemorySegment transb;
    private final MemorySegment m;
    private final MemorySegment n;
    private final MemorySegment k;
    private final MemorySegment lda;
    private final MemorySegment ldb;
    private final MemorySegment ldc;
    private final MemorySegment alpha;
    private final MemorySegment beta;
    private final MemorySegment groupSize;
    private final MemorySegment pointers;
    private int count;

    /**
     * @param host host memory for the arrays, at least {@link #bytes(int)} bytes
     */
    public GroupedGemm(MemorySegment host, int capacity) {
        if (host.byteSize() < bytes(capacity)) {
            throw new IllegalArgumentException("grouped GEMM arrays need " + bytes(capacity) + " bytes");
        }
        this.capacity = capacity;
        long ints = 4L * capacity;
        // pointers first: 8-byte aligned, and one contiguous block to copy (A[], then B[], then C[])
        pointers = host.asSlice(0, 3L * 8 * capacity);
        long at = pointers.byteSize();
        transa = host.asSlice(at, ints);
        transb = host.asSlice(at += ints, ints);
        m = host.asSlice(at += ints, ints);
        n = host.asSlice(at += ints, ints);
        k = host.asSlice(at += ints, ints);
        lda = host.asSlice(at += ints, ints);
        ldb = host.asSlice(at += ints, ints);
        ldc = host.asSlice(at += ints, ints);
        alpha = host.asSlice(at += ints, ints);
        beta = host.asSlice(at += ints, ints);
        groupSize = host.asSlice(at += ints, ints);
    }

    /** Host bytes for {@code capacity} groups. */
    public static long bytes(int capacity) {
        return 3L * 8 * capacity + 11L * 4 * capacity;
    }

    public void clear() {
        count = 0;
    }

    /** Adds the GEMM {@code C [m, n] = op(A) op(B)} (column-major) as its own group. */
    public void add(int opA, int opB, int m, int n, int k, long a, int lda, long b, int ldb, long c, int ldc) {
        if (count == capacity) {
            throw new IllegalStateException("grouped GEMM full (" + capacity + " groups)");
        }
        int g = count++;
        transa.setAtIndex(JAVA_INT, g, opA);
        transb.setAtIndex(JAVA_INT, g, opB);
        this.m.setAtIndex(JAVA_INT, g, m);
        this.n.setAtIndex(JAVA_INT, g, n);
        this.k.setAtIndex(JAVA_INT, g, k);
        this.lda.setAtIndex(JAVA_INT, g, lda);
        this.ldb.setAtIndex(JAVA_INT, g, ldb);
        this.ldc.setAtIndex(JAVA_INT, g, ldc);
        alpha.setAtIndex(JAVA_FLOAT, g, 1f);
        beta.setAtIndex(JAVA_FLOAT, g, 0f);
        groupSize.setAtIndex(JAVA_INT, g, 1);
        pointers.setAtIndex(JAVA_LONG, g, a);
        pointers.setAtIndex(JAVA_LONG, capacity + g, b);
        pointers.setAtIndex(JAVA_LONG, 2L * capacity + g, c);
    }

    public int count() {
        return count;
    }

    public int capacity() {
        return capacity;
    }

    /** The A, B and C pointer arrays, one block of {@code 3 * capacity} device addresses: A at 0, B at capacity, C at 2 capacity. */
    public MemorySegment pointers() {
        return pointers;
    }

    public MemorySegment transa() {
        return transa;
    }

    public MemorySegment transb() {
        return transb;
    }

    public MemorySegment m() {
        return m;
    }

    public MemorySegment n() {
        return n;
    }

    public MemorySegment k() {
        return k;
    }

    public MemorySegment lda() {
        return lda;
    }

    public MemorySegment ldb() {
        return ldb;
    }

    public MemorySegment ldc() {
        return ldc;
    }

    public MemorySegment alpha() {
        return alpha;
    }

    public MemorySegment beta() {
        return beta;
    }

    public MemorySegment groupSize() {
        return groupSize;
    }

    public int opA(int g) {
        return transa.getAtIndex(JAVA_INT, check(g));
    }

    public int opB(int g) {
        return transb.getAtIndex(JAVA_INT, check(g));
    }

    public int m(int g) {
        return m.getAtIndex(JAVA_INT, check(g));
    }

    public int n(int g) {
        return n.getAtIndex(JAVA_INT, check(g));
    }

    public int k(int g) {
        return k.getAtIndex(JAVA_INT, check(g));
    }

    public int lda(int g) {
        return lda.getAtIndex(JAVA_INT, check(g));
    }

    public int ldb(int g) {
        return ldb.getAtIndex(JAVA_INT, check(g));
    }

    public int ldc(int g) {
        return ldc.getAtIndex(JAVA_INT, check(g));
    }

    public long a(int g) {
        return pointers.getAtIndex(JAVA_LONG, check(g));
    }

    public long b(int g) {
        return pointers.getAtIndex(JAVA_LONG, capacity + (long) check(g));
    }

    public long c(int g) {
        return pointers.getAtIndex(JAVA_LONG, 2L * capacity + check(g));
    }

    /** Multiply-adds of all groups times two: the FLOPs of the call. */
    public double flops() {
        double f = 0;
        for (int g = 0; g < count; g++) {
            f += 2.0 * m(g) * n(g) * k(g);
        }
        return f;
    }

    private int check(int g) {
        if (g < 0 || g >= count) {
            throw new IndexOutOfBoundsException("group " + g + " of " + count);
        }
        return g;
    }
}
