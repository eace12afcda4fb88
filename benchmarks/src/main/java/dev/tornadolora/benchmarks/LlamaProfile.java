package dev.tornadolora.benchmarks;

import dev.tornadolora.device.DeviceOptions;
import dev.tornadolora.device.Device;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.llama.OpTimer;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * The Llama step of issue 14 on the JVM side, with the share of each op: a 4-layer Llama (hidden 1024, 16 heads,
 * 4 KV heads, head_dim 64, intermediate 2816, vocab 8192), batch 2 × 256, LoRA r 16 α 32 on q/v or on every
 * projection, fp32 or NF4 base. One step = forwardBackward (logits, loss, backward into the adapters).
 * <pre>
 *   java --add-modules jdk.incubator.vector -cp benchmarks.jar dev.tornadolora.benchmarks.LlamaProfile fp32|qlora qv|all [steps] [device]
 * </pre>
 * Prints the median step time, the per-op shares, the model's weight bytes and the peak heap of the steps.
 */
public final class LlamaProfile {
    private LlamaProfile() {}

    public static LlamaConfig benchmarkConfig() {
        return dev.tornadolora.bench.ModelStep.BENCH;  // the one definition, bench's model step reads it too
    }

    public static LoraSettings benchmarkLora(boolean qlora, boolean all) {
        return new LoraSettings(all ? Set.of("q_proj", "k_proj", "v_proj", "o_proj") : Set.of("q_proj", "v_proj"),
                all, false, 16, 32f, 0f, false, qlora);
    }

    public static void main(String[] args) throws java.io.IOException {
        if (args.length > 0 && args[0].equals("write")) {
            writeCheckpoint(java.nio.file.Path.of(args[1]), args.length > 2 && args[2].equals("bf16"));
            return;
        }
        if (args.length > 0 && args[0].equals("load")) {
            measureLoad(java.nio.file.Path.of(args[1]), args.length > 2 && args[2].equals("qlora"));
            return;
        }
        boolean qlora = args.length > 0 && args[0].equals("qlora");
        boolean all = args.length > 1 && args[1].equals("all");
        int steps = args.length > 2 ? Integer.parseInt(args[2]) : 5;
        String device = args.length > 3 ? args[3] : "jvm";
        int batch = 2, seq = 256;
        LlamaConfig c = benchmarkConfig();
        long heapBefore = usedHeapAfterGc();
        try (Device d = Device.open(device, DeviceOptions.defaults());
             LlamaForCausalLM m = LlamaForCausalLM.random(c, benchmarkLora(qlora, all), 1, d)) {
            long modelBytes = usedHeapAfterGc() - heapBefore;
            SplittableRandom rng = new SplittableRandom(2);
            int[] ids = new int[batch * seq], labels = new int[batch * seq];
            for (int i = 0; i < ids.length; i++) labels[i] = ids[i] = rng.nextInt(c.vocabSize());
            m.train(true);
            for (int w = 0; w < 2; w++) {
                m.zeroGrad();
                m.forwardBackward(ids, labels, batch, seq, 1.0);
            }
            resetPeaks();
            long base = usedHeapAfterGc();
            resetPeaks();
            m.timer().enable(true);
            m.timer().reset();
            double[] ms = new double[steps];
            for (int s = 0; s < steps; s++) {
                m.zeroGrad();
                long t0 = System.nanoTime();
                m.forwardBackward(ids, labels, batch, seq, 1.0);
                ms[s] = (System.nanoTime() - t0) / 1e6;
            }
            long peak = peakHeap();
            Arrays.sort(ms);
            System.out.printf("llama-%s-step%s device=%s threads=%d: median %.1f ms, best %.1f ms over %d steps%n",
                    qlora ? "qlora" : "fp32", all ? "-all" : "", m.backend().name(),
                    d.threads(), ms[steps / 2], ms[0], steps);
            Map<OpTimer.Op, Long> r = m.timer().report();
            long total = r.values().stream().mapToLong(Long::longValue).sum();
            for (Map.Entry<OpTimer.Op, Long> e : r.entrySet()) {
                System.out.printf("  %-12s %6.1f%%  %8.1f ms/step%n", e.getKey(), 100.0 * e.getValue() / total,
                        e.getValue() / 1e6 / steps);
            }
            System.out.printf("  weights on the heap: %.1f MiB; heap at the start of a step: %.1f MiB; peak during steps: %.1f MiB%n",
                    modelBytes / 1048576.0, base / 1048576.0, peak / 1048576.0);
        }
    }

    /** The benchmark model as an HF folder (config.json + model.safetensors), F32 or BF16. */
    static void writeCheckpoint(java.nio.file.Path dir, boolean bf16) throws java.io.IOException {
        LlamaConfig c = benchmarkConfig();
        java.nio.file.Files.createDirectories(dir);
        try (Device d = Device.open("jvm", DeviceOptions.defaults());
             LlamaForCausalLM m = LlamaForCausalLM.random(c, LoraSettings.none(false), 1, d)) {
            dev.tornadolora.io.SafeTensorsWriter w = new dev.tornadolora.io.SafeTensorsWriter().metadata("format", "pt");
            m.mergedWeights().forEach((k, t) -> {
                if (bf16) w.bf16(k, t.shape(), t.data()); else w.f32(k, t);
            });
            w.write(dir.resolve("model.safetensors"));
        }
        String json = new LlamaConfig(c.vocabSize(), c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(),
                c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), c.rmsNormEps(), c.ropeTheta(), null, false,
                c.maxPositionEmbeddings(), 1, 2, bf16 ? "bfloat16" : "float32").toJson();
        java.nio.file.Files.writeString(dir.resolve("config.json"), json);
    }

    /** Peak and retained heap of loading an HF folder (the files are memory-mapped, outside the heap). */
    static void measureLoad(java.nio.file.Path dir, boolean qlora) {
        long before = usedHeapAfterGc();
        resetPeaks();
        long t0 = System.nanoTime();
        try (Device d = Device.open("jvm", DeviceOptions.defaults());
             LlamaForCausalLM m = LlamaForCausalLM.load(dir, benchmarkLora(qlora, true), d)) {
            long ms = (System.nanoTime() - t0) / 1_000_000;
            long peak = peakHeap() - before;
            long kept = usedHeapAfterGc() - before;
            System.out.printf("load %s %s: %d ms, heap peak +%.1f MiB, retained +%.1f MiB (%d parameters)%n", dir,
                    qlora ? "quantize_base" : "fp32", ms, peak / 1048576.0, kept / 1048576.0, m.config().parameterCount());
        }
    }

    static long usedHeapAfterGc() {
        System.gc();
        System.gc();
        Runtime rt = Runtime.getRuntime();
        return rt.totalMemory() - rt.freeMemory();
    }

    static void resetPeaks() {
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
            if (p.getType() == MemoryType.HEAP) p.resetPeakUsage();
        }
    }

    /** Sum of the heap pools' peaks: an upper bound on the peak heap in use (pools peak at different times). */
    static long peakHeap() {
        long sum = 0;
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
            if (p.getType() == MemoryType.HEAP) sum += p.getPeakUsage().getUsed();
        }
        return sum;
    }
}
