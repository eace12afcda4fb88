package dev.tornadolora.spark;

/** The even split of an optimizer step's rows over the tasks: rank r takes rows [r·G/N, (r+1)·G/N). */
public final class Shares {
    private Shares() {}

    /** Rows per task; refuses a split that does not divide. */
    public static int perTask(int globalBatch, int workers) {
        if (workers < 1) throw new IllegalArgumentException("--workers must be at least 1, got " + workers);
        if (globalBatch < 1) throw new IllegalArgumentException("the global batch must be at least 1 row, got " + globalBatch);
        if (globalBatch % workers != 0) {
            throw new IllegalArgumentException("the global batch (--batch x --grad-accum = " + globalBatch
                    + " rows) does not split evenly over " + workers + " workers; choose a batch x grad-accum"
                    + " that is a multiple of --workers");
        }
        return globalBatch / workers;
    }

    public static int from(int globalBatch, int workers, int rank) {
        return rank * perTask(globalBatch, workers);
    }

    public static int to(int globalBatch, int workers, int rank) {
        return (rank + 1) * perTask(globalBatch, workers);
    }
}
