package dev.tornadolora.kernels;

import java.util.List;

/** A backend that lives outside the core jar (TornadoVM), found with {@link java.util.ServiceLoader}. */
public interface LoraKernelsProvider {
    /** The device-name prefix it answers to, e.g. {@code tornado}. */
    String prefix();

    /** Whether its runtime is present and has at least one device. */
    boolean available();

    /** Why {@link #available()} is false, for the user. */
    String unavailableReason();

    /** Its device names, e.g. {@code tornado:0:0}. */
    List<String> deviceNames();

    /** Its devices, described (only called when {@link #available()}). */
    List<DeviceInfo> describeDevices();

    /** Its first accelerator (a non-CPU device) by name, or null when it has none; {@code auto} picks it. */
    String acceleratorDevice();

    /**
     * The backend of {@code device} (the bare prefix means the runtime's default device), with the provider's
     * settings by name (unknown names are an {@link IllegalArgumentException}).
     */
    LoraBackend open(String device, java.util.Map<String, String> settings);
}
