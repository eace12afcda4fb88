package dev.tornadolora.finetune;

import dev.tornadolora.train.SettingException;
import dev.tornadolora.tensor.CheckedMath;

import java.util.SplittableRandom;

/**
 * Which rows of a dataset each optimizer step trains on: B·A rows per step (B = batch, A = gradient-accumulation
 * micro-batches), taken in micro-batches of B in order. The order depends only on (N, B, A, shuffle, seed), so a
 * step's rows follow from its index alone: a resumed run, or a data-parallel worker, needs no other position.
 * <pre>
 *   position p = i·B·A + j          (step i, 0-based; j = 0 … B·A − 1; micro-batch ⌊j / B⌋)
 *   shuffle false:  row = p mod N
 *   shuffle true:   row = π_e(p mod N),  e = ⌊p / N⌋ (the epoch), π_e a permutation seeded by (seed, e)
 * </pre>
 */
public final class TokenBatches {
    private final int size;
    private final int batch;
    private final int gradAccum;
    private final boolean shuffle;
    private final long seed;
    private long cachedEpoch = -1;
    private int[] cachedPermutation;

    public TokenBatches(int size, int batch, int gradAccum, boolean shuffle, long seed) {
        if (size <= 0) throw new IllegalArgumentException("dataset has no rows");
        if (batch <= 0) throw new SettingException("{batch} must be positive, got " + batch);
        if (gradAccum <= 0) throw new SettingException("{grad_accum} must be positive, got " + gradAccum);
        CheckedMath.arrayLength("rows per optimizer step", CheckedMath.of("{batch}", batch),
                CheckedMath.of("{grad_accum}", gradAccum));
        this.size = size;
        this.batch = batch;
        this.gradAccum = gradAccum;
        this.shuffle = shuffle;
        this.seed = seed;
    }

    public int rowsPerStep() {
        return batch * gradAccum;
    }

    /** Steps that cover {@code epochs} passes over the data (the last step may wrap around). */
    public long stepsForEpochs(int epochs) {
        long rows = CheckedMath.product("rows in " + epochs + " epochs", Long.MAX_VALUE - rowsPerStep(),
                CheckedMath.of("--epochs", epochs), CheckedMath.of("rows of the data", size));
        return (rows + rowsPerStep() - 1) / rowsPerStep();
    }

    /** The rows of step {@code step} (0-based), in order: micro-batch m is entries [m·B, (m+1)·B). */
    public int[] rows(long step) {
        int[] out = new int[rowsPerStep()];
        for (int j = 0; j < out.length; j++) out[j] = row(step * rowsPerStep() + j);
        return out;
    }

    /** The row at data position {@code p}. */
    public int row(long p) {
        int r = (int) (p % size);
        if (!shuffle) return r;
        return permutation(p / size)[r];
    }

    /** A Fisher–Yates permutation of 0 … N−1 from a generator seeded by (seed, epoch). */
    private int[] permutation(long epoch) {
        if (epoch != cachedEpoch) {
            SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + epoch);
            int[] perm = new int[size];
            for (int i = 0; i < size; i++) perm[i] = i;
            for (int i = size - 1; i > 0; i--) {
                int k = rng.nextInt(i + 1);
                int t = perm[i];
                perm[i] = perm[k];
                perm[k] = t;
            }
            cachedPermutation = perm;
            cachedEpoch = epoch;
        }
        return cachedPermutation;
    }

    public int batch() { return batch; }
    public int gradAccum() { return gradAccum; }
}
