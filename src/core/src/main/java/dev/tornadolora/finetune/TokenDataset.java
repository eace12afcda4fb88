package dev.tornadolora.finetune;

import dev.tornadolora.math.CrossEntropy;
import dev.tornadolora.train.SettingException;

import java.util.Arrays;

/**
 * Rows of token ids with their labels, all of one length: what a causal-LM fine-tune trains on. Row {@code i}
 * is {@code inputIds(i)} with {@code labels(i)} of the same length, where a label of {@link CrossEntropy#IGNORE_INDEX}
 * (transformers' {@code -100}) is not counted in the loss. The loss shifts by one itself, as transformers'
 * {@code LlamaForCausalLM(labels=...)} does, so labels usually equal the ids.
 *
 * <p>Sources: pre-tokenized safetensors ({@link SafetensorsTokens}), text packed into blocks
 * ({@link TokenPacking}; the tokenizer lives with the command line), or arrays.
 */
public interface TokenDataset {
    /** Where the rows came from, for messages (a file name, or a description). */
    String source();

    int size();

    int seqLen();

    /** Copies row {@code row}'s ids into {@code dst} at {@code offset}. */
    void inputIds(int row, int[] dst, int offset);

    /** Copies row {@code row}'s labels into {@code dst} at {@code offset}. */
    void labels(int row, int[] dst, int offset);

    /** The ids of the given rows, one after another ([rows.length, seqLen] row-major). */
    default int[] inputIds(int[] rows) {
        int[] out = new int[rows.length * seqLen()];
        for (int i = 0; i < rows.length; i++) inputIds(rows[i], out, i * seqLen());
        return out;
    }

    /**
     * The position ids of the given rows ([rows.length, seqLen], transformers' {@code position_ids}), or null when
     * every row is one sequence at positions 0 … seqLen−1 (see {@link ExampleRows} for rows that keep examples apart).
     */
    default int[] positionIds(int[] rows) {
        return null;
    }

    /** The labels of the given rows, as {@link #inputIds(int[])}. */
    default int[] labels(int[] rows) {
        int[] out = new int[rows.length * seqLen()];
        for (int i = 0; i < rows.length; i++) labels(rows[i], out, i * seqLen());
        return out;
    }

    /** The given rows of {@code d}, in that order (positions and example ids kept for {@link ExampleRows}). */
    static TokenDataset select(TokenDataset d, int[] rows, String source) {
        int s = d.seqLen();
        int[][] ids = new int[rows.length][s], labels = new int[rows.length][s];
        for (int i = 0; i < rows.length; i++) {
            d.inputIds(rows[i], ids[i], 0);
            d.labels(rows[i], labels[i], 0);
        }
        if (d instanceof ExampleRows r) {
            int[][] pos = new int[rows.length][], ex = new int[rows.length][];
            for (int i = 0; i < rows.length; i++) {
                pos[i] = r.positions()[rows[i]].clone();
                ex[i] = r.examples()[rows[i]].clone();
            }
            return new ExampleRows(source, ids, labels, pos, ex);
        }
        return of(source, ids, labels);
    }

    /**
     * A seeded split into {train, eval} ({@code eval_split}): as {@code datasets}' {@code train_test_split} counts,
     * ⌈fraction·N⌉ rows go to eval (at least 1, leaving at least 1); which rows is a Fisher-Yates permutation
     * seeded with {@code seed} (not numpy's generator, so not the rows {@code datasets} would pick); each part
     * keeps the original row order.
     */
    static TokenDataset[] split(TokenDataset d, double fraction, long seed) {
        if (!(fraction > 0 && fraction < 1)) {
            throw new SettingException("{eval_split} must be a fraction in (0, 1), got " + fraction);
        }
        int n = d.size(), k = (int) Math.ceil(fraction * n);
        if (n < 2 || k >= n) {
            throw new SettingException(d.source() + ": " + n + " rows cannot be split " + fraction
                    + " for eval ({eval_split}) and leave rows to train on");
        }
        int[] perm = new int[n];
        for (int i = 0; i < n; i++) perm[i] = i;
        java.util.SplittableRandom rng = new java.util.SplittableRandom(seed ^ 0x5DEECE66DL);
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        int[] eval = Arrays.copyOf(perm, k), train = Arrays.copyOfRange(perm, k, n);
        Arrays.sort(eval);
        Arrays.sort(train);
        return new TokenDataset[] {select(d, train, d.source() + " (train split)"), select(d, eval, d.source()
                + " (eval split " + fraction + ", seed " + seed + ")")};
    }

    /** Rows held in arrays; {@code labels} null means labels = ids. */
    static TokenDataset of(String source, int[][] ids, int[][] labels) {
        return new Arrays2D(source, ids, labels == null ? ids : labels);
    }

    /** The in-memory implementation: rows checked to be of one length, labels the ids' shape. */
    record Arrays2D(String source, int[][] ids, int[][] labelRows) implements TokenDataset {
        public Arrays2D {
            if (ids.length == 0) throw new IllegalArgumentException(source + ": no rows");
            if (labelRows.length != ids.length) {
                throw new IllegalArgumentException(source + ": " + ids.length + " rows of ids but " + labelRows.length
                        + " of labels");
            }
            int s = ids[0].length;
            if (s < 2) throw new IllegalArgumentException(source + ": rows of " + s + " tokens (need >= 2 to predict one)");
            for (int i = 0; i < ids.length; i++) {
                if (ids[i].length != s || labelRows[i].length != s) {
                    throw new IllegalArgumentException(source + ": row " + i + " has " + ids[i].length + " ids and "
                            + labelRows[i].length + " labels, row 0 " + s);
                }
            }
        }

        @Override public int size() { return ids.length; }
        @Override public int seqLen() { return ids[0].length; }
        @Override public void inputIds(int row, int[] dst, int offset) { System.arraycopy(ids[row], 0, dst, offset, seqLen()); }
        @Override public void labels(int row, int[] dst, int offset) { System.arraycopy(labelRows[row], 0, dst, offset, seqLen()); }
        @Override public String toString() { return "TokenDataset(" + source + ", " + ids.length + " x " + seqLen() + ")"; }
        @Override public boolean equals(Object o) {
            return o instanceof Arrays2D a && Arrays.deepEquals(ids, a.ids) && Arrays.deepEquals(labelRows, a.labelRows);
        }
        @Override public int hashCode() { return Arrays.deepHashCode(ids); }
    }

    /**
     * Checks every id against the vocabulary and every label too (a label is an id or {@link CrossEntropy#IGNORE_INDEX});
     * throws naming the source, row and position of the first that is not.
     */
    static void requireInVocab(TokenDataset d, int vocabSize) {
        int s = d.seqLen();
        int[] ids = new int[s], labels = new int[s];
        for (int r = 0; r < d.size(); r++) {
            d.inputIds(r, ids, 0);
            d.labels(r, labels, 0);
            for (int t = 0; t < s; t++) {
                if (ids[t] < 0 || ids[t] >= vocabSize) {
                    throw new IllegalArgumentException(d.source() + ": row " + r + ", position " + t + ": input id "
                            + ids[t] + " is outside the vocabulary [0, " + vocabSize + ")");
                }
                if (labels[t] != CrossEntropy.IGNORE_INDEX && (labels[t] < 0 || labels[t] >= vocabSize)) {
                    throw new IllegalArgumentException(d.source() + ": row " + r + ", position " + t + ": label "
                            + labels[t] + " is neither -100 nor in the vocabulary [0, " + vocabSize + ")");
                }
            }
        }
    }
}
