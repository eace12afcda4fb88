package dev.tornadolora.testing;

import dev.tornadolora.device.Device;
import dev.tornadolora.device.DeviceOptions;

/**
 * The devices tests run on, opened once per test JVM (as a program opens its device once at its edge) and never
 * closed: their threads are daemons. Tests about opening and closing devices open their own.
 */
public final class TestDevices {
    private static Device jvm;
    private static Device reference;

    private TestDevices() {}

    /** The JVM backend on all cores. */
    public static synchronized Device jvm() {
        if (jvm == null) {
            jvm = Device.open("jvm", DeviceOptions.defaults());
        }
        return jvm;
    }

    /** The scalar reference backend (its other ops on all cores). */
    public static synchronized Device reference() {
        if (reference == null) {
            reference = Device.open("reference", DeviceOptions.defaults());
        }
        return reference;
    }

    /** {@link #jvm()} or {@link #reference()} by name. */
    public static Device named(String name) {
        return switch (name) {
            case "jvm" -> jvm();
            case "reference" -> reference();
            default -> throw new IllegalArgumentException("no test device '" + name + "'");
        };
    }
}
