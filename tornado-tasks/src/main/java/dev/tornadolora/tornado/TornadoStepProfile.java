package dev.tornadolora.tornado;

import dev.tornadolora.bench.ModelStep;
import dev.tornadolora.bench.Stats;
import dev.tornadolora.device.Device;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.tornado.plan.LlamaDevicePlan;
import uk.ac.manchester.tornado.api.common.TornadoDevice;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Where the time of a whole training step on the device plan ({@link LlamaDevicePlan}) goes: end-to-end
 * milliseconds per step and, from TornadoVM's profiler, the kernel time of every stage and every task (summed
 * over the layers: {@code layer0Forward.forward_q} and {@code layer3Forward.forward_q} count as
 * {@code forward_q}), largest first. For the speed work on the kernels; {@code bench --ops step} gives the
 * comparison with the JVM backend.
 *
 * <pre>
 *   java @$TORNADOVM_HOME/tornado-argfile -Dtornado.enable.fma=False -Dtornado.tvm.maxbytecodesize=1048576 \
 *        --add-modules jdk.incubator.vector -cp src/cli/target/tornado-lora.jar:src/cli/target/lib/*:tornado-tasks/target/tornado-lora-tasks.jar \
 *        dev.tornadolora.tornado.TornadoStepProfile [bench|small] [fp32|nf4] [qv|all] [steps]
 * </pre>
 */
public final class TornadoStepProfile {
    private TornadoStepProfile() {}

    public static void main(String[] args) {
        String shape = args.length > 0 ? args[0] : "bench";
        boolean nf4 = args.length > 1 && args[1].equals("nf4");
        boolean all = args.length > 2 && args[2].equals("all");
        int steps = args.length > 3 ? Integer.parseInt(args[3]) : 3;
        ModelStep m = ModelStep.of(shape, all);
        TornadoDevice device = new TornadoKernelsProvider().resolve("tornado:0:0");
        var opt = new LlamaDevicePlan.Optimizer(0.9, 0.999, 1e-8, 0.01, 1.0);
        SplittableRandom rng = new SplittableRandom(2);
        int[] ids = new int[m.tokens()];
        for (int i = 0; i < ids.length; i++) ids[i] = rng.nextInt(m.config().vocabSize());
        try (Device host = Device.open("jvm");
             LlamaForCausalLM model = LlamaForCausalLM.random(m.config(), m.lora(16, nf4), 1, host);
             LlamaDevicePlan plan = new LlamaDevicePlan(model, m.batch(), m.seq(), opt, device, true)) {
            List<Double> ms = new ArrayList<>();
            Map<String, List<Double>> byGraph = new LinkedHashMap<>(), byTask = new LinkedHashMap<>();
            for (int i = 0; i <= steps; i++) {  // step 0 compiles
                plan.profileTasks(i > 0);
                long t0 = System.nanoTime();
                double loss = plan.forwardBackward(ids, ids, 1.0);
                plan.step(1e-4);
                double elapsed = (System.nanoTime() - t0) / 1e6;
                LlamaDevicePlan.StepProfile p = plan.takeProfile();
                Map<String, Long> tasks = plan.takeTaskProfile();
                System.out.printf(Locale.ROOT, "step %d: %.0f ms, loss %.6f, %d launches, %d B in, %d B out%s%n", i,
                        elapsed, loss, p.launches(), p.copyInBytes(), p.copyOutBytes(), i == 0 ? String.format(Locale.ROOT, " (compiles); device memory %.1f MiB",
                                plan.deviceBytes() / 1048576.0) : "");
                if (i == 0) continue;
                ms.add(elapsed);
                Map<String, Double> g = new LinkedHashMap<>();
                p.kernelNanosByGraph().forEach((k, v) -> g.merge(k.replaceAll("\\d+", "#"), v / 1e6, Double::sum));
                g.forEach((k, v) -> byGraph.computeIfAbsent(k, x -> new ArrayList<>()).add(v));
                Map<String, Double> t = new LinkedHashMap<>();
                tasks.forEach((k, v) -> t.merge(k.substring(k.indexOf('.') + 1), v / 1e6, Double::sum));
                t.forEach((k, v) -> byTask.computeIfAbsent(k, x -> new ArrayList<>()).add(v));
            }
            System.out.printf(Locale.ROOT, "%s %s %s on %s: %.0f ms/step median of %d, %.1f GFLOP/s; kernel ms per"
                    + " stage (all layers):%n", shape, nf4 ? "nf4" : "fp32", m.modules(),
                    device.getPhysicalDevice().getDeviceName(), Stats.median(ms), ms.size(),
                    m.flops(16) / Stats.median(ms) / 1e6);
            print(byGraph, 40);
            System.out.println("kernel ms per task (all layers), largest first:");
            print(byTask, 200);
        }
    }

    private static void print(Map<String, List<Double>> ms, int rows) {
        Map<String, Double> median = new LinkedHashMap<>();
        ms.forEach((k, v) -> median.put(k, Stats.median(v.stream().mapToDouble(Double::doubleValue).sorted().toArray())));
        double total = median.values().stream().mapToDouble(Double::doubleValue).sum();
        median.entrySet().stream().sorted(Map.Entry.<String, Double>comparingByValue().reversed()).limit(rows)
                .forEach(e -> System.out.printf(Locale.ROOT, "  %-34s %9.2f ms  %5.1f %%%n", e.getKey(), e.getValue(),
                        100 * e.getValue() / total));
        System.out.printf(Locale.ROOT, "  %-34s %9.2f ms%n", "total", total);
    }
}
