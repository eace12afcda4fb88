package dev.tornadolora.kernels;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Splits an index range over a fixed number of threads: the executor a {@code Device} owns, which the JVM
 * backend's kernels and every other op of a model (norms, RoPE, attention, SwiGLU, the loss) run on, so one
 * thread setting governs all work. The calling thread works too, so N threads means N threads working, N − 1 of
 * them from this object's pool (daemon threads, started on first use, so that an unused executor costs nothing).
 * There is no process-wide instance: whoever makes one closes it ({@link #close} stops the pool).
 */
public final class Parallel implements AutoCloseable {
    private final int threads;
    private volatile ForkJoinPool pool;
    private volatile boolean closed;

    /** n ≥ 1 threads, the caller's among them. */
    public Parallel(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        this.threads = threads;
    }

    /** This instance's thread count. */
    public int size() {
        return threads;
    }

    /** Stops the pool's threads (after the work they hold); a later {@link #range} is an error. */
    @Override
    public void close() {
        ForkJoinPool p;
        synchronized (this) {
            closed = true;
            p = pool;
            pool = null;
        }
        if (p != null) {
            p.shutdown();
        }
    }

    private ForkJoinPool pool() {
        ForkJoinPool p = pool;
        if (p == null && threads > 1) {
            synchronized (this) {
                if (closed) {
                    throw new IllegalStateException("the device's executor is closed");
                }
                p = pool;
                if (p == null) {
                    p = new ForkJoinPool(threads - 1, pool -> {
                        var t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(pool);
                        t.setDaemon(true);
                        t.setName("tornado-lora-worker-" + t.getPoolIndex());
                        return t;
                    }, null, false);
                    pool = p;
                }
            }
        }
        return p;
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
    public void range(int n, int grain, RangeBody body) {
        ForkJoinPool p = n > grain ? pool() : null;
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

    /** Chunks per thread in {@link #range}: enough to even out a thread slowed down by other processes. */
    static final int CHUNKS_PER_THREAD = 4;
}
