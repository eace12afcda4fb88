package dev.tornadolora.kernels;

import dev.tornadolora.tensor.BaseWeight;

/** The frozen part of a layer as a backend binds it: base W [out, in], bias [out] or null, rank, s = alpha/rank. */
public record LayerSpec(BaseWeight base, float[] bias, int rank, float scale) {
    public LayerSpec {
        if (base == null) {
            throw new IllegalArgumentException("bind: the base weight is missing");
        }
        if (rank < 0) {
            throw new IllegalArgumentException("bind: rank must be non-negative, got " + rank);
        }
        if (bias != null && bias.length != base.rows()) {
            throw new IllegalArgumentException("bias: expected " + base.rows() + " values but got " + bias.length);
        }
    }

    public int inDim() {
        return base.cols();
    }

    public int outDim() {
        return base.rows();
    }

    /** Checks the arrays of one call against the layer's shape. */
    public void check(float[] x, float[] mask, int tokens, Adapters adapters, float[] y) {
        if (tokens < 0) {
            throw new IllegalArgumentException("tokens must be non-negative, got " + tokens);
        }
        require("x", x, (long) tokens * inDim());
        if (mask != null) {
            require("dropout mask", mask, (long) tokens * inDim());
        }
        if (y != null) {
            require("y", y, (long) tokens * outDim());
        }
        checkAdapters("adapters", adapters);
    }

    public void checkAdapters(String what, Adapters adapters) {
        if (adapters != null) {
            if (rank == 0) {
                throw new IllegalArgumentException(what + ": this layer was bound without adapters (rank 0)");
            }
            require(what + " lora_a", adapters.a(), (long) rank * inDim());
            require(what + " lora_b", adapters.b(), (long) outDim() * rank);
        }
    }

    static void require(String what, float[] a, long atLeast) {
        if (a == null || a.length < atLeast) {
            throw new IllegalArgumentException(what + ": expected " + atLeast + " values but got "
                    + (a == null ? "none" : a.length));
        }
    }
}
