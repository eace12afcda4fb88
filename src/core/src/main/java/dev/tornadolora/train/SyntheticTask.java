package dev.tornadolora.train;

import dev.tornadolora.device.Device;
import dev.tornadolora.nn.Activation;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Module;
import dev.tornadolora.nn.Sequential;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A fine-tuning task whose answer is known: a student and a teacher that share a frozen base network, where the
 * teacher adds a hidden low-rank update to every layer.
 * <pre>
 *   student  fc1 → act → fc2 → ... → fcL     LoRALinear layers, base W_i (NF4 with quantizeBase), adapters trained
 *   teacher  same chain with weights  deq(W_i) + ΔW_i,   ΔW_i = B*_i · A*_i,  rank hiddenRank ≤ rank
 * </pre>
 * The teacher is built on the <em>dequantized</em> base: the student computes with exactly deq(W_i), so the
 * teacher differs from it by ΔW_i alone and the adapters can represent the answer exactly (α/r·B·A = ΔW_i).
 * Had the teacher used the fp32 W_i, the student would also have to absorb the quantization error W − deq(W),
 * which is full-rank and not learnable by a rank-r adapter.
 *
 * <p>Inputs are x ~ N(0, 1) drawn from a generator seeded by (seed, step), so a batch depends only on its step
 * (a resumed run sees the same data). Every ‖ΔW_i‖_F is {@code updateScale}·‖deq(W_i)‖_F.
 */
public final class SyntheticTask {

    /**
     * What the task is made of; {@code sizes} are the widths in → hidden... → out, so layers = sizes − 1.
     * The NF4 block sizes apply with {@code quantizeBase} (torchao's defaults are 64 and 256).
     *
     * @param sizes           layer widths: in, hidden..., out
     * @param rank            the adapters' rank r
     * @param alpha           LoRA alpha
     * @param dropout         LoRA dropout
     * @param quantizeBase    keep the frozen base as NF4 (QLoRA)
     * @param blockSize       NF4 elements per absmax block
     * @param scalerBlockSize NF4 block scales per quantization factor
     * @param hiddenRank      rank of the teacher's hidden update, at most {@code rank}
     * @param updateScale     ‖ΔW‖ / ‖deq(W)‖ per layer
     * @param activation      between layers: silu or relu
     * @param seed            seeds the base, the hidden update and the data
     */
    public record Config(int[] sizes, int rank, float alpha, float dropout, boolean quantizeBase, int blockSize,
                         int scalerBlockSize, int hiddenRank, double updateScale, String activation, long seed) {
        /** Refuses fewer than two widths, non-positive widths, a hidden rank outside [1, rank], a bad scale. */
        public Config {
            if (sizes.length < 2) {
                throw new IllegalArgumentException("sizes: expected at least 2 widths (in, out) but got " + sizes.length);
            }
            for (int s : sizes) {
                if (s <= 0) throw new IllegalArgumentException("sizes: every width must be positive, got " + Shapes.format(sizes));
            }
            if (hiddenRank <= 0 || hiddenRank > rank) {
                throw new IllegalArgumentException("hidden rank must be in [1, rank=" + rank + "] so that the adapters"
                        + " can learn the update exactly, got " + hiddenRank);
            }
            if (!(updateScale > 0) || Double.isInfinite(updateScale)) {
                throw new IllegalArgumentException("update scale must be positive, got " + updateScale);
            }
            sizes = sizes.clone();
        }

        /** {@return the layer widths (a copy)} */
        @Override
        public int[] sizes() {
            return sizes.clone();
        }

        /** {@return the number of layers, widths − 1} */
        public int layers() {
            return sizes.length - 1;
        }
    }

    private final Config config;
    private final Sequential student;
    private final Sequential teacher;
    private final Map<String, float[]> hiddenUpdates = new LinkedHashMap<>();

    /**
     * Builds the student and the teacher, their layers on {@code device}.
     *
     * @param config what the task is made of
     * @param device where both run (the caller's: the task does not close it)
     */
    public SyntheticTask(Config config, Device device) {
        this.config = config;
        int[] sizes = config.sizes();
        Map<String, Module> studentLayers = new LinkedHashMap<>(), teacherLayers = new LinkedHashMap<>();
        SplittableRandom hiddenRng = new SplittableRandom(config.seed()).split();
        for (int i = 0; i < config.layers(); i++) {
            String name = "fc" + (i + 1);
            int in = sizes[i], out = sizes[i + 1];
            LoRALinear.Builder b = LoRALinear.builder(in, out).rank(config.rank()).alpha(config.alpha())
                    .dropout(config.dropout()).seed(config.seed() * 1000 + i);
            if (config.quantizeBase()) {
                b.quantizeBase(true).quantizationKwarg("block_size", config.blockSize())
                 .quantizationKwarg("scaler_block_size", config.scalerBlockSize());
            }
            LoRALinear s;
            try {
                s = b.build().to(device);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("layer " + name + " [" + out + ", " + in + "]: " + e.getMessage(), e);
            }
            LoRALinear t = teacherLayer(s, hiddenRng, name).to(device).eval();
            studentLayers.put(name, s);
            teacherLayers.put(name, t);
            if (i < config.layers() - 1) {
                studentLayers.put("act" + (i + 1), Activation.named(config.activation()));
                teacherLayers.put("act" + (i + 1), Activation.named(config.activation()));
            }
        }
        this.student = new Sequential(studentLayers);
        this.teacher = new Sequential(teacherLayers);
    }

