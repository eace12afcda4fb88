package dev.tornadolora.benchmarks;

import dev.tornadolora.kernels.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The machine's fp32 peak as the JVM sees it: every thread runs a register-only loop of fused multiply-adds on
 * 16 independent accumulators (enough to cover the FMA latency on two ports), with no loads or stores.
 */
public final class PeakFlops {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int ACCUMULATORS = 16;
    private static final int STEPS = 1 << 20;

    private PeakFlops() {}

    /** Best GFLOP/s over a few rounds of ~0.2 s on {@code threads} threads. */
    public static double measure(int threads) {
        Parallel parallel = new Parallel(threads);
        float[] sink = new float[threads];
        for (int i = 0; i < 20; i++) {  // warm-up: C2 compiles the loop
            sink[0] += loop(STEPS / 16, 1.0f + i);
        }
        double best = 0;
        for (int round = 0; round < 5; round++) {
            int reps = 40;
            long t0 = System.nanoTime();
            parallel.range(threads, 1, (a, b) -> {
                for (int t = a; t < b; t++) {
                    for (int r = 0; r < reps; r++) {
                        sink[t] += loop(STEPS, 1.0f + r);
                    }
                }
            });
            double seconds = (System.nanoTime() - t0) / 1e9;
            double flops = (double) threads * reps * STEPS * ACCUMULATORS * F.length() * 2;
            best = Math.max(best, flops / seconds / 1e9);
        }
        if (Float.isNaN(sink[0])) {
            System.err.println("impossible");
        }
        return best;
    }

    private static float loop(int steps, float seed) {
        FloatVector m = FloatVector.broadcast(F, 0.9999999f), c = FloatVector.broadcast(F, 1e-7f);
        FloatVector a0 = FloatVector.broadcast(F, seed), a1 = a0.add(1), a2 = a0.add(2), a3 = a0.add(3);
        FloatVector a4 = a0.add(4), a5 = a0.add(5), a6 = a0.add(6), a7 = a0.add(7);
        FloatVector a8 = a0.add(8), a9 = a0.add(9), a10 = a0.add(10), a11 = a0.add(11);
        FloatVector a12 = a0.add(12), a13 = a0.add(13), a14 = a0.add(14), a15 = a0.add(15);
        for (int i = 0; i < steps; i++) {
            a0 = a0.fma(m, c); a1 = a1.fma(m, c); a2 = a2.fma(m, c); a3 = a3.fma(m, c);
            a4 = a4.fma(m, c); a5 = a5.fma(m, c); a6 = a6.fma(m, c); a7 = a7.fma(m, c);
            a8 = a8.fma(m, c); a9 = a9.fma(m, c); a10 = a10.fma(m, c); a11 = a11.fma(m, c);
            a12 = a12.fma(m, c); a13 = a13.fma(m, c); a14 = a14.fma(m, c); a15 = a15.fma(m, c);
        }
        FloatVector s = a0.add(a1).add(a2.add(a3)).add(a4.add(a5).add(a6.add(a7)))
                .add(a8.add(a9).add(a10.add(a11)).add(a12.add(a13).add(a14.add(a15))));
        return s.reduceLanes(VectorOperators.ADD);
    }
}
