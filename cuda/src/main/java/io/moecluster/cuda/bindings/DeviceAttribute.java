package io.moecluster.cuda.bindings;

/**
 * The {@code cudaDeviceAttr} values this project reads with {@code cudaDeviceGetAttribute} (stable
 * numbers across CUDA 12 and 13, unlike the {@code cudaDeviceProp} struct).
 */
public enum DeviceAttribute {
    MAX_THREADS_PER_BLOCK(1, "max threads per block"),
    MAX_SHARED_MEMORY_PER_BLOCK(8, "shared memory per block (bytes)"),
    WARP_SIZE(10, "warp size"),
    MULTIPROCESSOR_COUNT(16, "multiprocessors"),
    INTEGRATED(18, "integrated"),
    CONCURRENT_KERNELS(31, "concurrent kernels"),
    ECC_ENABLED(32, "ECC enabled"),
    PCI_BUS_ID(33, "PCI bus"),
    PCI_DEVICE_ID(34, "PCI device"),
    GLOBAL_MEMORY_BUS_WIDTH(37, "memory bus width (bits)"),
    L2_CACHE_SIZE(38, "L2 cache (bytes)"),
    MAX_THREADS_PER_MULTIPROCESSOR(39, "max threads per multiprocessor"),
    ASYNC_ENGINE_COUNT(40, "copy engines"),
    UNIFIED_ADDRESSING(41, "unified addressing"),
    PCI_DOMAIN_ID(50, "PCI domain"),
    COMPUTE_CAPABILITY_MAJOR(75, "compute capability major"),
    COMPUTE_CAPABILITY_MINOR(76, "compute capability minor"),
    MAX_SHARED_MEMORY_PER_MULTIPROCESSOR(81, "shared memory per multiprocessor (bytes)"),
    MAX_REGISTERS_PER_MULTIPROCESSOR(82, "registers per multiprocessor"),
    MANAGED_MEMORY(83, "managed memory"),
    MAX_SHARED_MEMORY_PER_BLOCK_OPTIN(97, "shared memory per block, opt-in (bytes)"),
    MAX_BLOCKS_PER_MULTIPROCESSOR(106, "max blocks per multiprocessor"),
    MEMORY_POOLS_SUPPORTED(115, "memory pools"),
    GPU_DIRECT_RDMA_SUPPORTED(116, "GPUDirect RDMA");

    private final int code;
    private final String description;

    DeviceAttribute(int code, String description) {
        this.code = code;
        this.description = description;
    }

    /** The {@code cudaDeviceAttr} number. */
    public int code() {
        return code;
    }

    public String description() {
        return description;
    }
}
