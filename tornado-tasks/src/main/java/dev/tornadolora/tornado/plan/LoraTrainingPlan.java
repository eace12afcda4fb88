package dev.tornadolora.tornado.plan;

import dev.tornadolora.kernels.LoraParams;
import dev.tornadolora.tornado.kernels.AdapterKernels;
import dev.tornadolora.tornado.kernels.TrainingKernels;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * A whole training step of one layer on the device, as one task graph: forward, MSE loss gradient, adapter
 * gradients and AdamW (torch defaults unless given). The base, the adapters and the optimizer state move to the
 * device once and stay there; per step x, the dropout multiplier, the target and three AdamW scalars go in and y
 * comes back (for the loss). The adapters come back only when asked ({@link #copyAdaptersTo}).
 */
public final class LoraTrainingPlan implements AutoCloseable {
    public static final float BETA1 = 0.9f;
    public static final float BETA2 = 0.999f;
    public static final float EPS = 1e-8f;
    public static final float WEIGHT_DECAY = 0.01f;

    private final DeviceWeights w;
    private final int tokens;
    private final FloatArray x;
    private final FloatArray mask;
    private final FloatArray target;
    private final FloatArray y;
    private final FloatArray step = new FloatArray(TrainingKernels.STEP_VALUES);
    private final TornadoExecutionPlan plan;
    private TornadoExecutionResult last;
    private int t;

    public LoraTrainingPlan(LoraParams p, TornadoDevice device, Schedule schedule, int tokens, boolean useMask) {
        w = new DeviceWeights(p, schedule);
        w.refreshAdapters(p);
        this.tokens = tokens;
        int in = w.in, out = w.out, r = w.rank, m = useMask ? 1 : 0;
        x = new FloatArray(tokens * in);
        mask = new FloatArray(useMask ? tokens * in : 1);
        target = new FloatArray(tokens * out);
        y = new FloatArray(tokens * out);
        FloatArray h = new FloatArray(tokens * r), dy = new FloatArray(tokens * out), dh = new FloatArray(tokens * r);
        FloatArray gradA = new FloatArray(r * in), gradB = new FloatArray(out * r);
        FloatArray mA = new FloatArray(r * in), vA = new FloatArray(r * in);
        FloatArray mB = new FloatArray(out * r), vB = new FloatArray(out * r);
        for (FloatArray zero : new FloatArray[] {gradA, gradB, mA, vA, mB, vB}) zero.init(0f);

        String name = "loraTrain" + System.identityHashCode(this);
        GridScheduler grids = new GridScheduler();
        var forward = BaseMatmul.Direction.FORWARD;
        TaskGraph g = new TaskGraph(name)
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, BaseMatmul.reads(w, schedule, Nf4Variant.FUSED, forward).toArray())
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, w.bias, w.a, w.b, gradA, gradB, mA, vA, mB, vB, h, dh, dy)
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, x, mask, target, step);
        g.transferToDevice(DataTransferMode.FIRST_EXECUTION, w.noFloats, w.noPanels, w.noBiasPanels);
        BaseMatmul.add(g, name, grids, "base", w, schedule, Nf4Variant.FUSED, forward, null, x, y, tokens, null, false);
        g.task("down", AdapterKernels::down, x, mask, w.a, h, r, tokens, in, m)
         .task("epilogue", AdapterKernels::epilogue, y, h, w.b, w.bias, out, tokens, r, w.scale, w.hasBias ? 1 : 0, 1)
         .task("loss", TrainingKernels::mseGradient, y, target, dy, tokens * out)
         .task("gradB", AdapterKernels::gradB, dy, h, gradB, r, out, tokens, w.scale, 0)
         .task("gradH", AdapterKernels::gradH, dy, w.b, dh, r, tokens, out, w.scale)
         .task("gradA", AdapterKernels::gradA, dh, x, mask, gradA, in, r, tokens, m, 0)
         .task("adamA", TrainingKernels::adamW, w.a, gradA, mA, vA, step, r * in, BETA1, BETA2, EPS, WEIGHT_DECAY)
         .task("adamB", TrainingKernels::adamW, w.b, gradB, mB, vB, step, out * r, BETA1, BETA2, EPS, WEIGHT_DECAY)
         .transferToHost(DataTransferMode.EVERY_EXECUTION, y)
         .persistOnDevice(w.a, w.b);
        plan = new TornadoExecutionPlan(g.snapshot());
        try {
            plan.withDevice(device).withGridScheduler(grids);
        } catch (RuntimeException e) {
            Closing.close(plan);
            throw e;
        }
    }

    /**
     * One step on (x, target), with an optional dropout multiplier; returns the MSE loss of the forward pass,
     * i.e. before this step's update (as a PyTorch loop that logs {@code loss.item()}).
     */
    public double step(float[] xs, float[] dropMultiplier, float[] targets, float lr) {
        DeviceWeights.copyIn(xs, x);
        if (dropMultiplier != null) {
            DeviceWeights.copyIn(dropMultiplier, mask);
        }
        DeviceWeights.copyIn(targets, target);
        TrainingKernels.fillStep(step, lr, ++t, BETA1, BETA2);
        last = plan.execute();
        double loss = 0;
        for (int i = 0; i < targets.length; i++) {
            double d = y.get(i) - targets[i];
            loss += d * d;
        }
        return loss / targets.length;
    }

    /** Brings the adapters back from the device into the layer's arrays. */
    public void copyAdaptersTo(float[] loraA, float[] loraB) {
        if (last != null) {
            last.transferToHost(w.a, w.b);
        }
        DeviceWeights.copyOut(w.a, loraA);
        DeviceWeights.copyOut(w.b, loraB);
    }

    public int tokens() {
        return tokens;
    }

    @Override
    public void close() {
        Closing.close(plan);
    }
}
