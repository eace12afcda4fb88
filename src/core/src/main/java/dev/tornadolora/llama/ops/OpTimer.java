package dev.tornadolora.llama.ops;

import java.util.EnumMap;
import java.util.Map;

/**
 * Wall time per op of a model's forward and backward, for the benchmark's "where the time goes": off (one branch
 * per op) unless enabled. Owned by one model; not thread-safe (a model runs one step at a time).
 */
public final class OpTimer {
    /** The ops a Llama step spends time in; projections are the LoRALinear layers (base + adapters). */
    public enum Op { EMBEDDING, RMSNORM, PROJECTIONS, ROPE, ATTENTION, SWIGLU, RESIDUAL, LM_HEAD, LOSS }

    private final long[] nanos = new long[Op.values().length];
    private boolean enabled;

    public void enable(boolean on) {
        enabled = on;
    }

    public boolean enabled() {
        return enabled;
    }

    public long start() {
        return enabled ? System.nanoTime() : 0L;
    }

    public void stop(Op op, long start) {
        if (enabled) nanos[op.ordinal()] += System.nanoTime() - start;
    }

    public void reset() {
        java.util.Arrays.fill(nanos, 0L);
    }

    /** Nanoseconds per op since the last reset, in op order. */
    public Map<Op, Long> report() {
        Map<Op, Long> m = new EnumMap<>(Op.class);
        for (Op op : Op.values()) m.put(op, nanos[op.ordinal()]);
        return m;
    }
}
