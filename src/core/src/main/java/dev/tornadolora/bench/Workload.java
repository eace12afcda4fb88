package dev.tornadolora.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One benchmarked call: the operation, the kind of frozen base, and the shape of a LoRA layer and its batch.
 *
 * <p>Work per call, counting a multiply-add as 2 FLOPs and leaving out bias, scale and element-wise terms:
 * <pre>
 *   forward            2·T·in·out  +  2·T·r·(in + out)          x·Wᵀ;  h = x·Aᵀ, h·Bᵀ
 *   backward           2·T·in·out  +  4·T·r·(in + out)          dy·W;  dB, dh = dy·B, dA, dh·A
 *   forward_backward   4·T·in·out  +  6·T·r·(in + out)          the sum of the two
 * </pre>
 * Weight traffic per call: the base W [out, in] is read once by forward and once more by backward (dx = dy·W),
 * so {@link #basePasses()} passes of {@code bytesPerParameter·in·out} bytes: 4 per parameter for fp32, about
 * 0.52 for NF4 (4-bit codes plus the double-quantized block scalers). Adapters are left out (r ≪ in, out).
 *
 * <p>{@link Op#STEP} is a whole training step of a model instead ({@code model}, see {@link ModelStep}): forward,
 * loss, backward, clipping and AdamW; {@code tokens} is its batch's, {@code inDim} its hidden size and
 * {@code outDim} its vocabulary.
 */
public record Workload(Op op, Base base, int tokens, int inDim, int outDim, int rank, ModelStep model) {

    public enum Op {
        FORWARD("forward", "fwd"), FORWARD_BACKWARD("forward_backward", "fwd+bwd"), STEP("step", "step");

        public final String id;
        public final String shortName;

        Op(String id, String shortName) {
            this.id = id;
            this.shortName = shortName;
        }

        public static Op parse(String s) {
            for (Op op : values()) {
                if (op.id.equals(s) || op.shortName.equals(s)) return op;
            }
            throw new IllegalArgumentException("op '" + s + "': expected forward, forward_backward or step");
        }
    }

    /** The frozen base's storage; {@link #BF16} (a BF16 checkpoint kept 16-bit) is a step workload's only. */
    public enum Base {
        FP32("fp32"), NF4("nf4"), BF16("bf16");

        public final String id;

        Base(String id) {
            this.id = id;
        }

        public static Base parse(String s) {
            for (Base b : values()) {
                if (b.id.equals(s)) return b;
            }
            throw new IllegalArgumentException("base '" + s + "': expected fp32, nf4 or bf16");
        }
    }

    public Workload {
        if (tokens <= 0 || inDim <= 0 || outDim <= 0 || rank <= 0) {
            throw new IllegalArgumentException("workload: tokens, in, out and rank must be positive, got tokens="
                    + tokens + ", in=" + inDim + ", out=" + outDim + ", rank=" + rank);
        }
        if ((op == Op.STEP) != (model != null)) {
            throw new IllegalArgumentException("workload: a step has a model and a layer op none, got " + op);
        }
    }

    /** A layer workload. */
    public Workload(Op op, Base base, int tokens, int inDim, int outDim, int rank) {
        this(op, base, tokens, inDim, outDim, rank, null);
    }

    /** The training step of {@code model} with a {@code base} base and LoRA rank {@code rank}. */
    public static Workload step(Base base, ModelStep model, int rank) {
        return new Workload(Op.STEP, base, model.tokens(), model.config().hiddenSize(), model.config().vocabSize(),
                rank, model);
    }

    /** FLOPs of one call, as defined above. */
    public double flops() {
        if (model != null) return model.flops(rank);
        double t = tokens, base = 2 * t * inDim * outDim, lora = 2 * t * rank * ((double) inDim + outDim);
        return op == Op.FORWARD ? base + lora : 2 * base + 3 * lora;
    }

    /** How many times one call reads the whole base weight. */
    public int basePasses() {
        return op == Op.FORWARD ? 1 : 2;  // a step: forward and backward
    }

    /** Bytes of base weight read by one call, for a base stored at {@code bytesPerParameter}. */
    public double weightBytes(double bytesPerParameter) {
        if (model != null) return model.weightBytes(bytesPerParameter);
        return basePasses() * bytesPerParameter * inDim * outDim;
    }

    /** E.g. {@code fwd nf4 T512 4096x4096}, {@code step nf4 T512 bench qv}. */
    public String label() {
        return String.format(Locale.ROOT, "%s %s T%d %s", op.shortName, base.id, tokens, shapeLabel());
    }

    /** The layer's {@code in x out}, or the step's model and LoRA modules ({@code bench qv}). */
    public String shapeLabel() {
        return model != null ? model.label() : inDim + "x" + outDim;
    }

    /** Step workloads of every base, shape and LoRA module set, after the layer workloads' order. */
    public static List<Workload> steps(List<Base> bases, List<String> shapes, List<Boolean> allProjections, int rank) {
        List<Workload> list = new ArrayList<>();
        for (String s : shapes) {
            for (Base b : bases) {
                for (boolean all : allProjections) {
                    list.add(step(b, ModelStep.of(s, all), rank));
                }
            }
        }
        return list;
    }

    /**
     * Every combination, ordered so that workloads on the same layer (dims, base) follow each other and the
     * layer is built once: shape, then base, then tokens, then op.
     */
    public static List<Workload> grid(List<Op> ops, List<Base> bases, List<Integer> tokens, List<Shape> shapes, int rank) {
        List<Workload> list = new ArrayList<>();
        for (Shape s : shapes) {
            for (Base b : bases) {
                for (int t : tokens) {
                    for (Op op : ops) {
                        if (op == Op.STEP || b == Base.BF16) continue;  // steps come from steps(); bf16 is theirs
                        list.add(new Workload(op, b, t, s.in(), s.out(), rank));
                    }
                }
            }
        }
        return list;
    }

    /** A layer shape: {@code in_dim} and {@code out_dim}. */
    public record Shape(int in, int out) {
        /** {@code 1024} (in = out) or {@code 1024x4096} (in x out). */
        public static Shape parse(String s) {
            String[] parts = s.trim().toLowerCase(Locale.ROOT).split("x");
            try {
                if (parts.length == 1) {
                    int d = Integer.parseInt(parts[0]);
                    return new Shape(d, d);
                }
                if (parts.length == 2) {
                    return new Shape(Integer.parseInt(parts[0]), Integer.parseInt(parts[1]));
                }
            } catch (NumberFormatException ignored) {
                // falls through to the message below
            }
            throw new IllegalArgumentException("dims '" + s + "': expected D (in = out = D) or INxOUT, e.g. 1024 or 1024x4096");
        }
    }
}
