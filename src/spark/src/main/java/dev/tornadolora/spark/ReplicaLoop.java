package dev.tornadolora.spark;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The data-parallel training loop of one task, the same for every rank:
 * <pre>
 *   agree on the start step and checksum       (every replica loaded the same resume point, or fail)
 *   for each step:  g_r = ∇ share_r      g = Σ_r g_r (rank order)      AdamW(g) on every replica
 *                   every K steps and at the end: all checksums equal, or fail loudly
 *   rank 0 writes the outputs
 * </pre>
 * With {@link Collective#solo()} it is the single-process run.
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
        checks.add(check(replica, collective, start, true));
        GradientAllReduce allReduce = new GradientAllReduce(collective, replica.trainableParameters());
        double[] losses = new double[(int) Math.max(0, total - start)];
        long t0 = System.nanoTime();
        for (long step = start + 1; step <= total; step++) {
            double share = replica.shareGradients(step, from, to);
            double loss = allReduce.sum(share);
            replica.apply(step, loss, writer);
            losses[(int) (step - start - 1)] = loss;
            if (step % checkEvery == 0 || step == total) checks.add(check(replica, collective, step, false));
        }
        double meanStep = losses.length == 0 ? 0 : (System.nanoTime() - t0) / 1e9 / losses.length;
        replica.finish(writer);
        return new TaskReport(rank, world, stageAttempt, start, losses, List.copyOf(checks), allReduce.bytesSent(),
                allReduce.bytesReceived(), allReduce.numel(), meanStep);
    }

    /** Exchanges (step, checksum) and fails on any difference; {@code atStart}: the resume points differ. */
    private static TaskReport.Check check(Replica replica, Collective collective, long step, boolean atStart) {
        long crc = ReplicaChecksum.of(replica.trainableParameters());
        String[] all = collective.allGather(step + ":" + Long.toHexString(crc));
        long[] crcs = new long[all.length];
        boolean same = true;
        for (int r = 0; r < all.length; r++) {
            int colon = all[r].indexOf(':');
            long theirStep = Long.parseLong(all[r].substring(0, colon));
            crcs[r] = Long.parseUnsignedLong(all[r].substring(colon + 1), 16);
            same &= theirStep == step && crcs[r] == crc;
        }
        if (!same) {
            throw new ReplicaDivergedException((atStart ? "the replicas did not start from the same resume point"
                    : "the replicas diverged after step " + step) + ": rank " + collective.rank() + " sees "
                    + Arrays.toString(all) + " (step:crc32 by rank); the run stops rather than train different models");
        }
        return new TaskReport.Check(step, crcs);
    }
}
