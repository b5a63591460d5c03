package io.moecluster.core.model;

import io.moecluster.core.safetensors.DType;

/** Tests in other packages write a config.json the way the generator does. */
public final class HfConfigFilesAccess {
    private HfConfigFilesAccess() {
    }

    public static String config(ModelConfig c) {
        return HfConfigFiles.config(c, DType.F32);
    }
}
