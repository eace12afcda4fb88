package dev.tornadolora.spark;

/**
 * The data-parallel loop over a {@link Replica}, the same on every rank: for each step, the share's gradients,
 * the all-reduce and checks of {@link DataParallelStep}, the same update everywhere; rank 0 writes the outputs.
 * With {@link Collective#solo()} it is the single-process run.
 */
public final class ReplicaLoop {
    private ReplicaLoop() {}

    public static TaskReport run(Replica replica, Collective collective, int checkEvery, int stageAttempt) {
        long start = replica.completedSteps(), total = replica.totalSteps();
        DataParallelStep dp = new DataParallelStep(collective, replica.trainableParameters(), replica.globalBatch(),
                checkEvery, start);
        for (long step = start + 1; step <= total; step++) {
            double share = replica.shareGradients(step, dp.from(), dp.to());
            replica.apply(step, dp.allReduce(step, share), dp.writer());
        }
        dp.finish(total);
        replica.finish(dp.writer());
        return dp.report(stageAttempt);
    }
}
