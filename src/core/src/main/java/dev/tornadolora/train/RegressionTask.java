package dev.tornadolora.train;

import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.nn.Sequential;
import dev.tornadolora.tensor.Tensor;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.LongFunction;

/**
 * A {@link Sequential} model fitted to targets with a loss such as {@link Losses#mse}, as a {@link TrainingTask}:
 * step s (1-based, as the log counts) takes the rows of {@code batches.apply(s)}, all in one micro-batch; every
 * row counts once. The {@code train} command's synthetic task, and any supervised example, plug in here.
 */
public final class RegressionTask implements TrainingTask {
    /**
     * One step's data.
     *
     * @param x      inputs [rows, in]
     * @param target the wanted outputs, shaped like the model's
     */
    public record Batch(Tensor x, Tensor target) {}

    private final Sequential model;
    private final Trainer.LossFunction loss;
    private final LongFunction<Batch> batches;
    private final int rows;

    /**
     * @param loss    e.g. {@code Losses::mse}
     * @param batches the batch of step s (1-based)
     * @param rows    rows of every batch
     */
    public RegressionTask(Sequential model, Trainer.LossFunction loss, LongFunction<Batch> batches, int rows) {
        if (rows <= 0) throw new IllegalArgumentException("a step needs at least one row, got " + rows);
        this.model = model;
        this.loss = loss;
        this.batches = batches;
        this.rows = rows;
    }

    @Override public List<Parameter> trainableParameters() { return model.parameters(); }
    @Override public Map<String, LoRALinear> adapterModules() { return model.loraModules(); }
    @Override public void zeroGrad() { model.zeroGrad(); }
    @Override public void train(boolean mode) { model.train(mode); }
    @Override public int rowsPerStep() { return rows; }
    @Override public int microBatch() { return rows; }
    @Override public long tokensPerStep() { return rows; }

    @Override
    public long counted(long step, int from, int to) {
        return to - from;
    }

    @Override
    public double forwardBackward(long step, int from, int to, double share) {
        Batch b = batches.apply(step + 1);
        if (b.x().dim(0) != rows) {
            throw new IllegalArgumentException("step " + (step + 1) + ": a batch of " + b.x().dim(0) + " rows, expected " + rows);
        }
        Tensor x = rowsOf(b.x(), from, to), target = rowsOf(b.target(), from, to);
        Losses.Result l = loss.apply(model.forward(x), target);
        Tensor grad = l.grad();
        if (share != 1) {
            float[] g = grad.data().clone();
            for (int i = 0; i < g.length; i++) g[i] *= (float) share;
            grad = Tensor.of(g, grad.shape());
        }
        model.backward(grad);
        return l.value();
    }

    /** Rows [from, to) of a [rows, ...] tensor; the tensor itself when that is all of it. */
    private static Tensor rowsOf(Tensor t, int from, int to) {
        int n = t.dim(0);
        if (from == 0 && to == n) return t;
        int per = t.numel() / n;
        int[] shape = t.shape();
        shape[0] = to - from;
        return Tensor.of(Arrays.copyOfRange(t.data(), from * per, to * per), shape);
    }
}
