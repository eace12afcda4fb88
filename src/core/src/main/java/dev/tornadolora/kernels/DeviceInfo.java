package dev.tornadolora.kernels;

/**
 * A device as the {@code devices} command lists it: the name to select it with ({@code jvm}, {@code tornado:0:0}),
 * what it is, and for accelerators the backend kind (OpenCL, PTX, SPIR-V) and global memory.
 *
 * @param name              the name {@code --device} takes
 * @param description       what it is, e.g. the CPU and its vector width
 * @param vendor            who makes it
 * @param kind              the backend kind: JVM, OpenCL, PTX, SPIR-V
 * @param globalMemoryBytes its memory (the JVM's max heap for the JVM backend)
 * @param details           more, e.g. the device type and the kernels' schedule
 */
public record DeviceInfo(String name, String description, String vendor, String kind, long globalMemoryBytes,
                         String details) {}
