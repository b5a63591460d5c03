package io.moecluster.core.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.backend.cpu.CpuBackendProvider;
import io.moecluster.core.parallel.WorkerPool;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

class ComputeBackendsTest {
    /** A provider whose libraries and device are missing, as the GPU one is on these machines. */
    static class Missing implements ComputeBackendProvider {
        boolean opened;

        @Override
        public String name() {
            return "gpu-test";
        }

        @Override
        public Availability availability() {
            return Availability.no("libcudart.so.13 not found in /usr/local/cuda/lib64", "no CUDA device");
        }

        @Override
        public ComputeBackend open(WorkerPool pool) {
            opened = true;
            throw new AssertionError("an unavailable backend must not be opened");
        }
    }

    @Test
    void cpuIsFoundOnTheClassPathAndIsTheDefault() {
        assertThat(ComputeBackends.providers()).extracting(ComputeBackendProvider::name).contains(ComputeBackends.DEFAULT);
        assertThat(ComputeBackends.provider("cpu").availability()).isEqualTo(Availability.yes());
        try (WorkerPool pool = new WorkerPool(1, "t"); ComputeBackend cpu = ComputeBackends.open("cpu", pool)) {
            assertThat(cpu.name()).isEqualTo("cpu");
            assertThat(cpu.description()).contains("f32 lanes").endsWith("1 thread");
        }
    }

    @Test
    void anUnavailableBackendIsRefusedWithEveryReasonBeforeAnythingOpens() {
        Missing missing = new Missing();
        List<ComputeBackendProvider> installed = List.of(new CpuBackendProvider(), missing);
        assertThat(ComputeBackends.find("gpu-test", installed)).isSameAs(missing);
        try (WorkerPool pool = new WorkerPool(1, "t")) {
            assertThatThrownBy(() -> ComputeBackends.open(missing, pool))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("--device gpu-test: cannot run on this machine: "
                            + "libcudart.so.13 not found in /usr/local/cuda/lib64; no CUDA device");
        }
        assertThat(missing.opened).isFalse();
    }

    @Test
    void anUnknownBackendNamesTheKnownOnes() {
        assertThatThrownBy(() -> ComputeBackends.find("tpu", List.of(new CpuBackendProvider(), new Missing())))
                .hasMessage("--device: unknown compute backend 'tpu'; known: cpu, gpu-test");
    }

    @Test
    void deviceSpecsNameABackendAndMaybeAnIndex() {
        assertThat(DeviceSpec.parse("cpu")).isEqualTo(new DeviceSpec("cpu", OptionalInt.empty()));
        assertThat(DeviceSpec.parse("cuda:1").index()).hasValue(1);
        assertThat(DeviceSpec.parse("cuda:1").toString()).isEqualTo("cuda:1");
        assertThat(DeviceSpec.parse("cuda").indexOrZero()).isZero();
        for (String bad : new String[] {"", "cuda:", "cuda:-1", ":1", "cuda:x", "CUDA"}) {
            assertThatThrownBy(() -> DeviceSpec.parse(bad)).hasMessageStartingWith("--device: '" + bad + "' is not NAME");
        }
    }

    @Test
    void anIndexIsRefusedByABackendWithoutDevicesAndCheckedByOneWithDevices() {
        assertThatThrownBy(() -> ComputeBackends.provider("cpu:0")).hasMessage("--device cpu:0: cpu takes no device index");
        Missing missing = new Missing() {
            @Override
            public boolean hasDevices() {
                return true;
            }

            @Override
            public Availability availability(int index) {
                return Availability.no("device " + index + " not found: 1 CUDA device");
            }
        };
        try (WorkerPool pool = new WorkerPool(1, "t")) {
            assertThatThrownBy(() -> ComputeBackends.open(new DeviceSpec("gpu-test", OptionalInt.of(3)),
                    List.of(missing), pool)).hasMessage("--device gpu-test:3: cannot run on this machine: "
                            + "device 3 not found: 1 CUDA device");
        }
        assertThat(missing.opened).isFalse();
    }

    @Test
    void availabilityIsAValueWithReasonsOnlyWhenUnavailable() {
        assertThat(Availability.yes().describe()).isEqualTo("available");
        assertThat(Availability.no("a", "b").reasons()).containsExactly("a", "b");
        assertThatThrownBy(() -> new Availability(true, List.of("why"))).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Availability(false, List.of())).isInstanceOf(IllegalArgumentException.class);
    }
}
