package io.moecluster.core.safetensors;

/** Element types the engine reads from checkpoints, with their safetensors names. */
public enum DType {
    F32("F32", 4),
    F16("F16", 2),
    BF16("BF16", 2);

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

    /** Parses a user-facing name such as {@code bf16} or {@code F32}. */
    public static DType parse(String name) {
        for (DType d : values()) {
            if (d.safetensorsName.equalsIgnoreCase(name)) {
                return d;
            }
        }
        throw new IllegalArgumentException("unknown dtype '" + name + "' (expected f32, f16 or bf16)");
    }
}
