package dev.tornadolora.kernels.jvm;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Splits an index range over the JVM backend's threads: by default all cores; {@code -Dtornadolora.threads=N}
 * or {@link #setThreads} to change it. The calling thread works too, so N threads means N threads working,
 * N − 1 of them from a dedicated pool.
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
     * Runs {@code body} over {@code [0, n)} cut into chunks a multiple of {@code grain} long (but the last): up to
     * {@link #CHUNKS_PER_THREAD} per thread, which the threads (the caller among them) take in turn until none is
     * left. On a machine shared with other processes a thread that gets less CPU then takes fewer chunks, instead
     * of holding everyone up with a fixed share. Runs inline when one chunk suffices.
     */
    public static void forRange(int n, int grain, RangeBody body) {
        ForkJoinPool p = pool;
        int maxChunks = p == null ? 1 : threads * CHUNKS_PER_THREAD;
        int chunks = Math.min(maxChunks, Math.max(1, (n + grain - 1) / grain));
        if (chunks <= 1) {
            body.run(0, n);
            return;
        }
        int per = ((n + chunks - 1) / chunks + grain - 1) / grain * grain;
        int count = (n + per - 1) / per;
        AtomicInteger next = new AtomicInteger();
        Runnable worker = () -> {
            for (int c; (c = next.getAndIncrement()) < count; ) {
                body.run(c * per, Math.min(n, (c + 1) * per));
            }
        };
        List<ForkJoinTask<?>> tasks = new ArrayList<>(threads - 1);
        for (int t = 1; t < Math.min(threads, count); t++) {
            tasks.add(p.submit(worker));
        }
        Throwable failure = null;
        try {
            worker.run();
        } catch (RuntimeException | Error e) {
            failure = e;
            next.set(count);  // the others stop after their current chunk
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

    /** Chunks per thread in {@link #forRange}: enough to even out a thread slowed down by other processes. */
    static final int CHUNKS_PER_THREAD = 4;
}
