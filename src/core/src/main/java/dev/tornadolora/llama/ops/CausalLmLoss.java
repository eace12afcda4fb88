package dev.tornadolora.llama.ops;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.math.CrossEntropy;

import static dev.tornadolora.math.CrossEntropy.IGNORE_INDEX;

/**
 * The loss of transformers' {@code LlamaForCausalLM(labels=...)} ({@code ForCausalLMLoss}): logits [B·S, V],
 * labels [B·S]; position s predicts label s + 1 of its sequence (the last position predicts nothing), labels
 * equal to {@link CrossEntropy#IGNORE_INDEX} are ignored, and the loss is the mean over the N counted positions
 * of the one cross-entropy, {@link CrossEntropy} (row loops {@link Vec#ROWS}):
 * <pre>
 *   loss      = (1/N) Σ_counted (logsumexp(z_t) − z_t[y_t])                   softmax in fp32
 *   dloss/dz_t = (softmax(z_t) − onehot(y_t)) / N    on counted rows, 0 elsewhere
 * </pre>
 * With N = 0 the loss is NaN (torch's 0/0) and the gradient zero.
 */
public final class CausalLmLoss {
    private CausalLmLoss() {}

    /** The target of row t: the next label of the same sequence, or {@link CrossEntropy#IGNORE_INDEX}. */
    public static int target(int[] labels, int seq, int t) {
        return (t % seq) == seq - 1 ? IGNORE_INDEX : labels[t + 1];
    }

    /** N, the positions the loss counts. */
    public static long counted(int[] labels, int batch, int seq) {
        long n = 0;
        for (int t = 0; t < batch * seq; t++) {
            if (target(labels, seq, t) != IGNORE_INDEX) n++;
        }
        return n;
    }

    /**
     * The loss; when {@code dLogits} is not null it receives {@code gradScale · dloss/dz} (overwriting it; it may
     * be {@code logits} itself).
     */
    public static double forward(Parallel par, float[] logits, int[] labels, int batch, int seq, int vocab, float[] dLogits,
                                 double gradScale) {
        int rows = batch * seq;
        long n = counted(labels, batch, seq);
        double[] rowLoss = new double[rows];
        rows(par, logits, labels, seq, vocab, 0, rows, n, dLogits, gradScale, rowLoss);
        return mean(rowLoss, n);
    }

    /**
     * The loss terms of rows {@code [row0, row0 + rows)} into {@code rowLoss[row0 ..]}, from their logits
     * {@code [rows, V]} (a chunk of the whole; the fused lm_head + loss computes it chunk by chunk), and with
     * {@code dLogits} not null {@code gradScale · dloss/dz} of those rows, N being the count of the whole batch.
     */
    public static void rows(Parallel par, float[] logits, int[] labels, int seq, int vocab, int row0, int rows, long n,
                            float[] dLogits, double gradScale, double[] rowLoss) {
        float g = n == 0 ? 0f : (float) (gradScale / n);
        par.range(rows, 1, (r0, r1) -> {
            float[] scratch = dLogits == null ? new float[vocab] : null;
            for (int t = r0; t < r1; t++) {
                int y = target(labels, seq, row0 + t), o = t * vocab;
                if (y == IGNORE_INDEX) {
                    if (dLogits != null) java.util.Arrays.fill(dLogits, o, o + vocab, 0f);
                    continue;
                }
                rowLoss[row0 + t] = dLogits == null ? CrossEntropy.loss(Vec.ROWS, logits, o, vocab, y, scratch)
                        : CrossEntropy.lossAndGradient(Vec.ROWS, logits, o, vocab, y, g, dLogits, o);
            }
        });
    }

    /** The fewest rows a chunk of the fused lm_head + loss holds (see {@link #chunkTokens}). */
    public static final int MIN_CHUNK_TOKENS = 16;

    /**
     * Rows per chunk of the fused lm_head + loss over {@code tokens} rows: Liger's rule
     * ({@code LigerFusedLinearCrossEntropyFunction}: {@code chunk_size = next_power_of_2(ceil(BT / ceil(V / H)))}),
     * so that a chunk's logits [chunk, V] are about the size of the hidden states [BT, H] and, whenever the
     * vocabulary is larger than the hidden size, the [BT, V] logits never exist at once. At least
     * {@link #MIN_CHUNK_TOKENS} rows: more than a backend's few-token (matrix-vector) path takes, so a chunk's rows
     * are computed by the same GEMM as the whole batch's, bit for bit; a last chunk shorter than that joins its
     * neighbour ({@link #chunkRows}). A power of two is no multiple of the JVM GEMM's 12-row micro-tile: its
     * kernel finishes a row block's last 4 or 8 rows with a 4-row tile instead of filling 12.
     */
    public static int chunkTokens(long tokens, int vocab, int hidden) {
        long perHidden = ((long) vocab + hidden - 1) / hidden;
        long rows = (tokens + perHidden - 1) / perHidden;
        long chunk = Long.highestOneBit(Math.max(1, rows));
        if (chunk < rows) chunk <<= 1;
        return (int) Math.max(MIN_CHUNK_TOKENS, Math.min(chunk, Integer.MAX_VALUE / 2));
    }

    /**
     * Rows of the chunk that starts at {@code row0} of {@code tokens}: {@code chunk}, or all that remain when fewer
     * than {@code chunk + MIN_CHUNK_TOKENS} do (no chunk under {@link #MIN_CHUNK_TOKENS} rows).
     */
    public static int chunkRows(int tokens, int row0, int chunk) {
        int left = tokens - row0;
        return left < chunk + MIN_CHUNK_TOKENS ? left : chunk;
    }

    /** The loss from every row's term, summed in row order: NaN when N = 0. */
    public static double mean(double[] rowLoss, long n) {
        if (n == 0) return Double.NaN;
        double total = 0;
        for (double l : rowLoss) total += l;
        return total / n;
    }

    /** The scalar statement, in double. */
    public static double forwardReference(double[] logits, int[] labels, int batch, int seq, int vocab) {
        int[] targets = new int[batch * seq];
        for (int t = 0; t < targets.length; t++) targets[t] = target(labels, seq, t);
        return CrossEntropy.meanReference(logits, vocab, targets);
    }
}
