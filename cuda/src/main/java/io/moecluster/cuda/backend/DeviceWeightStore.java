package io.moecluster.cuda.backend;

import io.moecluster.core.kernels.Bf16Matrix;
import io.moecluster.core.kernels.F16Matrix;
import io.moecluster.core.kernels.F32Matrix;
import io.moecluster.core.kernels.Fp8Matrix;
import io.moecluster.core.kernels.Int8Matrix;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.model.FfnWeights;
import java.lang.foreign.MemorySegment;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * FFN weights uploaded once, at start-up, to device memory as BF16 ({@link DeviceFfn}): BF16
 * checkpoints are copied as they are, F32 and F16 ones converted on the device after the copy, FP8
 * blocks dequantised row by row on the host and converted like F32. One
 * store per backend, so weights two kernels share (none today) would be uploaded once.
 */
public final class DeviceWeightStore {
    /** Bytes per upload step: host staging (pinned) and device staging for conversions. */
    static final long CHUNK = 32L << 20;

    private final FfnDevice device;
    private final Map<FfnWeights, DeviceFfn> uploaded = new IdentityHashMap<>();
    private MemorySegment hostStage;
    private long deviceStage;
    private long bytes;

    public DeviceWeightStore(FfnDevice device) {
        this.device = device;
    }

    /** Uploads {@code w} unless it already is, and returns where it lives. */
    public synchronized DeviceFfn upload(FfnWeights w) {
        DeviceFfn d = uploaded.get(w);
        if (d != null) {
            return d;
        }
        int hidden = w.hidden();
        int ffn = w.ffn();
        check(w.gate(), ffn, hidden);
        check(w.up(), ffn, hidden);
        check(w.down(), hidden, ffn);
        long matrix = (long) hidden * ffn * 2;
        long gateUp = device.allocate(2 * matrix);
        long down = device.allocate(matrix);
        upload(w.gate(), gateUp);
        upload(w.up(), gateUp + matrix);
        upload(w.down(), down);
        d = new DeviceFfn(gateUp, down, hidden, ffn);
        uploaded.put(w, d);
        bytes += 3 * matrix;
        return d;
    }

    /** Where {@code w} lives; it must have been {@link #upload}ed (at start-up, by {@code FfnKernel.prepare}). */
    public synchronized DeviceFfn get(FfnWeights w) {
        DeviceFfn d = uploaded.get(w);
        if (d == null) {
            throw new IllegalStateException("FFN weights " + w.gate().name() + "... were not prepared: the cuda "
                    + "backend uploads weights once, in FfnKernel.prepare, and never during a batch");
        }
        return d;
    }

    /** Bytes of weights on the device. */
    public synchronized long bytes() {
        return bytes;
    }

    public synchronized int count() {
        return uploaded.size();
    }

    private static void check(WeightMatrix m, int rows, int cols) {
        if (m.rows() != rows || m.cols() != cols) {
            throw new IllegalArgumentException(m + ": expected [" + rows + ", " + cols + "]");
        }
    }

    /** One matrix to BF16 at device address {@code dst}, in chunks through the staging buffers. */
    private void upload(WeightMatrix m, long dst) {
        if (hostStage == null) {
            hostStage = device.allocateHost(CHUNK);
            deviceStage = device.allocate(CHUNK);
        }
        MemorySegment data = m.data();
        long elements = (long) m.rows() * m.cols();
        switch (m) {
            case Bf16Matrix b -> {
                for (long at = 0; at < elements * 2; at += CHUNK) {
                    long n = Math.min(CHUNK, elements * 2 - at);
                    MemorySegment.copy(data, at, hostStage, 0, n);
                    device.copyToDevice(dst + at, hostStage, 0, n);
                    device.synchronize();
                }
            }
            case F32Matrix f -> convert(data, elements, 4, dst, true);
            case F16Matrix h -> convert(data, elements, 2, dst, false);
            case Fp8Matrix q -> dequantize(q, dst);
            case Int8Matrix q -> dequantize(q, dst);
        }
    }

    /**
     * FP8 and int8 blocks: rows dequantised on the host by the format's own row copy (fp8 x its block's scale,
     * in f32) straight into the staging buffer, then to BF16 on the device like an F32 checkpoint.
     */
    private void dequantize(WeightMatrix q, long dst) {
        int cols = q.cols();
        int rowsPerChunk = (int) Math.max(1, CHUNK / (4L * cols));
        for (int r0 = 0; r0 < q.rows(); r0 += rowsPerChunk) {
            int rows = Math.min(rowsPerChunk, q.rows() - r0);
            for (int r = 0; r < rows; r++) {
                q.copyRowTo(r0 + r, hostStage, (long) r * cols);
            }
            long n = (long) rows * cols;
            device.copyToDevice(deviceStage, hostStage, 0, n * 4);
            device.f32ToBf16(deviceStage, dst + (long) r0 * cols * 2, n);
            device.synchronize();
        }
    }

    private void convert(MemorySegment data, long elements, int width, long dst, boolean f32) {
        long perChunk = CHUNK / width;
        for (long e = 0; e < elements; e += perChunk) {
            long n = Math.min(perChunk, elements - e);
            MemorySegment.copy(data, e * width, hostStage, 0, n * width);
            device.copyToDevice(deviceStage, hostStage, 0, n * width);
            if (f32) {
                device.f32ToBf16(deviceStage, dst + e * 2, n);
            } else {
                device.f16ToBf16(deviceStage, dst + e * 2, n);
            }
            device.synchronize();
        }
    }
}
