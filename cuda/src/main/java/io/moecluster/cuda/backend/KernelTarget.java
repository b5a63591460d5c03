package io.moecluster.cuda.backend;

import io.moecluster.cuda.bindings.Cudart;
import io.moecluster.cuda.bindings.Nvrtc;

/**
 * What NVRTC compiles the kernels to on this machine. PTX is compiled again by the driver when it is
 * loaded, and a driver refuses PTX of an ISA newer than itself: PTX from NVRTC 13.1 (ISA 9.1) does
 * not load on a CUDA 13.0 driver. So where NVRTC is newer than the driver the kernels go to CUBIN
 * for the device's exact architecture (loadable by any driver of the same major), else to PTX.
 * {@code -Dmoe.cuda.kernels=cubin|ptx} decides instead.
 */
public final class KernelTarget {
    public static final String PROPERTY = "moe.cuda.kernels";

    private KernelTarget() {
    }

    /**
     * @param nvrtc {major, minor} of NVRTC
     * @param driverVersion {@code cudaDriverGetVersion}, e.g. 13000
     */
    public static Nvrtc.Output choose(int[] nvrtc, int driverVersion) {
        String forced = System.getProperty(PROPERTY, "").strip();
        if (!forced.isEmpty()) {
            return switch (forced) {
                case "cubin" -> Nvrtc.Output.CUBIN;
                case "ptx" -> Nvrtc.Output.PTX;
                default -> throw new IllegalArgumentException("-D" + PROPERTY + ": '" + forced + "' is not cubin or ptx");
            };
        }
        return nvrtc[0] * 1000 + nvrtc[1] * 10 > driverVersion ? Nvrtc.Output.CUBIN : Nvrtc.Output.PTX;
    }

    /** Why, for the log: "CUBIN sm_90 (NVRTC 13.1 is newer than the driver's CUDA 13.0)". */
    public static String explain(Nvrtc.Output output, int[] nvrtc, int driverVersion, int ccMajor, int ccMinor) {
        String nv = "NVRTC " + nvrtc[0] + "." + nvrtc[1];
        String drv = "the driver's CUDA " + Cudart.versionString(driverVersion);
        String forced = System.getProperty(PROPERTY, "").isBlank() ? "" : ", -D" + PROPERTY;
        return output == Nvrtc.Output.CUBIN
                ? "CUBIN sm_" + ccMajor + ccMinor + " (" + nv + (forced.isEmpty() ? " is newer than " + drv : forced) + ")"
                : "PTX compute_" + ccMajor + ccMinor + " (" + nv + (forced.isEmpty() ? ", not newer than " + drv : forced) + ")";
    }
}
