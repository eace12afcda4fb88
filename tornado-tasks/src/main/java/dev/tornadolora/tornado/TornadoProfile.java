package dev.tornadolora.tornado;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.bench.Stats;
import dev.tornadolora.bench.Workload;
import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.tornado.plan.Nf4Variant;
import dev.tornadolora.tornado.plan.TornadoLayer;
import uk.ac.manchester.tornado.api.common.TornadoDevice;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * Where the time of a LoRA layer goes on a TornadoVM device: end-to-end milliseconds per call and, from
 * TornadoVM's profiler, the kernel time of every task and the transfer time. For the measurements of the
 * TornadoVM backend (the {@code bench} command gives the cross-device comparison).
 *
 * <pre>
 *   java @$TORNADOVM_HOME/tornado-argfile -Dtornado.enable.fma=False --add-modules jdk.incubator.vector \
 *        -cp target/tornado-lora.jar:target/lib/*:tornado-tasks/target/tornado-lora-tasks.jar \
 *        dev.tornadolora.tornado.TornadoProfile [dim] [tokens] [fp32|nf4] [FUSED|DEQUANTIZE_TASK] [forward|backward] [reps]
 * </pre>
 */
public final class TornadoProfile {
    private TornadoProfile() {}

    public static void main(String[] args) {
        int dim = args.length > 0 ? Integer.parseInt(args[0]) : 4096;
        int tokens = args.length > 1 ? Integer.parseInt(args[1]) : 512;
        boolean nf4 = args.length > 2 && args[2].equals("nf4");
        Nf4Variant variant = args.length > 3 ? Nf4Variant.valueOf(args[3]) : Nf4Variant.FUSED;
        boolean backward = args.length > 4 && args[4].equals("backward");
        int reps = args.length > 5 ? Integer.parseInt(args[5]) : 5;
        int rank = 16;

        TornadoDevice device = new TornadoKernelsProvider().resolve("tornado:0:0");
        TornadoLoraBackend backend = new TornadoLoraBackend("tornado:0:0", device,
                new TornadoOptions(null, nf4 ? variant : null, 16, 16));
        LoRALinear layer = LoRALinear.builder(dim, dim).rank(rank).alpha(32).quantizeBase(nf4).seed(1).build();
        layer.load("lora_b.weight", Tensor.of(random(dim * rank, 2), dim, rank));
        float[] x = random(tokens * dim, 3), dy = random(tokens * dim, 4);
        float[] y = new float[tokens * dim], dx = new float[tokens * dim];
        Adapters adapters = new Adapters(layer.loraA(), layer.loraB());
        Adapters grads = new Adapters(new float[rank * dim], new float[dim * rank]);
        Workload workload = new Workload(backward ? Workload.Op.FORWARD_BACKWARD : Workload.Op.FORWARD,
                nf4 ? Workload.Base.NF4 : Workload.Base.FP32, tokens, dim, dim, rank);

        try (TornadoLayer bound = backend.bind(layer.base(), layer.bias(), rank, layer.scale())) {
            bound.setProfiling(true);
            List<Double> ms = new ArrayList<>();
            List<LayerKernels.Profiling.Profile> profiles = new ArrayList<>();
            Map<String, List<Double>> taskMs = new TreeMap<>();
            for (int i = 0; i <= reps; i++) { // call 0 compiles
                long t0 = System.nanoTime();
                LayerKernels.Activations saved = bound.forward(x, null, tokens, adapters, y);
                LayerKernels.Profiling.Profile p = bound.lastProfile();
                if (backward) {
                    bound.backward(saved, dy, dx, adapters, grads);
                    p = bound.lastProfile();
                }
                double elapsed = (System.nanoTime() - t0) / 1e6;
                if (i == 0) {
                    System.out.printf(Locale.ROOT, "first call (compiles): %.0f ms, compile %.0f ms; device memory %.1f MiB%n",
                            elapsed, p.compileMs(), bound.deviceBytes() / 1048576.0);
                    continue;
                }
                ms.add(elapsed);
                profiles.add(p);
                collectTasks(bound.lastProfileLog(), taskMs);
            }
            double median = Stats.median(ms);
            System.out.printf(Locale.ROOT, "%s %s%s %dx%d rank %d, %d tokens on %s (%s): %.2f ms/call median, %.1f GFLOP/s%n",
                    backward ? "forward+backward" : "forward", nf4 ? "nf4" : "fp32", nf4 ? " " + bound.variant() : "",
                    dim, dim, rank, tokens, device.getPhysicalDevice().getDeviceName(), backend.schedule(), median,
                    workload.flops() / median / 1e6);
            System.out.printf(Locale.ROOT, "  %s graph: kernels %.2f ms, transfers %.2f ms (medians); per task:%n",
                    backward ? "backward" : "forward",
                    Stats.median(profiles.stream().map(LayerKernels.Profiling.Profile::kernelMs).toList()),
                    Stats.median(profiles.stream().map(LayerKernels.Profiling.Profile::transferMs).toList()));
            taskMs.forEach((task, v) -> System.out.printf(Locale.ROOT, "    %-28s %8.3f ms%n", task, Stats.median(v)));
        }
    }

    /** Adds each task's kernel time (ms) from TornadoVM's JSON profile log. */
    private static void collectTasks(String log, Map<String, List<Double>> out) {
        if (log == null) return;
        try {
            JsonNode root = new ObjectMapper().readTree(log);
            for (Iterator<Map.Entry<String, JsonNode>> graphs = root.fields(); graphs.hasNext(); ) {
                for (Iterator<Map.Entry<String, JsonNode>> tasks = graphs.next().getValue().fields(); tasks.hasNext(); ) {
                    Map.Entry<String, JsonNode> t = tasks.next();
                    JsonNode kernel = t.getValue().get("TASK_KERNEL_TIME");
                    if (kernel != null) {
                        out.computeIfAbsent(t.getKey(), k -> new ArrayList<>()).add(kernel.asDouble() / 1e6);
                    }
                }
            }
        } catch (Exception e) {
            System.out.println("  (profile log not parsed: " + e.getMessage() + ")");
        }
    }

    private static float[] random(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextDouble() * 2 - 1);
        return a;
    }
}
