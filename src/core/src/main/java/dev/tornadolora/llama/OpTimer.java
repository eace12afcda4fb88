package dev.tornadolora.llama;

import java.util.EnumMap;
import java.util.Map;

/**
 * Wall time per op of a model's forward and backward, for the benchmark's "where the time goes": off (one branch
 * per op) unless enabled. Owned by one model; not thread-safe (a model runs one step at a time). A probe may run at
 * every op boundary ({@link #onOpEnd}): the memory test reads the live heap there.
 */
public final class OpTimer {
    /** The ops a Llama step spends time in; projections are the LoRALinear layers (base + adapters). */
    public enum Op { EMBEDDING, RMSNORM, PROJECTIONS, ROPE, ATTENTION, SWIGLU, RESIDUAL, LM_HEAD, LOSS }

    private final long[] nanos = new long[Op.values().length];
    private boolean enabled;
    private Runnable probe;

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
        if (probe != null) probe.run();
    }

    /**
     * Runs {@code probe} after every op of forward and backward (null: none), outside the timed span of the op
     * but inside the step, where the step's intermediate arrays are live: e.g. a full GC and a read of the heap,
     * to find a step's peak of live memory.
     */
    public void onOpEnd(Runnable probe) {
        this.probe = probe;
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
