package dev.tornadolora.kernels;

/**
 * A device as the {@code devices} command lists it: the name to select it with ({@code jvm}, {@code tornado:0:0}),
 * what it is, and for accelerators the backend kind (OpenCL, PTX, SPIR-V) and global memory.
 */
public record DeviceInfo(String name, String description, String vendor, String kind, long globalMemoryBytes,
                         String details) {}
