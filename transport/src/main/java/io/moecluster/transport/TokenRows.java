package io.moecluster.transport;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import io.moecluster.core.kernels.Bf16;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.sbe.ElementType;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * Token rows between f32 memory segments (the engine's layout) and wire payloads
 * (contiguous little-endian rows of F32, BF16 or F16). Allocation-free.
 */
public final class TokenRows {
    /** F32 rows in memory are already the wire's little-endian bytes on LE machines: copy them in bulk. */
    private static final boolean NATIVE_LE = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private TokenRows() {
    }

    /** Bytes of one element on the wire. */
    public static int elementBytes(ElementType type) {
        return switch (type) {
            case F32 -> 4;
            case BF16, F16 -> 2;
            case NULL_VAL -> throw new IllegalArgumentException("element type NULL_VAL has no size");
        };
    }

    /** Wire bytes of tokens x hidden elements; fails when that does not fit an int. */
    public static int bytes(int tokens, int hidden, ElementType type) {
        if (tokens < 0 || hidden < 0) {
            throw new IllegalArgumentException("negative dimensions: tokens " + tokens + ", hidden " + hidden);
        }
        long bytes = (long) tokens * hidden * elementBytes(type);
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(tokens + " x " + hidden + " " + type + " is " + bytes + " bytes, over 2 GiB");
        }
        return (int) bytes;
    }

    /** Writes tokens x hidden floats of f32Rows, starting at float index firstFloat, as type into dst at dstOffset. */
    public static void encode(MemorySegment f32Rows, long firstFloat, int tokens, int hidden, ElementType type,
                              MutableDirectBuffer dst, int dstOffset) {
        final int bytes = bytes(tokens, hidden, type);
        final int n = tokens * hidden;
        checkSegment("source rows", f32Rows, firstFloat, n);
        checkBuffer("destination buffer", dst.capacity(), dstOffset, bytes);
        switch (type) {
            case F32 -> {
                byte[] array = dst.byteArray();
                if (NATIVE_LE && array != null) {
                    MemorySegment.copy(f32Rows, ValueLayout.JAVA_BYTE, firstFloat * 4, array,
                            (int) (dst.wrapAdjustment() + dstOffset), bytes);
                } else {
                    for (int i = 0; i < n; i++) {
                        dst.putFloat(dstOffset + 4 * i, f32Rows.getAtIndex(Kernels.F32, firstFloat + i), LE);
                    }
                }
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    dst.putShort(dstOffset + 2 * i, Bf16.fromFloat(f32Rows.getAtIndex(Kernels.F32, firstFloat + i)), LE);
                }
            }
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    dst.putShort(dstOffset + 2 * i, Float.floatToFloat16(f32Rows.getAtIndex(Kernels.F32, firstFloat + i)), LE);
                }
            }
            case NULL_VAL -> throw new IllegalArgumentException("cannot encode element type NULL_VAL");
        }
    }

    /** Reads tokens x hidden elements of type from src at offset, widened to f32 into f32Dst from float index firstFloat. */
    public static void decode(DirectBuffer src, int offset, int tokens, int hidden, ElementType type,
                              MemorySegment f32Dst, long firstFloat) {
        final int bytes = bytes(tokens, hidden, type);
        final int n = tokens * hidden;
        checkBuffer("source buffer", src.capacity(), offset, bytes);
        checkSegment("destination rows", f32Dst, firstFloat, n);
        switch (type) {
            case F32 -> {
                byte[] array = src.byteArray();
                if (NATIVE_LE && array != null) {
                    MemorySegment.copy(array, (int) (src.wrapAdjustment() + offset), f32Dst, ValueLayout.JAVA_BYTE,
                            firstFloat * 4, bytes);
                } else {
                    for (int i = 0; i < n; i++) {
                        f32Dst.setAtIndex(Kernels.F32, firstFloat + i, src.getFloat(offset + 4 * i, LE));
                    }
                }
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    f32Dst.setAtIndex(Kernels.F32, firstFloat + i, Bf16.toFloat(src.getShort(offset + 2 * i, LE)));
                }
            }
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    f32Dst.setAtIndex(Kernels.F32, firstFloat + i, Float.float16ToFloat(src.getShort(offset + 2 * i, LE)));
                }
            }
            case NULL_VAL -> throw new IllegalArgumentException("cannot decode element type NULL_VAL");
        }
    }

    private static void checkSegment(String what, MemorySegment segment, long firstFloat, int floats) {
        if (firstFloat < 0 || (firstFloat + floats) * 4 > segment.byteSize()) {
            throw new IndexOutOfBoundsException(what + ": floats [" + firstFloat + ", " + (firstFloat + floats)
                    + ") outside a segment of " + segment.byteSize() / 4 + " floats");
        }
    }

    private static void checkBuffer(String what, int capacity, int offset, int bytes) {
        if (offset < 0 || (long) offset + bytes > capacity) {
            throw new IndexOutOfBoundsException(what + ": bytes [" + offset + ", " + ((long) offset + bytes)
                    + ") outside a capacity of " + capacity);
        }
    }
}
