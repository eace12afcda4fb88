package dev.tornadolora.spark;

import dev.tornadolora.nn.Parameter;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What a replica adds to a single-process step: its share of the rows, the all-reduce of the share's gradients
 * and loss ({@link GradientAllReduce}), and the replica checks. Per step s:
 * <pre>
 *   rows [r·G/N, (r+1)·G/N) → g_r, loss_r      g = Σ_r g_r, loss = Σ_r loss_r (rank order)      then the same update
 *   every K steps, at the start and at the end: all (step, CRC32 of the adapters) equal, or fail loudly
 * </pre>
 * A check rides on the next step's gradient message (the state after step s−1 travels with step s), so it costs
 * no extra barrier; only the final one has its own. The first check also proves that every replica loaded the
 * same resume point and, with a {@code baseDigest} (e.g. {@link ReplicaChecksum#ofBases}), that every replica
 * quantized the same frozen base, before any update.
 */
public final class DataParallelStep {
    private final Collective collective;
    private final List<Parameter> params;
    private final int checkEvery;
    private final long start;
    private final long baseDigest;
    private final int from;
    private final int to;
    private final GradientAllReduce allReduce;
    private final List<TaskReport.Check> checks = new ArrayList<>();
    private final List<Double> losses = new ArrayList<>();
    private long firstDone;        // when the first step's all-reduce returned (after the rendezvous and warm-up)
    private long allReduceNanos;   // time in the all-reduces from the second step on
    private double seconds;

    /** @param start steps already done (the resume point), @param globalBatch rows per step, split evenly */
    public DataParallelStep(Collective collective, List<Parameter> params, int globalBatch, int checkEvery, long start) {
        this(collective, params, globalBatch, checkEvery, start, 0);
    }

    /** @param baseDigest a digest of the frozen weights, compared at the first check (0: none) */
    public DataParallelStep(Collective collective, List<Parameter> params, int globalBatch, int checkEvery, long start,
                            long baseDigest) {
        if (checkEvery < 1) throw new IllegalArgumentException("the checksum interval must be at least 1 step, got " + checkEvery);
        this.collective = collective;
        this.params = List.copyOf(params);
        this.checkEvery = checkEvery;
        this.start = start;
        this.baseDigest = baseDigest;
        this.from = Shares.from(globalBatch, collective.size(), collective.rank());
        this.to = Shares.to(globalBatch, collective.size(), collective.rank());
        this.allReduce = new GradientAllReduce(collective, this.params);
    }

    /** First row (position in the step) of this replica's share. */
    public int from() { return from; }

    /** End (exclusive) of this replica's share. */
    public int to() { return to; }

    public boolean writer() { return collective.rank() == 0; }

    /**
     * Step {@code step} (1-based): the share's gradients are in the parameters; replaces them by the sum over all
     * replicas and returns the step's loss.
     */
    public double allReduce(long step, double shareLoss) {
        long before = step - 1;
        String check = before == start || before % checkEvery == 0 ? stamp(before) : "";
        long t = System.nanoTime();
        GradientAllReduce.Sum sum = allReduce.sum(shareLoss, check);
        if (firstDone == 0) {
            firstDone = System.nanoTime();
        } else {
            allReduceNanos += System.nanoTime() - t;
        }
        if (!check.isEmpty()) checks.add(verify(sum.tags(), before, before == start));
        losses.add(sum.loss());
        return sum.loss();
    }

    /** The last check, after the last step ({@code step}), in a barrier of its own. */
    public void finish(long step) {
        seconds = firstDone == 0 ? 0 : (System.nanoTime() - firstDone) / 1e9;
        checks.add(verify(collective.allGather(stamp(step)), step, step == start));
    }

    /** This replica's account of the run, for the driver. */
    public TaskReport report(int stageAttempt) {
        double[] l = losses.stream().mapToDouble(Double::doubleValue).toArray();
        int timed = l.length - 1;  // steps 2..n: the first holds the rendezvous and the warm-up
        return new TaskReport(collective.rank(), collective.size(), stageAttempt, start, l, List.copyOf(checks),
                allReduce.bytesSent(), allReduce.bytesReceived(), allReduce.numel(), timed < 1 ? 0 : seconds / timed,
                timed < 1 ? 0 : allReduceNanos / 1e9 / timed);
    }

    /** {@code step:crc32} of this replica's adapters now; at the start also {@code :digest} of the frozen base. */
    private String stamp(long step) {
        String s = step + ":" + Long.toHexString(ReplicaChecksum.of(params));
        return step == start && baseDigest != 0 ? s + ":" + Long.toHexString(baseDigest) : s;
    }

    /** Fails unless every rank sent the same stamp; {@code atStart}: then the resume points differ. */
    private TaskReport.Check verify(String[] all, long step, boolean atStart) {
        long[] crcs = new long[all.length];
        boolean same = true;
        for (int r = 0; r < all.length; r++) {
            int colon = all[r].indexOf(':');
            same &= colon > 0 && all[r].equals(all[0]);
            int end = colon > 0 && all[r].indexOf(':', colon + 1) > 0 ? all[r].indexOf(':', colon + 1) : all[r].length();
            crcs[r] = colon > 0 ? Long.parseUnsignedLong(all[r].substring(colon + 1, end), 16) : -1;
        }
        if (!same) {
            throw new ReplicaDivergedException((atStart ? "the replicas did not start from the same resume point"
                    + (baseDigest != 0 ? " and base (step:adapters crc32:base digest)" : "")
                    : "the replicas diverged by step " + step) + ": rank " + collective.rank() + " sees "
                    + Arrays.toString(all) + " (step:crc32 by rank); the run stops rather than train different models");
        }
        return new TaskReport.Check(step, crcs);
    }
}
