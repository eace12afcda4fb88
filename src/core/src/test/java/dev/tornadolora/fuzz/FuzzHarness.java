package dev.tornadolora.fuzz;

import dev.tornadolora.testing.Allocation;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAccumulator;

/**
 * Runs one fuzz input through a target under the loaders' contract: the target either reads the input or rejects
 * it with an {@link IllegalArgumentException} (a {@code SafeTensorsException} is one) carrying a message. Anything
 * else is a crash: another exception or error (NPE, IndexOutOfBounds, NegativeArraySize, BufferUnderflow,
 * OutOfMemoryError ...), a run over {@link #TIME_LIMIT_MS} (a hang), or an allocation beyond
 * {@link #allocationLimit} (memory taken on the header's word rather than the file's bytes). A crash fails the
 * property and leaves the input in {@code target/fuzz-crashes/} to be made a regression test.
 */
final class FuzzHarness {
    static final long TIME_LIMIT_MS = Long.getLong("fuzz.timeLimitMs", 5000);

    /** How a target answered an input. */
    enum Outcome { READ, REJECTED }

    /** A target: everything a user's file goes through. Steps it cannot take must throw IllegalArgumentException. */
    @FunctionalInterface
    interface Target {
        void run(byte[] input) throws Exception;
    }

    private static ExecutorService worker = newWorker();
    /** The target the worker is running, for {@link #noteRejection}. */
    private static volatile String current = "";
    private static final Map<String, AtomicLong> COUNTS = new ConcurrentHashMap<>();
    private static final Map<String, AtomicLong> REJECTIONS = new ConcurrentHashMap<>();
    private static final LongAccumulator MAX_ALLOCATED = new LongAccumulator(Math::max, 0);

    private FuzzHarness() {}

    private static ExecutorService newWorker() {
        return Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "fuzz-worker");
            t.setDaemon(true);
            return t;
        });
    }

    /** Inputs run before allocations are bounded tightly: the first ones also pay for class loading and caches. */
    static final int WARM_UP = 200;
    private static final AtomicLong RUNS = new AtomicLong();

    /**
     * Memory a target may take for an input: what decoding it can need, by the file's bytes (a fp32 layer built
     * from an NF4 record takes 8 bytes per byte of codes, and more while quantizing its initial weight), plus
     * slack; generous for the warm-up inputs.
     */
    static long allocationLimit(int inputBytes, boolean warm) {
        return (warm ? 2L << 20 : 64L << 20) + 256L * inputBytes;
    }

    static Outcome run(String name, byte[] input, Target target) {
        return run(name, input, target, TIME_LIMIT_MS);
    }

    static Outcome run(String name, byte[] input, Target target, long timeLimitMs) {
        Future<Outcome> f = worker.submit(() -> {
            current = name;
            long before = Allocation.currentThread();
            Outcome outcome;
            try {
                target.run(input);
                outcome = Outcome.READ;
            } catch (IllegalArgumentException e) {
                if (e.getMessage() == null || e.getMessage().isBlank()) {
                    throw new AssertionError("rejected without a message", e);
                }
                outcome = Outcome.REJECTED;
                noteRejection(e.getMessage());
            }
            long allocated = Allocation.currentThread() - before;
            boolean warm = RUNS.incrementAndGet() > WARM_UP;
            if (allocated > allocationLimit(input.length, warm)) {
                throw new AssertionError("allocated " + allocated + " bytes for an input of " + input.length);
            }
            if (warm) {
                MAX_ALLOCATED.accumulate(allocated);
            }
            return outcome;
        });
        try {
            Outcome outcome = f.get(timeLimitMs, TimeUnit.MILLISECONDS);
            COUNTS.computeIfAbsent(name + " " + outcome, k -> new AtomicLong()).incrementAndGet();
            return outcome;
        } catch (TimeoutException e) {
            f.cancel(true);
            worker.shutdownNow();
            worker = newWorker();  // the stuck thread is a daemon and is left behind
            throw crash(name, input, "no answer within " + timeLimitMs + " ms (a hang?)", null);
        } catch (ExecutionException e) {
            throw crash(name, input, "crashed", e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static AssertionError crash(String name, byte[] input, String what, Throwable cause) {
        Path saved = save(name, input);
        StringWriter trace = new StringWriter();
        if (cause != null) {
            cause.printStackTrace(new PrintWriter(trace));
        }
        return new AssertionError(name + ": " + what + " on the input saved as " + saved + " (" + input.length
                + " bytes)\n" + trace, cause);
    }

    private static Path save(String name, byte[] input) {
        try {
            Path dir = Files.createDirectories(Path.of("target", "fuzz-crashes"));
            String hash = HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(input), 0, 8);
            return Files.write(dir.resolve(name + "-" + hash + ".safetensors"), input);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Executions so far by target and outcome, and the most bytes one input (after warm-up) made a target allocate. */
    static String summary() {
        StringBuilder sb = new StringBuilder("fuzz executions:");
        new java.util.TreeMap<>(COUNTS).forEach((k, v) -> sb.append(' ').append(k).append('=').append(v.get()).append(';'));
        return sb.append(" most allocated for one input: ").append(MAX_ALLOCATED.get() >> 10).append(" KiB").toString();
    }

    /** Counts a rejection by a step that a target tried and went on from (see LoaderTargets.attempt). */
    static void noteRejection(String message) {
        REJECTIONS.computeIfAbsent(current + ": " + kind(message), k -> new AtomicLong()).incrementAndGet();
    }

    /** A rejection message with its particulars (file, names, numbers) blanked: which check answered. */
    static String kind(String message) {
        return message.replaceFirst("^fuzz: ", "").replaceAll("'(?:[^'\\\\]|\\\\.)*'", "'*'")
                .replaceAll("(?<![A-Za-z_])-?\\d+(\\.\\d+)?([eE][+-]?\\d+)?", "N").replaceAll("\\[[^\\]]*]", "[..]")
                .replaceAll("(JSON: [^:(]{0,60}).*", "$1");
    }

    /** How many different checks rejected inputs of a target, with counts when asked ({@code -Dfuzz.verbose}). */
    static String rejections(String name) {
        StringBuilder sb = new StringBuilder();
        long kinds = REJECTIONS.keySet().stream().filter(k -> k.startsWith(name + ": ")).count();
        sb.append(name).append(": ").append(kinds).append(" different rejection messages");
        if (Boolean.getBoolean("fuzz.verbose")) {
            new java.util.TreeMap<>(REJECTIONS).forEach((k, v) -> {
                if (k.startsWith(name + ": ")) sb.append("\n  ").append(v.get()).append("  ").append(k.substring(name.length() + 2));
            });
        }
        return sb.toString();
    }

    static long executions(String name) {
        return COUNTS.entrySet().stream().filter(e -> e.getKey().startsWith(name + " "))
                .mapToLong(e -> e.getValue().get()).sum();
    }
}
