package dev.tornadolora.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.kernels.jvm.Parallel;
import jdk.incubator.vector.FloatVector;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The JVM side of {@code benchmarks/compare.py}: times the named workloads with the same protocol as the
 * PyTorch side (warm up, then repeat until a time budget and a minimum count are reached; report the median)
 * and prints one JSON object: the machine's measured fp32 peak and per workload ms and GFLOP/s.
 *
 * <p>Usage: {@code Compare [--seconds S] [--no-peak] WORKLOAD...} with workloads as {@link Workload#parse}.
 */
public final class Compare {
    private Compare() {}

    public static void main(String[] args) throws Exception {
        double seconds = 2;
        boolean peak = true;
        List<String> names = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--seconds" -> seconds = Double.parseDouble(args[++i]);
                case "--no-peak" -> peak = false;
                default -> names.add(args[i]);
            }
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode out = json.createObjectNode();
        out.put("threads", Parallel.threads());
        out.put("vector_lanes", FloatVector.SPECIES_PREFERRED.length());
        out.put("java", Runtime.version().toString());
        if (peak) {
            out.put("peak_gflops", PeakFlops.measure());
        }
        ArrayNode results = out.putArray("workloads");
        for (String name : names) {
            Workload w = Workload.parse(name);
            double[] ms = time(w, seconds);
            ObjectNode r = results.addObject();
            r.put("name", w.name());
            r.put("ms", median(ms));
            r.put("ms_min", Arrays.stream(ms).min().orElseThrow());
            r.put("runs", ms.length);
            r.put("gflop", w.flops() / 1e9);
            System.err.printf("  jvm   %-22s %9.3f ms  (%d runs)%n", w.name(), median(ms), ms.length);
        }
        System.out.println(json.writerWithDefaultPrettyPrinter().writeValueAsString(out));
    }

    /**
     * Warm-up: at least 3 runs and a third of the budget, and on until a run is within 15% of the fastest so far
     * (the JIT has compiled the vector kernels; interpreted vector code is orders of magnitude slower), for at
     * most 4 budgets. Then runs until the budget and 5 runs are reached.
     */
    static double[] time(Workload w, double seconds) {
        long budget = (long) (seconds * 1e9);
        long start = System.nanoTime();
        double fastest = Double.MAX_VALUE, last = Double.MAX_VALUE;
        for (int i = 0; i < 3 || System.nanoTime() - start < budget / 3
                || (last > 1.15 * fastest && System.nanoTime() - start < 4 * budget); i++) {
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

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
