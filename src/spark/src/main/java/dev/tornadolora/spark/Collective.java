package dev.tornadolora.spark;

import org.apache.spark.BarrierTaskContext;

/**
 * The one communication primitive the replicas use: every task contributes a message and receives all of them,
 * indexed by rank (for a barrier stage, the partition id). It is also a barrier: nobody returns before everyone
 * has called it.
 */
public interface Collective {
    int rank();

    int size();

    String[] allGather(String message);

    /** The collective of a barrier task: {@link BarrierTaskContext#allGather}, ranks = partition ids. */
    static Collective barrier(BarrierTaskContext ctx) {
        return new Collective() {
            @Override public int rank() { return ctx.partitionId(); }
            @Override public int size() { return ctx.getTaskInfos().length; }
            @Override public String[] allGather(String message) { return ctx.allGather(message); }
        };
    }

    /** A single process: the message comes back alone. */
    static Collective solo() {
        return new Collective() {
            @Override public int rank() { return 0; }
            @Override public int size() { return 1; }
            @Override public String[] allGather(String message) { return new String[] {message}; }
        };
    }
}