    /** The teacher's layer: a dense base deq(W) and the hidden update as its adapters, with scale 1. */
    private LoRALinear teacherLayer(LoRALinear student, SplittableRandom rng, String name) {
        int in = student.inDim(), out = student.outDim(), r = config.hiddenRank();
        float[] base = student.base().dequantize();
        float bound = (float) (1 / Math.sqrt(in));
        float[] a = new float[r * in], b = new float[out * r];
        for (int i = 0; i < a.length; i++) a[i] = (float) ((rng.nextDouble() * 2 - 1) * bound);
        for (int i = 0; i < b.length; i++) b[i] = (float) rng.nextGaussian();
        float[] delta = product(b, a, out, r, in, 1f);
        double scale = config.updateScale() * norm(base) / norm(delta);
        for (int i = 0; i < b.length; i++) b[i] *= (float) scale;
        hiddenUpdates.put(name, product(b, a, out, r, in, 1f));
        LoRALinear t = LoRALinear.builder(in, out).rank(r).alpha(r).bias(student.useBias()).build();
        t.load("weight", Tensor.of(base, out, in));
        if (student.useBias()) t.load("bias", Tensor.of(student.bias().clone(), out));
        t.load("lora_a.weight", Tensor.of(a, r, in));
        t.load("lora_b.weight", Tensor.of(b, out, r));
        return t;
    }

    /** {@return what the task is made of} */
    public Config config() {
        return config;
    }

    /** {@return the student: LoRA layers over the frozen base, the adapters trained} */
    public Sequential student() {
        return student;
    }

    /** {@return the teacher: the same chain with deq(W) + ΔW, no adapters} */
    public Sequential teacher() {
        return teacher;
    }

    /**
     * {@return the step's inputs [batch, in], x ~ N(0, 1)}
     *
     * @param step  the training step
     * @param batch rows
     */
    public Tensor inputs(long step, int batch) {
        SplittableRandom rng = new SplittableRandom(config.seed() * 0x9E3779B97F4A7C15L + step);
        int in = config.sizes()[0];
        float[] x = new float[Shapes.numel(batch, in)];
        for (int i = 0; i < x.length; i++) x[i] = (float) rng.nextGaussian();
        return Tensor.of(x, batch, in);
    }

    /**
     * {@return the student's regression to the teacher as a {@link TrainingTask}: step s's rows are
     * {@link #inputs}(s, batch) with the teacher's outputs as targets, MSE}
     *
     * @param batch rows per step
     */
    public RegressionTask regression(int batch) {
        return new RegressionTask(student, Losses::mse, step -> {
            Tensor x = inputs(step, batch);
            return new RegressionTask.Batch(x, targets(x));
        }, batch);
    }

    /**
     * {@return a held-out batch (never a training step's) for the initial and final loss}
     *
     * @param batch rows
     */
    public Tensor evalInputs(int batch) {
        return inputs(-1, batch);
    }

    /**
     * {@return the teacher's outputs: the regression targets}
     *
     * @param x inputs [batch, in]
     */
    public Tensor targets(Tensor x) {
        return teacher.forward(x);
    }

    /**
     * {@return the student's MSE on them in eval mode (no dropout); training mode is restored after}
     *
     * @param x inputs [batch, in]
     */
    public double evalLoss(Tensor x) {
        student.train(false);
        try {
            return Losses.mse(student.forward(x), targets(x)).value();
        } finally {
            student.train(true);
        }
    }

    /** {@return the hidden updates ΔW [out, in] by layer name} */
    public Map<String, float[]> hiddenUpdates() {
        return hiddenUpdates;
    }

    /**
     * {@return the student's learned update α/r·B·A [out, in] of it}
     *
     * @param layer a layer name, e.g. {@code fc1}
     */
    public float[] learnedUpdate(String layer) {
        LoRALinear l = student.loraModules().get(layer);
        return product(l.loraB(), l.loraA(), l.outDim(), l.rank(), l.inDim(), l.scale());
    }

    /** {@return the cosine similarity of learned and hidden update, by layer name} */
    public Map<String, Double> cosines() {
        Map<String, Double> c = new LinkedHashMap<>();
        hiddenUpdates.forEach((name, hidden) -> c.put(name, cosine(learnedUpdate(name), hidden)));
        return c;
    }

    /** {@return the layer names, in order} */
    public List<String> layerNames() {
        return List.copyOf(hiddenUpdates.keySet());
    }

    /** s·B·A [out, in] for B [out, r] and A [r, in]. */
    static float[] product(float[] b, float[] a, int out, int r, int in, float s) {
        float[] p = new float[Shapes.numel(out, in)];
        LoRALinear.addScaledProduct(p, b, a, out, r, in, s);
        return p;
    }

    static double norm(float[] v) {
        double s = 0;
        for (float x : v) s += (double) x * x;
        return Math.sqrt(s);
    }

    /**
     * {@return ⟨u, v⟩ / (‖u‖·‖v‖); 0 when either is zero}
     *
     * @param u a vector
     * @param v a vector of the same length
     */
    public static double cosine(float[] u, float[] v) {
        if (u.length != v.length) throw new IllegalArgumentException("cosine: lengths " + u.length + " and " + v.length + " differ");
        double dot = 0;
        for (int i = 0; i < u.length; i++) dot += (double) u[i] * v[i];
        double n = norm(u) * norm(v);
        return n == 0 ? 0 : dot / n;
    }
}
