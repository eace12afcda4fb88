package dev.tornadolora.spark;

import org.apache.spark.BarrierTaskContext;

import java.util.Base64;

/**
 * What the replicas need from each other: an all-gather of short texts (a barrier too: nobody returns before
 * everyone has called it) and the element-wise sum of a float array over all ranks, ranks being the barrier
 * stage's partition ids. Every implementation sums in rank order, starting from +0,
 * <pre>
 *   s = ((0 + v₀) + v₁) + … + v_{N−1}      (fp32, element by element)
 * </pre>
 * so every rank holds the same bits, and the sum of one-micro-batch shares equals a single process accumulating
 * the same micro-batches one after another.
 */
public interface Collective extends AutoCloseable {
    int rank();

    int size();

    String[] allGather(String message);

    /**
     * Replaces {@code values} (the same length on every rank) by their sum over all ranks, in rank order, and
     * gathers every rank's {@code stamp} (a few bytes riding along: a loss, a checksum).
     */
    Reduced sumInRankOrder(float[] values, byte[] stamp);

    /** The stamps by rank, and this rank's bytes on the wire for the call. */
    record Reduced(byte[][] stamps, long bytesSent, long bytesReceived) {}

    /** Frees what the collective holds (connections); a no-op for the driver's and the solo collective. */
    @Override
    default void close() {}

    /**
     * The collective of a barrier task through the driver: {@link BarrierTaskContext#allGather}, ranks = partition
     * ids, and the sum as an all-gather of every rank's whole array (base64 text), each rank adding them up itself.
     * The driver's barrier coordinator moves N² messages a step, and the task polls for the answer once a second:
     * {@link PeerMesh} is the collective of a run; this one stays for comparison ({@code spark.tornadolora.collective=driver}).
     */
    static Collective barrier(BarrierTaskContext ctx) {
        return new Collective() {
            @Override public int rank() { return ctx.partitionId(); }
            @Override public int size() { return ctx.getTaskInfos().length; }
            @Override public String[] allGather(String message) { return ctx.allGather(message); }
            @Override public Reduced sumInRankOrder(float[] values, byte[] stamp) { return sumByAllGather(this, values, stamp); }
        };
    }

    /** A single process: the sum is the array itself (plus +0, as every collective starts its sum from +0). */
    static Collective solo() {
        return new Collective() {
            @Override public int rank() { return 0; }
            @Override public int size() { return 1; }
            @Override public String[] allGather(String message) { return new String[] {message}; }
            @Override public Reduced sumInRankOrder(float[] values, byte[] stamp) {
                for (int i = 0; i < values.length; i++) values[i] = 0f + values[i];
                return new Reduced(new byte[][] {stamp.clone()}, 0, 0);
            }
        };
    }

    /** The sum through {@code c.allGather}: every rank sends {@code base64(stamp)|base64(values)} and adds all up. */
    private static Reduced sumByAllGather(Collective c, float[] values, byte[] stamp) {
        String mine = Base64.getEncoder().encodeToString(stamp) + "|" + FloatCodec.encode(values);
        String[] all = c.allGather(mine);
        long received = 0;
        float[] total = new float[values.length];
        byte[][] stamps = new byte[all.length][];
        for (int r = 0; r < all.length; r++) {
            String m = all[r];
            received += m.length();
            int bar = m.indexOf('|');
            if (bar < 0) throw new IllegalStateException("all-reduce: malformed message from rank " + r);
            stamps[r] = Base64.getDecoder().decode(m.substring(0, bar));
            float[] g = FloatCodec.decode(m.substring(bar + 1), values.length);
            for (int i = 0; i < total.length; i++) total[i] += g[i];
        }
        System.arraycopy(total, 0, values, 0, values.length);
        return new Reduced(stamps, mine.length(), received);
    }
}
