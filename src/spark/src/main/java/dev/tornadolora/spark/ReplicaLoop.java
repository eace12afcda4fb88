package dev.tornadolora.spark;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The data-parallel training loop of one task, the same for every rank:
 * <pre>
 *   for each step s:  g_r = ∇ share_r      g = Σ_r g_r (rank order)      AdamW(g) on every replica
 *   every K steps, at the start and at the end: all (step, CRC32 of the adapters) equal, or fail loudly
 *   rank 0 writes the outputs
 * </pre>
 * A check rides on the next step's gradient message (the state after step s−1 travels with step s), so it
 * costs no extra barrier; only the final one has its own. The first check also proves that every replica
 * loaded the same resume point. With {@link Collective#solo()} this is the single-process run.
 */
public final class ReplicaLoop {
    private ReplicaLoop() {}

    public static TaskReport run(Replica replica, Collective collective, int checkEvery, int stageAttempt) {
        if (checkEvery < 1) throw new IllegalArgumentException("the checksum interval must be at least 1 step, got " + checkEvery);
        int rank = collective.rank(), world = collective.size();
        int g = replica.globalBatch();
        int from = Shares.from(g, world, rank), to = Shares.to(g, world, rank);
        boolean writer = rank == 0;
        long start = replica.completedSteps(), total = replica.totalSteps();
        List<TaskReport.Check> checks = new ArrayList<>();
        GradientAllReduce allReduce = new GradientAllReduce(collective, replica.trainableParameters());
        double[] losses = new double[(int) Math.max(0, total - start)];
        long t0 = System.nanoTime();
        for (long step = start + 1; step <= total; step++) {
            long before = step - 1;
            String check = before == start || before % checkEvery == 0 ? stamp(replica, before) : "";
            double share = replica.shareGradients(step, from, to);
            GradientAllReduce.Sum sum = allReduce.sum(share, check);
            if (!check.isEmpty()) checks.add(verify(sum.tags(), before, before == start, rank));
            replica.apply(step, sum.loss(), writer);
            losses[(int) (step - start - 1)] = sum.loss();
        }
        double meanStep = losses.length == 0 ? 0 : (System.nanoTime() - t0) / 1e9 / losses.length;
        checks.add(verify(collective.allGather(stamp(replica, total)), total, start == total, rank));
        replica.finish(writer);
        return new TaskReport(rank, world, stageAttempt, start, losses, List.copyOf(checks), allReduce.bytesSent(),
                allReduce.bytesReceived(), allReduce.numel(), meanStep);
    }

    /** {@code step:crc32} of this replica's adapters now. */
    private static String stamp(Replica replica, long step) {
        return step + ":" + Long.toHexString(ReplicaChecksum.of(replica.trainableParameters()));
    }

    /** Fails unless every rank sent the same stamp; {@code atStart}: then the resume points differ. */
    private static TaskReport.Check verify(String[] all, long step, boolean atStart, int rank) {
        long[] crcs = new long[all.length];
        boolean same = true;
        for (int r = 0; r < all.length; r++) {
            int colon = all[r].indexOf(':');
            same &= colon > 0 && all[r].equals(all[0]);
            crcs[r] = colon > 0 ? Long.parseUnsignedLong(all[r].substring(colon + 1), 16) : -1;
        }
        if (!same) {
            throw new ReplicaDivergedException((atStart ? "the replicas did not start from the same resume point"
                    : "the replicas diverged by step " + step) + ": rank " + rank + " sees "
                    + Arrays.toString(all) + " (step:crc32 by rank); the run stops rather than train different models");
        }
        return new TaskReport.Check(step, crcs);
    }
}
