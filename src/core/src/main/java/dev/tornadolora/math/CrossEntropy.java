package dev.tornadolora.math;

/**
 * Cross-entropy of one row of logits against a class index, the one source for {@code train.Losses.crossEntropy}
 * (torch's {@code F.cross_entropy}) and the causal-LM loss ({@code llama.ops.CausalLmLoss}, transformers'
 * {@code ForCausalLMLoss}); both take the mean over the rows whose target is not {@link #IGNORE_INDEX}:
 * <pre>
 *   loss_t   = logsumexp(z_t) − z_t[y_t]                  {@link Softmax#logSumExp(float, float)}, m = max z_t
 *   dloss/dz = g · (softmax(z_t) − onehot(y_t))            g = (gradient scale) / (rows counted)
 *            = e_i · (g / sum) − g·[i = y_t]               e_i = exp(z_i − m)
 * </pre>
 * The row's loops ({@link Softmax.Rows}) are the caller's: {@link Softmax#SCALAR} (the definition) or a fast
 * path, which sums the exponentials in another order (see {@link Softmax} for the bound).
 */
public final class CrossEntropy {
    /** torch's (and transformers', torchtune's, PEFT's) {@code ignore_index}: a label that counts for nothing. */
    public static final int IGNORE_INDEX = -100;

    private CrossEntropy() {}

    /**
     * {@return the loss of row z[zo .. zo + classes) for class target}
     *
     * @param rows    the row's loops
     * @param z       the logits
     * @param zo      where the row starts
     * @param classes the row's length
     * @param target  the class, 0 ≤ target &lt; classes
     * @param scratch at least {@code classes} floats, overwritten
     */
    public static double loss(Softmax.Rows rows, float[] z, int zo, int classes, int target, float[] scratch) {
        return row(rows, z, zo, classes, target, 0f, scratch, 0, false);
    }

    /**
     * The loss of row z[zo .. zo + classes) for class target; {@code grad[go .. go + classes)} receives
     * g · dloss/dz (overwritten; it may be the row itself, {@code grad == z && go == zo}).
     *
     * @param rows    the row's loops
     * @param z       the logits
     * @param zo      where the row starts
     * @param classes the row's length
     * @param target  the class, 0 ≤ target &lt; classes
     * @param g       the factor of the gradient
     * @param grad    receives it
     * @param go      where in {@code grad}
     * @return the row's loss
     */
    public static double lossAndGradient(Softmax.Rows rows, float[] z, int zo, int classes, int target, float g,
                                         float[] grad, int go) {
        return row(rows, z, zo, classes, target, g, grad, go, true);
    }

    private static double row(Softmax.Rows rows, float[] z, int zo, int classes, int target, float g, float[] e,
                              int eo, boolean gradient) {
        float m = rows.max(classes, z, zo), zy = z[zo + target];
        if (e != z || eo != zo) System.arraycopy(z, zo, e, eo, classes);
        float sum = rows.expInPlace(classes, e, eo, 1f, m);
        if (gradient) {
            float k = g / sum;
            for (int i = 0; i < classes; i++) e[eo + i] *= k;
            e[eo + target] -= g;
        }
        return Softmax.logSumExp(m, sum) - zy;
    }

    /**
     * {@return the mean loss over the counted rows of logits [rows, classes] in double, NaN when none counts:
     * the statement the fp32 paths are checked against}
     *
     * @param logits  the logits
     * @param classes the row length
     * @param targets a class or {@link #IGNORE_INDEX} per row
     */
    public static double meanReference(double[] logits, int classes, int[] targets) {
        double total = 0;
        long n = 0;
        for (int t = 0; t < targets.length; t++) {
            if (targets[t] == IGNORE_INDEX) continue;
            int o = t * classes;
            total += Softmax.logSumExp(classes, i -> logits[o + i]) - logits[o + targets[t]];
            n++;
        }
        return n == 0 ? Double.NaN : total / n;
    }
}
