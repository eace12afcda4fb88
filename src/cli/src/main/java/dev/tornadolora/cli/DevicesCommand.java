package dev.tornadolora.cli;

import dev.tornadolora.bench.DeviceListing;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;

/** Lists the devices {@code --device} accepts, with what they are. */
@Command(name = "devices", mixinStandardHelpOptions = true, description = {
        "Lists the devices this process can run on: the JVM backend (cores, vector",
        "width, CPU, max heap) and every TornadoVM device (tornado:BACKEND:DEVICE, name,",
        "vendor, OpenCL/PTX/SPIR-V, global memory) when the launcher found an SDK",
        "(TORNADOVM_HOME) and a built tornado-tasks jar. Any of them is a --device.", ""})
final class DevicesCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--json", description = "print JSON instead of text")
    boolean json;

    @Override
    public Integer call() throws IOException {
        DeviceListing listing = DeviceListing.current();
        var out = spec.commandLine().getOut();
        out.print(json ? new String(listing.json(), StandardCharsets.UTF_8) + System.lineSeparator() : listing.text());
        out.flush();
        return 0;
    }
}
