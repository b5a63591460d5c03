package io.moecluster.core.backend;

import java.util.OptionalInt;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What {@code --device} names: a compute backend and, for a backend with several devices, which
 * one: {@code cpu}, {@code cuda} (device 0), {@code cuda:1}.
 *
 * @param backend the provider's name
 * @param index the device index when one was given
 */
public record DeviceSpec(String backend, OptionalInt index) {
    private static final Pattern FORM = Pattern.compile("([a-z][a-z0-9_-]*)(?::(\\d{1,4}))?");

    public DeviceSpec {
        if (backend == null || backend.isBlank()) {
            throw new IllegalArgumentException("--device must name a compute backend, e.g. " + ComputeBackends.DEFAULT);
        }
    }

    /** {@code NAME} or {@code NAME:INDEX}; anything else is refused naming the flag. */
    public static DeviceSpec parse(String text) {
        Matcher m = text == null ? null : FORM.matcher(text.strip());
        if (m == null || !m.matches()) {
            throw new IllegalArgumentException("--device: '" + text + "' is not NAME or NAME:INDEX (cpu, cuda, cuda:1)");
        }
        return new DeviceSpec(m.group(1), m.group(2) == null ? OptionalInt.empty()
                : OptionalInt.of(Integer.parseInt(m.group(2))));
    }

    /** The device index, 0 when none was given. */
    public int indexOrZero() {
        return index.orElse(0);
    }

    @Override
    public String toString() {
        return index.isPresent() ? backend + ":" + index.getAsInt() : backend;
    }
}
