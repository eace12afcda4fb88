package dev.tornadolora.finetune;

import java.util.Arrays;

/**
 * Rows that keep their examples apart: besides ids and labels, every token's {@code position_ids} and the index
 * of the example it belongs to ({@code example_ids}, −1 for padding). What the {@code data} command writes and
 * {@code finetune} trains on for instruction and chat data:
 * <pre>
 *   padded row:  ids  e₀ e₀ e₀ pad pad      positions 0 1 2 3 4      example 7 7 7 −1 −1   labels −100 at pad
 *   packed row:  ids  e₀ e₀ e₁ e₁ e₁        positions 0 1 0 1 2      example 3 3 9 9 9     labels −100 at each
 *                                                                                           example's first token
 * </pre>
 * The model reads the boundaries from the positions as transformers does for packed {@code position_ids} (a new
 * example wherever they do not count up by one): RoPE restarts and attention is block-diagonal causal. Right
 * padding needs no mask of its own: causal attention never lets a real token see a later pad, and pads carry
 * label −100.
 */
public record ExampleRows(String source, int[][] ids, int[][] labelRows, int[][] positions, int[][] examples)
        implements TokenDataset {
    public static final int PADDING = -1;

    public ExampleRows {
        TokenDataset.of(source, ids, labelRows);  // the shape checks
        if (positions.length != ids.length || examples.length != ids.length) {
            throw new IllegalArgumentException(source + ": " + ids.length + " rows of ids but " + positions.length
                    + " of position ids and " + examples.length + " of example ids");
        }
        for (int i = 0; i < ids.length; i++) {
            if (positions[i].length != ids[i].length || examples[i].length != ids[i].length) {
                throw new IllegalArgumentException(source + ": row " + i + " has " + ids[i].length + " ids but "
                        + positions[i].length + " position ids and " + examples[i].length + " example ids");
            }
            for (int t = 0; t < positions[i].length; t++) {
                if (positions[i][t] < 0) {
                    throw new IllegalArgumentException(source + ": row " + i + ", position " + t + ": position id "
                            + positions[i][t] + " is negative");
                }
            }
        }
    }

    @Override public int size() { return ids.length; }
    @Override public int seqLen() { return ids[0].length; }
    @Override public void inputIds(int row, int[] dst, int offset) { System.arraycopy(ids[row], 0, dst, offset, seqLen()); }
    @Override public void labels(int row, int[] dst, int offset) { System.arraycopy(labelRows[row], 0, dst, offset, seqLen()); }

    @Override
    public int[] positionIds(int[] rows) {
        int[] out = new int[rows.length * seqLen()];
        for (int i = 0; i < rows.length; i++) System.arraycopy(positions[rows[i]], 0, out, i * seqLen(), seqLen());
        return out;
    }

    /** The example index of every token of {@code rows} ([rows.length, seqLen]), {@link #PADDING} for padding. */
    public int[] exampleIds(int[] rows) {
        int[] out = new int[rows.length * seqLen()];
        for (int i = 0; i < rows.length; i++) System.arraycopy(examples[rows[i]], 0, out, i * seqLen(), seqLen());
        return out;
    }

    /** The first {@code n} rows (the default eval rows). */
    public ExampleRows firstRows(int n) {
        return new ExampleRows(source + " (first " + n + " rows)", Arrays.copyOf(ids, n), Arrays.copyOf(labelRows, n),
                Arrays.copyOf(positions, n), Arrays.copyOf(examples, n));
    }

    @Override public String toString() { return "ExampleRows(" + source + ", " + ids.length + " x " + seqLen() + ")"; }

    @Override
    public boolean equals(Object o) {
        return o instanceof ExampleRows r && Arrays.deepEquals(ids, r.ids) && Arrays.deepEquals(labelRows, r.labelRows)
                && Arrays.deepEquals(positions, r.positions) && Arrays.deepEquals(examples, r.examples);
    }

    @Override public int hashCode() { return Arrays.deepHashCode(ids); }
}
