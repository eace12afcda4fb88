package dev.tornadolora.train;

import dev.tornadolora.math.CrossEntropy;
import dev.tornadolora.math.Softmax;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;

import static dev.tornadolora.math.CrossEntropy.IGNORE_INDEX;

/** Loss functions with their gradient with respect to the prediction, mean reduction as torch's defaults. */
public final class Losses {
    private Losses() {}

    /**
     * A loss and its gradient.
     *
     * @param value the loss
     * @param grad  dL/d(prediction), shaped like the prediction
     */
    public record Result(double value, Tensor grad) {}

    /**
     * {@code F.mse_loss(pred, target)}: L = mean((p − t)²) over all N elements; dL/dp = 2(p − t) / N.
     *
     * @param pred   the prediction p
     * @param target the target t, shaped like p
     * @return L and dL/dp
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
     * {@link CrossEntropy#IGNORE_INDEX} to skip the row): L = mean over the M counted rows of
     * (logsumexp(z) − z_target); dL/dz = (softmax(z) − onehot(target)) / M on counted rows, 0 on ignored ones.
     * With every row ignored the loss is NaN, as in torch. Each row is the one cross-entropy,
     * {@link CrossEntropy#lossAndGradient}, with its scalar loops.
     *
     * @param logits  z, shaped (..., C)
     * @param targets one class index (or {@link CrossEntropy#IGNORE_INDEX}) per row of z
     * @return L and dL/dz
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
        float scale = counted == 0 ? 0f : 1f / counted;
        double total = 0;
        for (int r = 0; r < rows; r++) {
            if (targets[r] == IGNORE_INDEX) continue;
            total += CrossEntropy.lossAndGradient(Softmax.SCALAR, z, r * classes, classes, targets[r], scale, g,
                    r * classes);
        }
        return new Result(counted == 0 ? Double.NaN : total / counted, new Tensor(shape, g));
    }
}
