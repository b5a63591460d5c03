package io.moecluster.core.safetensors;

/** Element types the engine reads from checkpoints, with their safetensors names. */
public enum DType {
    F32("F32", 4),
    F16("F16", 2),
    BF16("BF16", 2),
    /**
     * OCP FP8 E4M3 ({@code torch.float8_e4m3fn}), one byte per weight, as DeepSeek-V3 ships its
     * linear layers: each such weight comes with an F32 {@code <name>_scale_inv} tensor of one
     * multiplier per block ({@code quantization_config.weight_block_size}).
     */
    F8_E4M3("F8_E4M3", 1),
    /**
     * Signed 8-bit integers as the int8 weight format stores its linear layers (the engine's Q8_0:
     * symmetric blocks of 32 weights along a row), each such weight with an F32
     * {@code <name>_scale_inv} tensor of one multiplier per block ({@code quantization_config}
     * with {@code quant_method: int8}).
     */
    I8("I8", 1);

    private final String safetensorsName;
    private final int bytes;

    DType(String safetensorsName, int bytes) {
        this.safetensorsName = safetensorsName;
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    public String safetensorsName() {
        return safetensorsName;
    }

    /** Returns null for a name this engine does not read (the caller names file and tensor). */
    public static DType fromSafetensorsName(String name) {
        for (DType d : values()) {
            if (d.safetensorsName.equals(name)) {
                return d;
            }
        }
        return null;
    }

    /** Parses a user-facing name such as {@code bf16}, {@code F32} or {@code f8_e4m3} (also {@code fp8}). */
    public static DType parse(String name) {
        for (DType d : values()) {
            if (d.safetensorsName.equalsIgnoreCase(name)) {
                return d;
            }
        }
        if ("fp8".equalsIgnoreCase(name)) {
            return F8_E4M3;
        }
        if ("int8".equalsIgnoreCase(name)) {
            return I8;
        }
        throw new IllegalArgumentException("unknown dtype '" + name + "' (expected f32, f16, bf16, f8_e4m3 or i8)");
    }

    /** Whether weights of this type need a companion tensor of block scales. */
    public boolean isBlockQuantized() {
        return this == F8_E4M3 || this == I8;
    }
}
