package dev.tornadolora.benchmarks;

import dev.tornadolora.device.DeviceOptions;
import dev.tornadolora.device.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.bench.Stats;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.llama.GenerationOptions;
import dev.tornadolora.llama.Generator;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.llama.TokenTensors;
import jdk.incubator.vector.FloatVector;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The JVM side of {@code benchmarks/compare.py}: a small server on stdin/stdout, so that the comparison can
 * alternate PyTorch and JVM runs workload by workload (both sides then see the same machine load). Commands,
 * one per line: {@code peak}, {@code run WORKLOAD SECONDS} ({@link LayerWorkload#parse}, or
 * {@link LlamaStepWorkload#parse} for {@code llama-*}), {@code profile WORKLOAD STEPS} (a Llama workload's wall
 * time per op), {@code memory WORKLOAD STEPS [HF_DIR]} (heap of a Llama step: used after a full GC with the
 * model built, and the peak during the steps; with HF_DIR the model is loaded from that folder tensor by tensor,
 * so that a JVM started with a small -Xmx shows the step fits in it) and {@code drop WORKLOAD}; each answer is one
 * line of JSON; {@code decode fp32|nf4 HF_DIR PROMPT_TOKENS NEW_TOKENS} greedy-generates NEW_TOKENS after the first
 * PROMPT_TOKENS of the folder's {@code tokens.safetensors} (or ids 3, 4, … without it) with the KV cache
 * ({@link Generator}, no EOS: always NEW_TOKENS) and answers the prefill and decode tokens per second and the
 * ids; the model (16-bit weights as stored, or NF4 projections) is loaded on first use and kept until
 * {@code drop decode-MODE}, and the first call of a model also runs one generation to warm the JIT up. Timing protocol as the PyTorch side: warm up, then repeat until a time budget and a minimum
 * count are reached; report the median. Workloads are built once and kept for later rounds, until dropped.
 * Every workload, layer and Llama, runs on one {@code jvm} device of the harness's thread count.
 */
public final class Compare {
    private Compare() {}

    public static void main(String[] args) throws Exception {
        ObjectMapper json = new ObjectMapper();
        Map<String, LayerWorkload> workloads = new HashMap<>();
        Map<String, LlamaStepWorkload> llamas = new HashMap<>();
        Map<String, LlamaForCausalLM> decoders = new HashMap<>();
        // The harness's -Dtornadolora.threads, mapped onto the device's options once (as the CLI does).
        int threads = Integer.getInteger("tornadolora.threads", DeviceOptions.defaults().threads());
        Device device = Device.open("jvm", DeviceOptions.defaults().withThreads(threads));
        LoraBackend backend = device.backend();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        ObjectNode hello = json.createObjectNode();
        hello.put("threads", threads);
        hello.put("backend", backend.toString());
        hello.put("vector_lanes", FloatVector.SPECIES_PREFERRED.length());
        hello.put("java", Runtime.version().toString());
        System.out.println(json.writeValueAsString(hello));
        System.out.flush();
        for (String line; (line = in.readLine()) != null; ) {
            String[] cmd = line.trim().split("\\s+");
            ObjectNode r = json.createObjectNode();
            try {
                switch (cmd[0]) {
                    case "peak" -> r.put("peak_gflops", PeakFlops.measure(threads));
                    case "run" -> {
                        double[] ms;
                        if (cmd[1].startsWith("llama-")) {
                            LlamaStepWorkload w = llamas.computeIfAbsent(cmd[1], n -> LlamaStepWorkload.parse(n, device));
                            ms = time(w::run, Double.parseDouble(cmd[2]));
                        } else {
                            LayerWorkload w = workloads.computeIfAbsent(cmd[1], n -> LayerWorkload.parse(n).on(backend));
                            ms = time(w::run, Double.parseDouble(cmd[2]));
                            r.put("flops", w.flops());  // bench.Workload's count: the harness has none of its own
                        }
                        r.put("name", cmd[1]);
                        r.put("ms", Stats.median(ms));
                        r.put("ms_min", Arrays.stream(ms).min().orElseThrow());
                        r.put("runs", ms.length);
                    }
                    case "profile" -> {
                        LlamaStepWorkload w = llamas.computeIfAbsent(cmd[1], n -> LlamaStepWorkload.parse(n, device));
                        profile(w, Integer.parseInt(cmd[2]), r);
                    }
                    case "memory" -> {
                        LlamaStepWorkload w = cmd.length > 3 ? LlamaStepWorkload.load(cmd[1], Path.of(cmd[3]), device)
                                : llamas.computeIfAbsent(cmd[1], n -> LlamaStepWorkload.parse(n, device));
                        memory(w, Integer.parseInt(cmd[2]), r);
                        if (cmd.length > 3) w.close();
                    }
                    case "decode" -> {
                        String key = "decode-" + cmd[1];
                        boolean fresh = !decoders.containsKey(key);
                        LlamaForCausalLM m = decoders.computeIfAbsent(key, k -> LlamaForCausalLM.load(Path.of(cmd[2]),
                                LoraSettings.none(cmd[1].equals("nf4")), device).train(false));
                        decode(m, Path.of(cmd[2]), Integer.parseInt(cmd[3]), Integer.parseInt(cmd[4]), fresh, r);
                    }
                    case "drop" -> {
                        LlamaForCausalLM d = decoders.remove(cmd[1]);
                        if (d != null) d.close();
                        LlamaStepWorkload w = llamas.remove(cmd[1]);
                        if (w != null) w.close();
                        workloads.remove(cmd[1]);
                        r.put("dropped", w != null || d != null);
                    }
                    case "quit" -> {
                        return;
                    }
                    default -> r.put("error", "unknown command: " + line);
                }
            } catch (RuntimeException | java.io.IOException | OutOfMemoryError e) {
                r.put("error", e.toString());
            }
            System.out.println(json.writeValueAsString(r));
            System.out.flush();
        }
    }

    /**
     * Warm-up: at least 3 runs and a third of the budget, and on until a run is within 15% of the fastest so far
     * (the JIT has compiled the vector kernels; interpreted vector code is orders of magnitude slower), for at
     * most 4 budgets or 10 s, whichever is longer. Then runs until the budget and 5 runs are reached.
     */
    static double[] time(Runnable w, double seconds) {
        long budget = (long) (seconds * 1e9);
        long start = System.nanoTime();
        double fastest = Double.MAX_VALUE, last = Double.MAX_VALUE;
        for (int i = 0; i < 3 || System.nanoTime() - start < budget / 3
                || (last > 1.15 * fastest && System.nanoTime() - start < Math.max(4 * budget, 10_000_000_000L)); i++) {
            long t0 = System.nanoTime();
            w.run();
            last = (System.nanoTime() - t0) / 1e6;
            fastest = Math.min(fastest, last);
        }
        List<Double> ms = new ArrayList<>();
        start = System.nanoTime();
        while ((ms.size() < 5 || System.nanoTime() - start < budget) && ms.size() < 1000) {
            long t0 = System.nanoTime();
            w.run();
            ms.add((System.nanoTime() - t0) / 1e6);
        }
        return ms.stream().mapToDouble(Double::doubleValue).toArray();
    }

    /** One greedy generation of {@code newTokens} after {@code promptTokens} (see the class comment). */
    static void decode(LlamaForCausalLM m, Path hfDir, int promptTokens, int newTokens, boolean warmUp, ObjectNode r)
            throws java.io.IOException {
        int[] prompt = new int[promptTokens];
        Path tokens = hfDir.resolve("tokens.safetensors");
        if (java.nio.file.Files.isRegularFile(tokens)) {
            int[] row = TokenTensors.read(SafeTensors.open(tokens), "input_ids").values();
            System.arraycopy(row, 0, prompt, 0, promptTokens);
        } else {
            for (int i = 0; i < promptTokens; i++) prompt[i] = 3 + i % (m.config().vocabSize() - 3);
        }
        GenerationOptions o = GenerationOptions.greedy(newTokens, java.util.Set.of());
        if (warmUp) new Generator(m).generate(prompt, o, null);
        Generator.Generation g = new Generator(m).generate(prompt, o, null);
        r.put("prefill_tokens_per_second", g.prefillTokensPerSecond());
        r.put("decode_tokens_per_second", g.decodeTokensPerSecond());
        var ids = r.putArray("ids");
        for (int id : g.ids()) ids.add(id);
    }

    /** Wall time per op (the model's OpTimer) over {@code steps} steps after one warm-up step, in ms per step. */
    static void profile(LlamaStepWorkload w, int steps, ObjectNode r) {
        w.run();
        w.model().timer().reset();
        w.model().timer().enable(true);
        long t0 = System.nanoTime();
        try {
            for (int i = 0; i < steps; i++) w.run();
        } finally {
            w.model().timer().enable(false);
        }
        double total = (System.nanoTime() - t0) / 1e6 / steps;
        r.put("name", w.name());
        r.put("step_ms", total);
        ObjectNode ops = r.putObject("op_ms");
        double covered = 0;
        for (var e : w.model().timer().report().entrySet()) {
            double ms = e.getValue() / 1e6 / steps;
            ops.put(e.getKey().name().toLowerCase(java.util.Locale.ROOT), ms);
            covered += ms;
        }
        ops.put("other", total - covered);  // optimizer, clipping, data, and whatever the timer does not cover
    }

    /**
     * Heap of a step: {@code live_mb}, used after a full GC with the model built and warmed (weights, adapters,
     * optimizer state, buffers the model keeps); {@code peak_mb}, the largest heap occupancy during the steps,
     * the sum over heap pools of their peak usage since a reset after that GC (an upper bound: pools may peak at
     * different times, and garbage not yet collected counts); plus the GC count and time of the steps.
     */
    static void memory(LlamaStepWorkload w, int steps, ObjectNode r) {
        w.run();
        System.gc();
        System.gc();
        List<MemoryPoolMXBean> heap = ManagementFactory.getMemoryPoolMXBeans().stream()
                .filter(p -> p.getType() == MemoryType.HEAP).toList();
        long live = heap.stream().mapToLong(p -> p.getUsage().getUsed()).sum();
        heap.forEach(MemoryPoolMXBean::resetPeakUsage);
        long gcCount0 = gcCount(), gcMs0 = gcMillis();
        for (int i = 0; i < steps; i++) w.run();
        long peak = heap.stream().mapToLong(p -> p.getPeakUsage().getUsed()).sum();
        r.put("name", w.name());
        r.put("live_mb", live / 1048576.0);
        r.put("peak_mb", peak / 1048576.0);
        r.put("max_heap_mb", Runtime.getRuntime().maxMemory() / 1048576.0);
        r.put("steps", steps);
        r.put("gc_count", gcCount() - gcCount0);
        r.put("gc_ms", gcMillis() - gcMs0);
    }

    private static long gcCount() {
        return ManagementFactory.getGarbageCollectorMXBeans().stream().mapToLong(GarbageCollectorMXBean::getCollectionCount).sum();
    }

    private static long gcMillis() {
        return ManagementFactory.getGarbageCollectorMXBeans().stream().mapToLong(GarbageCollectorMXBean::getCollectionTime).sum();
    }
}
