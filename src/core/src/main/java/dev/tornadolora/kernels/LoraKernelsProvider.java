package dev.tornadolora.kernels;

import java.util.List;

/** A backend that lives outside the core jar (TornadoVM), found with {@link java.util.ServiceLoader}. */
public interface LoraKernelsProvider {
    /** {@return the device-name prefix it answers to, e.g. {@code tornado}} */
    String prefix();

    /** {@return whether its runtime is present and has at least one device} */
    boolean available();

    /** {@return why {@link #available()} is false, for the user} */
    String unavailableReason();

    /** {@return its device names, e.g. {@code tornado:0:0}} */
    List<String> deviceNames();

    /** {@return its devices, described (only called when {@link #available()})} */
    List<DeviceInfo> describeDevices();

    /** {@return its first accelerator (a non-CPU device) by name, or null when it has none; {@code auto} picks it} */
    String acceleratorDevice();

    /**
     * {@return kernels for that device}
     *
     * @param device a name with its prefix; the bare prefix means the runtime's default device
     */
    LoraKernels open(String device);
}
