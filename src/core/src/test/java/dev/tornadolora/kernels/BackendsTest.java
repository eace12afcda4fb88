package dev.tornadolora.kernels;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Device names the process cannot serve say why (this module's tests run without the TornadoVM backend). */
class BackendsTest {

    @Test
    void aTornadoDeviceWithoutTheBackendSaysWhatIsMissing() {
        var e = assertThrows(IllegalArgumentException.class, () -> Backends.forDevice("tornado:0:0"));
        assertEquals("device 'tornado:0:0' is not available: the TornadoVM backend is not on the class path: it needs"
                + " the tornado-tasks jar and a JVM started with a TornadoVM SDK's tornado-argfile (see setup-tornado.sh);"
                + " available: jvm, reference", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Backends.forDevice("cuda"));
        assertTrue(e.getMessage().startsWith("device 'cuda' is not available (GPUs and other accelerators are"
                + " TornadoVM devices, named tornado:BACKEND:DEVICE): "), e.getMessage());
    }

    @Test
    void anUnknownNameListsTheDevices() {
        var e = assertThrows(IllegalArgumentException.class, () -> Backends.forDevice("jvn"));
        assertEquals("unknown device 'jvn'; available: jvm, reference", e.getMessage());
    }
}
