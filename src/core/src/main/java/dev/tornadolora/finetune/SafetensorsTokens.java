package dev.tornadolora.finetune;

import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.tensor.Shapes;

import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * Pre-tokenized data in a safetensors file: {@code input_ids} I64 (or I32) [N, S] and optionally {@code labels}
 * of the same dtype and shape (−100 ignored; absent: labels = input_ids), as a Python pipeline writes with
 * {@code safetensors.torch.save_file}. Every id and label is checked against the vocabulary on reading.
 * With {@code position_ids} (and optionally {@code example_ids}, −1 for padding) of the same shape, as the
 * {@code data} command writes, the rows are {@link ExampleRows}: packed examples kept apart by their positions.
 */
public final class SafetensorsTokens {
    public static final String INPUT_IDS = "input_ids";
    public static final String LABELS = "labels";
    public static final String POSITION_IDS = "position_ids";
    public static final String EXAMPLE_IDS = "example_ids";

    private SafetensorsTokens() {}

    public static TokenDataset read(Path file, int vocabSize) {
        SafeTensors st = SafeTensors.open(file);
        String src = file.toString();
        if (!st.contains(INPUT_IDS)) {
            throw new IllegalArgumentException(src + ": no tensor '" + INPUT_IDS + "' (expected I64 [N, S]; has "
                    + st.names() + ")");
        }
        int[][] ids = rows(st, INPUT_IDS, null);
        int[][] labels = st.contains(LABELS) ? rows(st, LABELS, st.entry(INPUT_IDS).shape()) : null;
        TokenDataset d;
        if (st.contains(POSITION_IDS)) {
            int[] shape = st.entry(INPUT_IDS).shape();
            int[][] positions = rows(st, POSITION_IDS, shape);
            int[][] examples = st.contains(EXAMPLE_IDS) ? rows(st, EXAMPLE_IDS, shape) : new int[ids.length][ids[0].length];
            d = new ExampleRows(src, ids, labels == null ? ids : labels, positions, examples);
        } else {
            d = TokenDataset.of(src, ids, labels);
        }
        TokenDataset.requireInVocab(d, vocabSize);
        return d;
    }

    /** Writes {@code d} in this format (I64; {@code labels} only where they differ from the ids), atomically. */
    public static void write(Path file, TokenDataset d) throws java.io.IOException {
        int n = d.size(), s = d.seqLen();
        int[] all = new int[n];
        for (int i = 0; i < n; i++) all[i] = i;
        int[] ids = d.inputIds(all), labels = d.labels(all);
        dev.tornadolora.io.SafeTensorsWriter w = new dev.tornadolora.io.SafeTensorsWriter()
                .raw(INPUT_IDS, DType.I64, new int[] {n, s}, i64(ids));
        if (!java.util.Arrays.equals(ids, labels)) w.raw(LABELS, DType.I64, new int[] {n, s}, i64(labels));
        if (d instanceof ExampleRows r) {
            w.raw(POSITION_IDS, DType.I64, new int[] {n, s}, i64(r.positionIds(all)));
            w.raw(EXAMPLE_IDS, DType.I64, new int[] {n, s}, i64(r.exampleIds(all)));
        }
        w.write(file);
    }

    private static byte[] i64(int[] v) {
        ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int x : v) b.putLong(x);
        return b.array();
    }

    private static int[][] rows(SafeTensors st, String name, int[] expectedShape) {
        SafeTensors.Entry e = st.entry(name);
        String src = st.source();
        if (e.dtype() != DType.I64 && e.dtype() != DType.I32) {
            throw new IllegalArgumentException(src + ": '" + name + "' has dtype " + e.dtype() + ", expected I64 or I32");
        }
        int[] shape = e.shape();
        if (shape.length != 2) {
            throw new IllegalArgumentException(src + ": '" + name + "' has shape " + Shapes.format(shape)
                    + ", expected [N, S]");
        }
        if (expectedShape != null && !java.util.Arrays.equals(shape, expectedShape)) {
            throw new IllegalArgumentException(src + ": '" + name + "' has shape " + Shapes.format(shape)
                    + " but input_ids " + Shapes.format(expectedShape));
        }
        if (shape[0] == 0) throw new IllegalArgumentException(src + ": '" + name + "' has no rows (empty data)");
        if (shape[1] < 2) throw new IllegalArgumentException(src + ": '" + name + "' rows have " + shape[1]
                + " tokens, need >= 2");
        ByteBuffer b = st.buffer(name);
        int[][] out = new int[shape[0]][shape[1]];
        for (int r = 0; r < shape[0]; r++) {
            for (int t = 0; t < shape[1]; t++) {
                long v = e.dtype() == DType.I64 ? b.getLong(8 * (r * shape[1] + t)) : b.getInt(4 * (r * shape[1] + t));
                if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException(src + ": '" + name + "' row " + r + ", position " + t
                            + ": value " + v + " is out of range");
                }
                out[r][t] = (int) v;
            }
        }
        return out;
    }
}
