package dev.tornadolora.device;

import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Opening devices by name (this module's tests run without the TornadoVM backend), and that one thread setting
 * governs every op of a model: with {@code threads = 1} no thread but the caller's works.
 */
class DeviceTest {

    @Test
    void aTornadoDeviceWithoutTheBackendSaysWhatIsMissing() {
        var e = assertThrows(IllegalArgumentException.class, () -> Device.open("tornado:0:0", DeviceOptions.defaults()));
        assertEquals("device 'tornado:0:0' is not available: the TornadoVM backend is not on the class path: it needs"
                + " the tornado-tasks jar and a JVM started with a TornadoVM SDK's tornado-argfile (see setup-tornado.sh);"
                + " available: jvm, reference", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Device.open("cuda", DeviceOptions.defaults()));
        assertTrue(e.getMessage().startsWith("device 'cuda' is not available (GPUs and other accelerators are"
                + " TornadoVM devices, named tornado:BACKEND:DEVICE): "), e.getMessage());
        assertTrue(e.getMessage().endsWith("; available: jvm, reference"), e.getMessage());
    }

    @Test
    void theLaunchersReasonForAMissingTornadoVmComesThroughTheOptions() {
        DeviceOptions o = DeviceOptions.defaults().withAcceleratorMissing("no TornadoVM SDK at /opt/x (TORNADOVM_HOME)");
        var e = assertThrows(IllegalArgumentException.class, () -> Device.open("tornado", o));
        assertEquals("device 'tornado' is not available: no TornadoVM SDK at /opt/x (TORNADOVM_HOME); available: jvm,"
                + " reference", e.getMessage());
    }

    @Test
    void anUnknownNameListsTheDevices() {
        var e = assertThrows(IllegalArgumentException.class, () -> Device.open("jvn", DeviceOptions.defaults()));
        assertEquals("unknown device 'jvn'; available: jvm, reference", e.getMessage());
        assertEquals(List.of("jvm", "reference"), Device.available());
    }

    @Test
    void namesSelectTheirBackendAndTheThreadSettingSizesTheExecutor() {
        try (Device auto = Device.open("auto", DeviceOptions.defaults().withThreads(3));
             Device ref = Device.open(" reference ", DeviceOptions.defaults().withThreads(1))) {
            assertEquals("jvm", auto.backend().name(), "auto without an accelerator is the JVM backend");
            assertEquals(3, auto.threads());
            assertEquals(3, auto.executor().size());
            assertEquals("reference", ref.backend().name());
            assertEquals(1, ref.threads());
        }
        var e = assertThrows(IllegalArgumentException.class, () -> DeviceOptions.defaults().withThreads(0));
        assertEquals("threads must be at least 1, got 0", e.getMessage());
    }

    private static final Set<String> JVM_REFERENCE_THREADS = Set.of("Reference Handler", "Finalizer", "Common-Cleaner");

    /** How a device's executor names its pool threads. */
    private static final String WORKER = "tornado-lora-worker-";

    /** A 1-layer Llama whose ops (attention pairs, RoPE tokens, SwiGLU elements, loss rows) split over 2 threads. */
    private static final LlamaConfig TINY = new LlamaConfig(256, 128, 256, 1, 4, 4, 32, 1e-5, 10000.0, null, false,
            64, 0, 1, "float32");
    private static final LoraSettings LORA = new LoraSettings(Set.of("q_proj", "v_proj"), true, false, 2, 4f, 0f,
            false, false);

    @Test
    void oneThreadMeansEveryOpOfAForwardAndBackwardRunsOnTheCallersThread() throws Exception {
        Work one = forwardBackward(1);
        assertTrue(one.started().stream().noneMatch(n -> n.startsWith(WORKER)), "threads started with threads=1: "
                + one.started());
        assertTrue(one.othersWorking().isEmpty(), "threads other than the caller's worked with threads=1: "
                + one.othersWorking() + " (the caller's CPU: " + one.callerCpuNanos() / 1_000_000 + " ms)");
    }

    @Test
    void twoThreadsMeansTheCallerAndOneWorkerOfTheDevice() throws Exception {
        Work two = forwardBackward(2);
        List<String> workers = two.started().stream().filter(n -> n.startsWith(WORKER)).toList();
        assertEquals(1, workers.size(), "threads started with threads=2: " + two.started());
        String worker = workers.get(0);
        assertTrue(two.othersWorking().stream().allMatch(worker::equals),
                "only the device's worker works beside the caller: " + two.othersWorking());
        assertFalse(two.workerAliveAfterClose(), "close() stops the device's worker");
    }

    /**
     * @param started              names of threads started while the model ran forward and backward
     * @param othersWorking        names of threads besides the caller that used more CPU than the noise floor
     * @param callerCpuNanos       the caller's CPU time over the run
     * @param workerAliveAfterClose whether a started thread still ran a while after the device was closed
     */
    private record Work(Set<String> started, Set<String> othersWorking, long callerCpuNanos,
                        boolean workerAliveAfterClose) {}

    private static Work forwardBackward(int threads) throws InterruptedException {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        int batch = 4, seq = 32;
        int[] ids = new int[batch * seq];
        SplittableRandom rnd = new SplittableRandom(5);
        for (int i = 0; i < ids.length; i++) ids[i] = rnd.nextInt(TINY.vocabSize());
        Set<Thread> before = new HashSet<>(Thread.getAllStackTraces().keySet());
        Map<Long, Long> cpuBefore = new HashMap<>();
        for (long id : mx.getAllThreadIds()) cpuBefore.put(id, mx.getThreadCpuTime(id));
        long callerBefore = mx.getCurrentThreadCpuTime();
        Set<Thread> started = new HashSet<>();
        Set<String> working = new HashSet<>();
        long caller;
        try (Device device = Device.open("jvm", DeviceOptions.defaults().withThreads(threads))) {
            try (LlamaForCausalLM m = LlamaForCausalLM.random(TINY, LORA, 7, device)) {
                m.train(true);
                for (int step = 0; step < 5; step++) {
                    m.zeroGrad();
                    m.forwardBackward(ids, ids, batch, seq, 1.0);
                    m.loss(ids, ids, batch, seq);
                }
            }
            caller = mx.getCurrentThreadCpuTime() - callerBefore;
            for (Thread t : Thread.getAllStackTraces().keySet()) {
                if (!before.contains(t)) started.add(t);
            }
            long self = Thread.currentThread().threadId();
            for (long id : mx.getAllThreadIds()) {
                long now = mx.getThreadCpuTime(id);
                long delta = now - cpuBefore.getOrDefault(id, 0L);
                // Noise floor: JUnit's and the JVM's own threads use far less than a twentieth of the work.
                if (id != self && now >= 0 && delta > caller / 20) {
                    var info = mx.getThreadInfo(id);
                    // The JVM's reference-processing threads run when a collection falls inside the work: not
                    // compute threads a device could have started.
                    if (info != null && !JVM_REFERENCE_THREADS.contains(info.getThreadName())) {
                        working.add(info.getThreadName());
                    }
                }
            }
        }
        boolean alive = false;
        for (Thread t : started) {
            t.join(5000);
            alive |= t.isAlive();
        }
        Set<String> names = new HashSet<>();
        started.forEach(t -> names.add(t.getName()));
        return new Work(names, working, caller, alive);
    }
}
