package dev.tornadolora.cli;

import dev.tornadolora.device.Device;
import picocli.CommandLine.Option;

/**
 * The {@code --device} option of the commands that compute on one device ({@code finetune}, {@code train},
 * {@code eval}, {@code forward}, {@code generate}): the name is turned into a {@link Device} here, at the edge, with
 * the {@code -Dtornadolora.*} options ({@link BackendProperties}), and passed down as that value. It stays a name
 * until {@link #open()} because a {@code Device} owns threads: each command opens it where its own order of checks
 * puts it (after its inputs and output folder are checked), and a Spark run ships the name to executors that open
 * their own. ({@code bench} takes a repeatable list of devices, a different option.)
 */
final class DeviceOption {
    @Option(names = "--device", paramLabel = "D", defaultValue = "auto",
            description = "auto (an accelerator when present, else jvm), jvm, reference, tornado[:B:D]")
    private String name;

    /** The device the name selects, with the {@code -Dtornadolora.*} options; the caller closes it. */
    Device open() {
        return BackendProperties.open(name);
    }

    /** The name as given ({@code auto} unless set), for a launcher whose workers open the device themselves. */
    String name() {
        return name;
    }
}
