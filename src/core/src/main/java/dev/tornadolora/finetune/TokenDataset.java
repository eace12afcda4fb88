package dev.tornadolora.finetune;

import dev.tornadolora.math.CrossEntropy;

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

    /** The labels of the given rows, as {@link #inputIds(int[])}. */
    default int[] labels(int[] rows) {
        int[] out = new int[rows.length * seqLen()];
        for (int i = 0; i < rows.length; i++) labels(rows[i], out, i * seqLen());
        return out;
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
