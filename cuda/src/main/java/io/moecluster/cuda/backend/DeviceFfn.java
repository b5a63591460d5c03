package io.moecluster.cuda.backend;

/**
 * One FFN's weights in device memory, BF16: {@code gateUp} is {@code [2 * ffn, hidden]} row-major
 * (the gate projection's rows, then the up projection's), {@code down} is {@code [hidden, ffn]}.
 *
 * @param gateUp device address of the stacked gate and up weights
 * @param down device address of the down weights
 */
public record DeviceFfn(long gateUp, long down, int hidden, int ffn) {
    public DeviceFfn {
        if (hidden < 1 || ffn < 1) {
            throw new IllegalArgumentException("FFN shape hidden " + hidden + ", ffn " + ffn);
        }
    }

    /** Bytes on the device: 3 matrices of hidden x ffn BF16 values. */
    public long bytes() {
        return 3L * hidden * ffn * 2;
    }
}
