package dev.tornadolora.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.bench.Stats;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.kernels.jvm.JvmBackends;
import dev.tornadolora.kernels.jvm.JvmOptions;
import jdk.incubator.vector.FloatVector;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The JVM side of {@code benchmarks/compare.py}: a small server on stdin/stdout, so that the comparison can
 * alternate PyTorch and JVM runs workload by workload (both sides then see the same machine load). Commands,
 * one per line: {@code peak} and {@code run WORKLOAD SECONDS} ({@link LayerWorkload#parse}); each answer is one
 * line of JSON. Timing protocol as the PyTorch side: warm up, then repeat until a time budget and a minimum
 * count are reached; report the median. Layers are built once per workload and kept for later rounds.
 */
public final class Compare {
    private Compare() {}

    public static void main(String[] args) throws Exception {
        ObjectMapper json = new ObjectMapper();
        Map<String, LayerWorkload> workloads = new HashMap<>();
        // The harness's -Dtornadolora.threads, mapped onto the JVM backend's options once (as the CLI does).
        int threads = Integer.getInteger("tornadolora.threads", JvmOptions.defaults().threads());
        LoraBackend backend = JvmBackends.create(JvmOptions.defaults().withThreads(threads));
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
                        LayerWorkload w = workloads.computeIfAbsent(cmd[1], n -> LayerWorkload.parse(n).on(backend));
                        double[] ms = time(w, Double.parseDouble(cmd[2]));
                        r.put("name", w.name());
                        r.put("ms", Stats.median(ms));
                        r.put("ms_min", Arrays.stream(ms).min().orElseThrow());
                        r.put("runs", ms.length);
                    }
                    case "quit" -> {
                        return;
                    }
                    default -> r.put("error", "unknown command: " + line);
                }
            } catch (RuntimeException e) {
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
    static double[] time(LayerWorkload w, double seconds) {
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
}
