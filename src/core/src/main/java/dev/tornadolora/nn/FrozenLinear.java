package dev.tornadolora.nn;

import dev.tornadolora.device.Device;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.NonFiniteException;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;

/**
 * A linear layer without adapters, {@code y = x·Wᵀ + b}, on a bound backend: the frozen projections of a model
 * next to its LoRA ones (an fp32 or NF4 base, like {@link LoRALinear}'s). It has no trainable parameters;
 * backward returns {@code dx = dy·W} only. Binding, devices, threads and closing work as in {@link LoRALinear}:
 * the base is bound (rank 0) on the first forward, rebound by {@link #to} or {@link #setBase}.
 */
public final class FrozenLinear implements Module, AutoCloseable {
    private BaseWeight weight;
    private final float[] bias;
    private final Binding binding = new Binding();
    private final ThreadLocal<Saved> saved = new ThreadLocal<>();
    private boolean checkFinite;

    private record Saved(int[] xShape, LayerKernels.Activations activations, LayerKernels by) {}

    /** W [out, in] (dense or NF4) and bias [out] or null; the arrays are used, not copied. */
    public FrozenLinear(BaseWeight weight, float[] bias) {
        if (bias != null && bias.length != weight.rows()) {
            throw new IllegalArgumentException("bias: expected " + weight.rows() + " values but got " + bias.length);
        }
        this.weight = weight;
        this.bias = bias;
    }

    public int inDim() {
        return weight.cols();
    }

    public int outDim() {
        return weight.rows();
    }

    public BaseWeight base() {
        return weight;
    }

    public float[] bias() {
        return bias;
    }

    /** y = x·Wᵀ + b for x of shape (..., in); returns (..., out). */
    @Override
    public Tensor forward(Tensor x) {
        Shapes.requireLast("x", x.shape(), inDim());
        if (checkFinite) {
            NonFiniteException.requireFinite("x", x);
        }
        int tokens = Shapes.leadingRows(x.shape());
        float[] y = new float[tokens * outDim()];
        LayerKernels k = bound();
        saved.set(new Saved(x.shape(), k.forward(x.data(), null, tokens, null, y), k));
        Tensor out = new Tensor(Shapes.withLast(x.shape(), outDim()), y);
        if (checkFinite) {
            NonFiniteException.requireFinite("y", out);
        }
        return out;
    }

    /** dx = dy·W for this thread's last forward. */
    @Override
    public Tensor backward(Tensor dy) {
        Saved s = saved.get();
        if (s == null) {
            throw new IllegalStateException("backward called before forward on this thread");
        }
        if (!binding.isCurrent(s.by)) {
            throw new IllegalStateException("backward after the layer was rebound since its forward");
        }
        Shapes.requireEqual("dy", dy.shape(), Shapes.withLast(s.xShape, outDim()));
        float[] dx = new float[Shapes.numel(s.xShape)];
        s.by.backward(s.activations, dy.data(), dx, null, null);
        return new Tensor(s.xShape, dx);
    }

    @Override
    public void releaseActivations() {
        saved.remove();
    }

    public FrozenLinear setCheckFinite(boolean check) {
        this.checkFinite = check;
        return this;
    }

    /** Moves the layer to a device (its projection backend); the next forward binds it there. */
    public FrozenLinear to(Device device) {
        return backend(device.backend());
    }

    public FrozenLinear backend(LoraBackend b) {
        binding.setBackend(b);
        return this;
    }

    public LoraBackend backend() {
        return binding.backend();
    }

    /** Replaces the base (same shape), e.g. with its NF4 record. */
    public void setBase(BaseWeight base) {
        if (base.rows() != weight.rows() || base.cols() != weight.cols()) {
            throw new IllegalArgumentException("weight: expected shape " + Shapes.format(weight.rows(), weight.cols())
                    + " but got " + Shapes.format(base.rows(), base.cols()));
        }
        weight = base;
        binding.unbind();
    }

    /** The binding of the base and bias (rank 0: no adapters), made when missing. */
    public LayerKernels bound() {
        return binding.bound(b -> b.bind(weight, bias, 0, 0f));
    }

    @Override
    public void close() {
        binding.unbind();
    }

    @Override
    public String toString() {
        return "FrozenLinear(in_features=" + inDim() + ", out_features=" + outDim() + ", bias=" + (bias != null) + ")";
    }
}
