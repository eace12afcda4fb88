package dev.tornadolora.kernels.jvm;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;

/**
 * Splits an index range over the JVM backend's threads: by default all cores; {@code -Dtornadolora.threads=N}
 * or {@link #setThreads} to change it. The calling thread runs one chunk itself, so N threads means N
 * threads working, N − 1 of them from a dedicated pool.
 */
public final class Parallel {
    private static volatile ForkJoinPool pool;
    private static volatile int threads;

    static {
        setThreads(Integer.getInteger("tornadolora.threads", Runtime.getRuntime().availableProcessors()));
    }

    private Parallel() {}

    public static int threads() {
        return threads;
    }

    /** Uses n threads from now on (n ≥ 1). */
    public static synchronized void setThreads(int n) {
        if (n < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + n);
        }
        ForkJoinPool old = pool;
        pool = n > 1 ? new ForkJoinPool(n - 1) : null;
        threads = n;
        if (old != null) {
            old.shutdown();
        }
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
        ForkJoinPool p = pool;
        int chunks = p == null ? 1 : Math.min(threads, Math.max(1, (n + grain - 1) / grain));
        if (chunks <= 1) {
            body.run(0, n);
            return;
        }
        int per = ((n + chunks - 1) / chunks + grain - 1) / grain * grain;
        List<ForkJoinTask<?>> tasks = new ArrayList<>(chunks - 1);
        for (int from = per; from < n; from += per) {
            int f = from, t = Math.min(n, from + per);
            tasks.add(p.submit(() -> body.run(f, t)));
        }
        Throwable failure = null;
        try {
            body.run(0, Math.min(n, per));
        } catch (RuntimeException | Error e) {
            failure = e;
        }
        for (ForkJoinTask<?> task : tasks) {
            try {
                task.join();
            } catch (RuntimeException | Error e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure instanceof RuntimeException re) {
            throw re;
        }
        if (failure instanceof Error err) {
            throw err;
        }
    }
}
