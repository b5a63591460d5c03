package io.moecluster.cli;

import io.moecluster.core.model.Architecture;
import io.moecluster.core.model.Preset;
import io.moecluster.core.safetensors.DType;
import java.util.Arrays;
import java.util.stream.Collectors;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Command-line spellings of core enums; a bad value is a usage error that lists the good ones. */
final class Converters {
    private Converters() {
    }

    static final class ArchitectureConverter implements ITypeConverter<Architecture> {
        @Override
        public Architecture convert(String value) {
            for (Architecture a : Architecture.values()) {
                if (a.modelType().equals(value)) {
                    return a;
                }
            }
            throw new TypeConversionException("unknown architecture '" + value + "'; expected one of "
                    + Arrays.stream(Architecture.values()).map(Architecture::modelType).collect(Collectors.joining(", ")));
        }
    }

    static final class PresetConverter implements ITypeConverter<Preset> {
        @Override
        public Preset convert(String value) {
            try {
                return Preset.fromId(value);
            } catch (IllegalArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }

    static final class DTypeConverter implements ITypeConverter<DType> {
        @Override
        public DType convert(String value) {
            try {
                return DType.parse(value);
            } catch (IllegalArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }
}
