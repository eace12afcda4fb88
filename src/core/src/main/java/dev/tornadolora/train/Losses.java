package dev.tornadolora.train;

import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;

/** Loss functions with their gradient with respect to the prediction, mean reduction as torch's defaults. */
public final class Losses {
    /** torch's (and torchtune's) default {@code ignore_index} for cross-entropy. */
    public static final int IGNORE_INDEX = -100;

    private Losses() {}

    /** A loss value and dL/d(prediction), shaped like the prediction. */
    public record Result(double value, Tensor grad) {}

    /**
     * {@code F.mse_loss(pred, target)}: L = mean((p − t)²) over all N elements; dL/dp = 2(p − t) / N.
     */
    public static Result mse(Tensor pred, Tensor target) {
        Shapes.requireEqual("target", target.shape(), pred.shape());
        float[] p = pred.data(), t = target.data();
        int n = p.length;
        if (n == 0) throw new IllegalArgumentException("mse of an empty tensor is undefined");
        float[] g = new float[n];
        double sum = 0;
        float scale = 2f / n;
        for (int i = 0; i < n; i++) {
            float d = p[i] - t[i];
            sum += (double) d * d;
            g[i] = scale * d;
        }
        return new Result(sum / n, new Tensor(pred.shape(), g));
    }

    /**
     * {@code F.cross_entropy(logits, targets)} for logits (..., C) and one class index per row (or
     * {@link #IGNORE_INDEX} to skip the row): L = mean over the M counted rows of (logsumexp(z) − z_target);
     * dL/dz = (softmax(z) − onehot(target)) / M on counted rows, 0 on ignored ones. With every row ignored
     * the loss is NaN, as in torch.
     */
    public static Result crossEntropy(Tensor logits, int[] targets) {
        int[] shape = logits.shape();
        if (shape.length == 0) throw new IllegalArgumentException("logits: expected shape [..., C] but got []");
        int classes = shape[shape.length - 1];
        int rows = Shapes.leadingRows(shape);
        if (targets.length != rows) {
            throw new IllegalArgumentException("targets: expected " + rows + " class indices (one per row of logits "
                    + Shapes.format(shape) + ") but got " + targets.length);
        }
        int counted = 0;
        for (int r = 0; r < rows; r++) {
            int c = targets[r];
            if (c == IGNORE_INDEX) continue;
            if (c < 0 || c >= classes) {
                throw new IllegalArgumentException("targets[" + r + "] = " + c + " is outside [0, " + classes + ")");
            }
            counted++;
        }
        float[] z = logits.data();
        float[] g = new float[z.length];
        double total = 0;
        for (int r = 0; r < rows; r++) {
            if (targets[r] == IGNORE_INDEX) continue;
            int off = r * classes;
            double max = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < classes; c++) max = Math.max(max, z[off + c]);
            double sumExp = 0;
            for (int c = 0; c < classes; c++) sumExp += Math.exp(z[off + c] - max);
            double logSumExp = max + Math.log(sumExp);
            total += logSumExp - z[off + targets[r]];
            for (int c = 0; c < classes; c++) {
                double softmax = Math.exp(z[off + c] - logSumExp);
                g[off + c] = (float) ((softmax - (c == targets[r] ? 1 : 0)) / counted);
            }
        }
        return new Result(counted == 0 ? Double.NaN : total / counted, new Tensor(shape, g));
    }
}
