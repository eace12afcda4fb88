package dev.tornadolora.tornado;

import dev.tornadolora.cli.Main;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.device.Device;
import dev.tornadolora.device.DeviceOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The backend as users reach it: by device name through the ServiceLoader, and from the eval command. */
class TornadoCliTest {
    @TempDir
    Path dir;

    @Test
    void deviceNamesSelectTheTornadoBackend() {
        for (String name : List.of("tornado:0:0", "tornado")) {
            try (Device d = Device.open(name, DeviceOptions.defaults())) {
                assertInstanceOf(TornadoLoraBackend.class, d.backend());
            }
        }
        // auto prefers accelerators; PoCL's CPU device is not one (the JVM backend is faster on the same cores)
        var device = new TornadoKernelsProvider().resolve("tornado:0:0");
        try (Device auto = Device.open("auto", DeviceOptions.defaults())) {
            if (device.getDeviceType() == uk.ac.manchester.tornado.api.enums.TornadoDeviceType.CPU) {
                assertEquals("jvm", auto.backend().name());
            } else {
                assertInstanceOf(TornadoLoraBackend.class, auto.backend());
            }
        }
        assertTrue(Device.available().contains("tornado:0:0"), Device.available().toString());
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> Device.open("tornado:9:0", DeviceOptions.defaults()));
        assertEquals("device 'tornado:9:0' does not exist; available: [tornado:0:0]", e.getMessage());
    }

    /** eval on the device against PyTorch's autograd (the golden fixtures of the core project), fp32 and NF4. */
    @Test
    void evalOnTheDeviceMatchesPyTorch() throws Exception {
        for (String name : List.of("lora_r4_bias", "lora_r64_bias", "qlora_sq256_r16_bias", "qlora_in1024_r8_bs32")) {
            Path fixture = golden(name);
            Path out = dir.resolve(name + ".out.safetensors");
            StringWriter err = new StringWriter();
            int code = Main.run(new PrintWriter(new StringWriter()), new PrintWriter(err), "eval", "--device", "tornado:0:0",
                    "--checkpoint", fixture.toString(), "--input", fixture.toString(), "--grad-output", fixture.toString(),
                    "--output", out.toString());
            assertEquals(0, code, err.toString());
            SafeTensors o = SafeTensors.open(out), g = SafeTensors.open(fixture);
            assertEquals("tornado:0:0", o.metadata().get("device"));
            for (String t : List.of("y", "dx", "lora_a.weight.grad", "lora_b.weight.grad")) {
                TornadoBackendTest.assertClose(g.f32(t).data(), o.f32(t).data(), name + " " + t);
            }
        }
    }

    private static Path golden(String name) throws URISyntaxException {
        // the core project's fixtures, next to this module
        return Path.of("..", "src", "core", "src", "test", "resources", "golden", name + ".safetensors").toAbsolutePath().normalize();
    }
}
