package dev.tornadolora.llama;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The Sampler of a base commit (OldSampler, its source renamed) against the current one in one process: first the
 * same warped scores bit for bit and the same seeded draws over random logits (with ties, −0 and 0) and settings,
 * then the time per next() token, the two alternating, at Llama's and Qwen2's vocabulary sizes.
 */
public class SamplerSideBySide {
    public static void main(String[] args) {
        SplittableRandom r = new SplittableRandom(1);
        double[][] settings = {{1, 0, 1}, {0.7, 0, 1}, {1, 50, 1}, {0.7, 50, 0.9}, {1, 0, 0.9}, {0.8, 1, 1},
                {1.3, 200, 0.5}, {1, 3, 0.999}, {0.5, 0, 0.01}, {0.9, 5000, 0.95}};
        int cases = 0;
        for (int t = 0; t < 400; t++) {
            int n = 1 + r.nextInt(t < 300 ? 300 : 40000);
            float[] z = new float[n];
            boolean coarse = r.nextBoolean();  // many ties
            for (int i = 0; i < n; i++) {
                float v = (float) (r.nextGaussian() * 3);
                z[i] = coarse ? Math.round(v * 2) / 2f : v;
                if (coarse && z[i] == 0 && r.nextBoolean()) z[i] = -0f;
            }
            for (double[] s : settings) {
                int k = (int) s[1];
                OldSampler a = new OldSampler(s[0], k, s[2], t);
                Sampler b = new Sampler(s[0], k, s[2], t);
                float[] wa = a.warp(z, 0, n), wb = b.warp(z, 0, n);
                for (int i = 0; i < n; i++) {
                    if (Float.floatToRawIntBits(wa[i]) != Float.floatToRawIntBits(wb[i])) {
                        throw new AssertionError("warp differs: n " + n + " " + Arrays.toString(s) + " token " + i);
                    }
                }
                for (int d = 0; d < 20; d++) {
                    if (a.next(z, 0, n) != b.next(z, 0, n)) throw new AssertionError("draw differs " + Arrays.toString(s));
                }
                cases++;
            }
        }
        System.out.println(cases + " cases: the same warped scores (bit for bit) and the same 20 seeded draws");

        double[][] timed = {{0.7, 50, 0.9}, {1, 0, 0.9}, {0.8, 0, 1}, {1, 50, 1}};
        for (int n : new int[] {32000, 151936}) {
            float[] z = new float[n];
            for (int i = 0; i < n; i++) z[i] = (float) (r.nextGaussian() * 3);
            for (double[] s : timed) {
                OldSampler a = new OldSampler(s[0], (int) s[1], s[2], 7);
                Sampler b = new Sampler(s[0], (int) s[1], s[2], 7);
                double[] old = new double[7], now = new double[7];
                for (int round = 0; round < 7; round++) {
                    old[round] = perToken(() -> a.next(z, 0, n));
                    now[round] = perToken(() -> b.next(z, 0, n));
                }
                Arrays.sort(old);
                Arrays.sort(now);
                System.out.printf("vocab %6d  T=%.1f k=%-3d p=%.1f   before %8.3f ms/token   after %8.3f ms/token   %5.1fx%n",
                        n, s[0], (int) s[1], s[2], old[3], now[3], old[3] / now[3]);
            }
        }
    }

    /** The median-of-round time of one call in ms: repeated for about 0.3 s after a warm-up. */
    static double perToken(Runnable f) {
        for (int i = 0; i < 20; i++) f.run();
        long t0 = System.nanoTime();
        int calls = 0;
        while (System.nanoTime() - t0 < 300_000_000L) {
            f.run();
            calls++;
        }
        return (System.nanoTime() - t0) / 1e6 / calls;
    }
}
