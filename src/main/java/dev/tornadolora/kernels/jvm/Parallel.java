package dev.tornadolora.kernels.jvm;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.ArrayList;
import java.util.List;

/** Splits an index range over the JVM backend's threads (default: all cores; {@code -Dtornadolora.threads=N}). */
public final class Parallel {
    private static final int THREADS = Integer.getInteger("tornadolora.threads",
            Runtime.getRuntime().availableProcessors());
    private static final ForkJoinPool POOL = THREADS == ForkJoinPool.commonPool().getParallelism()
            ? ForkJoinPool.commonPool() : new ForkJoinPool(THREADS);

    private Parallel() {}

    public static int threads() {
        return THREADS;
    }

    /** A body over a half-open range {@code [from, to)}. */
    @FunctionalInterface
    public interface RangeBody {
        void run(int from, int to);
    }

    /**
     * Runs {@code body} over {@code [0, n)} cut into at most {@link #threads()} chunks, each a multiple of
     * {@code grain} long (but the last); runs inline when one chunk suffices.
     */
    public static void forRange(int n, int grain, RangeBody body) {
        int chunks = Math.min(THREADS, Math.max(1, (n + grain - 1) / grain));
        if (chunks <= 1) {
            body.run(0, n);
            return;
        }
        int per = ((n + chunks - 1) / chunks + grain - 1) / grain * grain;
        List<ForkJoinTask<?>> tasks = new ArrayList<>(chunks);
        for (int from = 0; from < n; from += per) {
            int f = from, t = Math.min(n, from + per);
            tasks.add(POOL.submit(() -> body.run(f, t)));
        }
        for (ForkJoinTask<?> task : tasks) {
            task.join();
        }
    }
}
