package dev.tornadolora.benchmarks;

import dev.tornadolora.bench.Workload;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.Tensor;

import java.util.Locale;
import java.util.SplittableRandom;

/**
 * One benchmark case: a rank-16 LoRALinear of width in = out = dim over a fp32 or NF4 base, run forward or
 * forward + backward on a batch of tokens. Shared by the JMH benchmarks and the PyTorch comparison so that
 * both time exactly the same calls.
 */
public final class LayerWorkload {
    public static final int RANK = 16;
    public static final float ALPHA = 32f;

    public final String base;
    public final int dim;
    public final int tokens;
    public final boolean backward;
    private final LoRALinear layer;
    private final Tensor x;
    private final Tensor dy;

    public LayerWorkload(String base, int dim, int tokens, boolean backward) {
        if (!base.equals("fp32") && !base.equals("nf4")) {
            throw new IllegalArgumentException("base: expected fp32 or nf4 but got " + base);
        }
        this.base = base;
        this.dim = dim;
        this.tokens = tokens;
        this.backward = backward;
        layer = LoRALinear.builder(dim, dim).rank(RANK).alpha(ALPHA).quantizeBase(base.equals("nf4")).seed(42).build();
        SplittableRandom rnd = new SplittableRandom(7);
        // lora_b starts at zero (torchtune); give it values so the update is real arithmetic.
        layer.load("lora_b.weight", Tensor.of(uniform(rnd, dim * RANK, 0.01f), dim, RANK));
        x = Tensor.of(uniform(rnd, tokens * dim, 1f), tokens, dim);
        dy = Tensor.of(uniform(rnd, tokens * dim, 1f), tokens, dim);
    }

    /** Runs the layer on this backend (default: the scalar reference, as a new layer is). */
    public LayerWorkload on(dev.tornadolora.kernels.LoraBackend backend) {
        layer.backend(backend);
        return this;
    }

    /** Parses {@code fp32-fwd-4096x512} (base, pass, dim x tokens). */
    public static LayerWorkload parse(String name) {
        String[] p = name.split("-");
        String[] size = p.length == 3 ? p[2].split("x") : new String[0];
        if (size.length != 2 || !(p[1].equals("fwd") || p[1].equals("fwdbwd"))) {
            throw new IllegalArgumentException("workload: expected BASE-fwd|fwdbwd-DIMxTOKENS but got " + name);
        }
        return new LayerWorkload(p[0], Integer.parseInt(size[0]), Integer.parseInt(size[1]), p[1].equals("fwdbwd"));
    }

    public String name() {
        return String.format(Locale.ROOT, "%s-%s-%dx%d", base, backward ? "fwdbwd" : "fwd", dim, tokens);
    }

    /** One training step's layer work (forward, and backward when asked); returns a value to consume. */
    public Tensor run() {
        Tensor y = layer.forward(x);
        return backward ? layer.backward(dy) : y;
    }

    /** The bench command's description of this case: its FLOP count is the one formula ({@link Workload#flops}). */
    public Workload workload() {
        return new Workload(backward ? Workload.Op.FORWARD_BACKWARD : Workload.Op.FORWARD,
                base.equals("nf4") ? Workload.Base.NF4 : Workload.Base.FP32, tokens, dim, dim, RANK);
    }

    /** Floating-point operations of one {@link #run} ({@link Workload#flops}). */
    public double flops() {
        return workload().flops();
    }

    private static float[] uniform(SplittableRandom rnd, int n, float bound) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextDouble(-bound, bound);
        }
        return a;
    }
}
