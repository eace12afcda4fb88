package dev.tornadolora.bench;

import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.HeapCheck;
import dev.tornadolora.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Runs workloads on devices. For each workload, each device in turn: one first call whose outputs are checked
 * against the JVM backend's on the same layer and inputs, then warm-up calls, then timed calls. Every call is
 * what training does per layer and step: forward, plus backward for {@code forward_backward}, straight on the
 * {@link LoraBackend} with the layer's frozen base (so a device keeps its copy of the base between calls).
 *
 * <p>The JVM backend is the oracle: it runs first, its first outputs are what the other devices must match
 * (relative max-norm within {@link Config#tolerance}); on workloads small enough it is itself checked against
 * the scalar reference. A device that throws or differs gets {@code verified = false} and the run goes on.
 */
public final class BenchRunner {

    /**
     * @param reps            timed calls at most
     * @param minReps         timed calls at least, whatever the budget
     * @param warmup          untimed calls after the first one at least (three at least), before timing; warm-up
     *                        lasts a third of the budget at least and goes on until a call is within
     *                        {@link #STEADY} of the fastest so far (steady state: the code is compiled), for at
     *                        most the budget; 0: no warm-up (not steady)
     * @param budgetSeconds   warm-up and timing time per workload and device, after which timing stops
     *                        (once {@code minReps} calls are timed)
     * @param seed            seeds the layers and inputs
     * @param tolerance       max|device − jvm| / max|jvm| allowed for every output
     * @param referenceCheckMaxFlops the JVM backend is checked against the scalar reference on workloads of at
     *                        most this many FLOPs (the reference is one slow thread)
     * @param checkSteps      a {@link Workload.Op#STEP} workload's checked steps: each device takes this many steps
     *                        from the same model and data as the JVM backend before warm-up
     * @param stepTolerance   |device loss − jvm loss| / |jvm loss| allowed at every checked step
     */
    public record Config(int reps, int minReps, int warmup, double budgetSeconds, long seed, double tolerance,
                         double referenceCheckMaxFlops, int checkSteps, double stepTolerance) {
        public Config {
            if (reps < 1) throw new IllegalArgumentException("reps must be >= 1, got " + reps);
            if (minReps < 1 || minReps > reps) {
                throw new IllegalArgumentException("min reps must be in [1, reps=" + reps + "], got " + minReps);
            }
            if (warmup < 0) throw new IllegalArgumentException("warmup must be >= 0, got " + warmup);
            if (!(budgetSeconds >= 0)) throw new IllegalArgumentException("budget must be >= 0 s, got " + budgetSeconds);
            if (!(tolerance > 0)) throw new IllegalArgumentException("tolerance must be positive, got " + tolerance);
            if (checkSteps < 1) throw new IllegalArgumentException("check steps must be >= 1, got " + checkSteps);
            if (!(stepTolerance > 0)) {
                throw new IllegalArgumentException("step tolerance must be positive, got " + stepTolerance);
            }
        }

        /** With the step check's defaults: three steps, losses within 1e-5 relative (issue 22's parity target). */
        public Config(int reps, int minReps, int warmup, double budgetSeconds, long seed, double tolerance,
                      double referenceCheckMaxFlops) {
            this(reps, minReps, warmup, budgetSeconds, seed, tolerance, referenceCheckMaxFlops, 3, 1e-5);
        }

        public static Config defaults() {
            return new Config(20, 3, 2, 2.0, 0, 1e-4, 5e8);
        }

        public Config withReps(int reps, int minReps) {
            return new Config(reps, minReps, warmup, budgetSeconds, seed, tolerance, referenceCheckMaxFlops, checkSteps,
                    stepTolerance);
        }
    }

    /** Told of each result as soon as it is measured; the CLI prints it as a table row. */
    @FunctionalInterface
    public interface Listener {
        void measured(BenchResult result);
    }

    private final Config config;
    private final LoraBackend oracle;
    private final LoraBackend scalarReference;

    /** With {@code oracle} (the JVM backend of the caller's device) as the backend every device must match. */
    public BenchRunner(Config config, LoraBackend oracle) {
        this(config, oracle, ScalarLoraKernels.INSTANCE);
    }

    /** With another oracle (the backend every device must match) and reference (which checks the oracle). */
    public BenchRunner(Config config, LoraBackend oracle, LoraBackend scalarReference) {
        this.config = config;
        this.oracle = oracle;
        this.scalarReference = scalarReference;
    }

    /**
     * Measures every workload on every device; results come workload by workload, the oracle's first when it is
     * among the devices (its median is the baseline of {@link BenchResult#speedupVsJvm()}).
     */
    public List<BenchResult> run(List<Workload> workloads, List<LoraBackend> devices, Listener listener) {
        workloads.forEach(BenchRunner::checkWorkload);
        List<LoraBackend> order = new ArrayList<>(devices);
        boolean oracleMeasured = order.remove(oracle);
        if (oracleMeasured) {
            order.add(0, oracle);
        }
        List<BenchResult> results = new ArrayList<>();
        LoRALinear layer = null;
        // Each device binds a layer once, for all the workloads on it (as a model binds its layers once).
        Map<LoraBackend, LayerKernels> bound = new HashMap<>();  // backends compare by identity
        try {
            for (Workload w : workloads) {
                if (w.op() == Workload.Op.STEP) {  // a model of its own on each device
                    new StepBench(this, oracle).measureWorkload(w, order, oracleMeasured, r -> {
                        results.add(r);
                        listener.measured(r);
                    });
                    continue;
                }
                if (layer == null || !sameLayer(layer, w)) {
                    closeAll(bound);
                    layer = null;  // lets the old one go before the new one is allocated
                    layer = buildLayer(w);
                }
                measureWorkload(w, layer, order, oracleMeasured, bound, results, listener);
            }
        } finally {
            closeAll(bound);
        }
        return results;
    }

    private static void closeAll(Map<LoraBackend, LayerKernels> bound) {
        RuntimeException failure = null;
        for (LayerKernels k : bound.values()) {
            try {
                k.close();
            } catch (RuntimeException e) {
                failure = e;
            }
        }
        bound.clear();
        if (failure != null) {
            throw failure;
        }
    }

    private void measureWorkload(Workload w, LoRALinear layer, List<LoraBackend> order, boolean oracleMeasured,
                                 Map<LoraBackend, LayerKernels> bound, List<BenchResult> results, Listener listener) {
        {
            Case c = new Case(w, layer, config.seed);
            Check againstOracle = oracleMeasured ? null : oracleCheck(c);
            double jvmMs = Double.NaN;
            for (LoraBackend k : order) {
                Measured m = measure(k, bound, c, k == oracle ? selfCheck(c) : againstOracle);
                BenchResult r = m.result;
                if (k == oracle) {
                    againstOracle = m.firstOutputs != null ? new Check(oracle.name(), m.firstOutputs, null)
                            : new Check(oracle.name(), null, "no reference: the " + oracle.name() + " backend failed");
                    jvmMs = r.verified() ? r.msMedian() : Double.NaN;
                }
                r = r.withSpeedup(jvmMs);
                results.add(r);
                listener.measured(r);
            }
        }
    }

    private record Measured(BenchResult result, Outputs firstOutputs) {}

    /**
     * What a device's first outputs are compared with: {@code expected} from the named backend, or nothing
     * ({@code expected == null}): the device is the oracle and too slow to check, or {@code unavailable} says
     * why there is no reference to compare with.
     */
    private record Check(String reference, Outputs expected, String unavailable) {}

    /** The oracle's outputs, when the oracle is not one of the measured devices. */
    private Check oracleCheck(Case c) {
        try {
            return new Check(oracle.name(), Outputs.compute(oracle, c), null);
        } catch (RuntimeException e) {
            return new Check(oracle.name(), null, "no reference: the " + oracle.name() + " backend failed: " + message(e));
        }
    }

    /** The oracle itself is checked against the scalar reference where that is affordable. */
    private Check selfCheck(Case c) {
        return c.workload.flops() <= config.referenceCheckMaxFlops
                ? new Check(scalarReference.name(), Outputs.compute(scalarReference, c), null)
                : new Check("none", null, null);
    }

    /** A warm-up call within this fraction of the fastest before it means steady state (JIT compiled). */
    public static final double STEADY = 0.15;
    /** Timed calls whose median exceeds this many times their fastest did not run at a steady state either. */
    public static final double UNSETTLED = 2.0;

    /**
     * One device on one workload: the layer bound on the device, the checked first call, warm-up to a steady
     * state, timed calls; the binding is closed at the end.
     */
    private Measured measure(LoraBackend backend, Map<LoraBackend, LayerKernels> bound, Case c, Check check) {
        Workload w = c.workload;
        double weightBytes = w.weightBytes(c.layer.base().bytesPerParameter());
        try {
            LayerKernels k = bound.computeIfAbsent(backend, b -> bind(b, c.layer));
            LayerKernels.Profiling profiler = k instanceof LayerKernels.Profiling p ? p : null;
            if (profiler != null) {
                profiler.setProfiling(true);
            }
            Outputs first = new Outputs(c);
            long t0 = System.nanoTime();
            Timing firstCall = first.call(k, c);
            double msFirst = millis(System.nanoTime() - t0);
            double err = check.expected == null ? Double.NaN : first.maxRelativeError(check.expected);
            String error = check.unavailable != null ? check.unavailable
                    : err > config.tolerance ? String.format(Locale.ROOT,
                            "outputs differ from %s: max relative error %.3g > tolerance %.1g", check.reference, err,
                            config.tolerance)
                    : null;

            Outputs o = new Outputs(c);
            boolean steady = warmUp(() -> o.call(k, c));
            List<Double> kernel = new ArrayList<>(), transfer = new ArrayList<>();
            double[] sorted = timeCalls(() -> {
                Timing timing = o.call(k, c);
                if (timing != null) {
                    kernel.add(timing.kernelMs);
                    transfer.add(timing.transferMs);
                }
            });
            // Timed calls whose median is over twice their fastest were still being compiled (or starved).
            steady = steady && Stats.median(sorted) <= UNSETTLED * sorted[0];
            long deviceBytes = profiler == null ? -1 : profiler.deviceBytes();
            if (profiler != null) {
                profiler.setProfiling(false);
            }
            BenchResult r = new BenchResult(backend.name(), w, sorted.length, Stats.median(sorted), sorted[0],
                    sorted[sorted.length - 1], msFirst, error == null, check.reference, err, error,
                    firstCall == null ? Double.NaN : firstCall.compileMs, Stats.median(kernel), Stats.median(transfer),
                    weightBytes, steady, deviceBytes, -1, -1, Double.NaN);
            return new Measured(r, error == null ? first : null);
        } catch (RuntimeException | Error e) {
            if (e instanceof VirtualMachineError && !(e instanceof OutOfMemoryError)) {
                throw e;
            }
            LayerKernels broken = bound.remove(backend);  // a failed binding is not reused
            if (broken != null) {
                try {
                    broken.close();
                } catch (RuntimeException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            BenchResult r = new BenchResult(backend.name(), w, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, false,
                    check.reference, Double.NaN,
                    "threw " + message(e), Double.NaN, Double.NaN, Double.NaN, weightBytes, false, -1, -1, -1, Double.NaN);
            return new Measured(r, null);
        }
    }

    /**
     * Warm-up as the compare harness does it: for at least a third of the budget and {@code config.warmup} calls
     * (three at least), and on until a call is within {@link #STEADY} of the fastest so far (the JIT has compiled
     * the vector kernels; two slow interpreted calls would otherwise look steady), for at most the budget (one call
     * when a single call exceeds it). Returns whether the steady state was reached.
     */
    boolean warmUp(Runnable call) {
        if (config.warmup == 0) {
            return false;
        }
        long budget = budgetNanos();
        long start = System.nanoTime();
        double fastest = Double.POSITIVE_INFINITY;
        for (int i = 1; ; i++) {
            long t = System.nanoTime();
            call.run();
            long now = System.nanoTime();
            double callMs = millis(now - t);
            fastest = Math.min(fastest, callMs);
            boolean minimum = i >= Math.max(3, config.warmup) && now - start >= budget / 3;
            if (minimum && callMs <= (1 + STEADY) * fastest) {
                return true;
            }
            if (now - start >= budget) {
                return false;
            }
        }
    }

    /** Timed calls, {@code reps} at most, stopping after the budget once {@code minReps} ran: their ms, sorted. */
    double[] timeCalls(Runnable call) {
        long budget = budgetNanos();
        long start = System.nanoTime();
        List<Double> ms = new ArrayList<>();
        while (ms.size() < config.reps && (ms.size() < config.minReps || System.nanoTime() - start < budget)) {
            long t = System.nanoTime();
            call.run();
            ms.add(millis(System.nanoTime() - t));
        }
        return ms.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    }

    private long budgetNanos() {
        return (long) (config.budgetSeconds * 1e9);
    }

    Config config() {
        return config;
    }

    private static LayerKernels bind(LoraBackend backend, LoRALinear layer) {
        return backend.bind(layer.base(), layer.bias(), layer.rank(), layer.scale());
    }

    static String message(Throwable e) {
        String m = e.getMessage();
        return e.getClass().getSimpleName() + (m == null ? "" : ": " + m.replace('\n', ' '));
    }

    static double millis(long nanos) {
        return nanos / 1e6;
    }

    private static void checkWorkload(Workload w) {
        long block = (long) Nf4Tensor.DEFAULT_BLOCK_SIZE * Nf4Tensor.DEFAULT_SCALER_BLOCK_SIZE;
        long numel = (long) w.inDim() * w.outDim();
        if (w.base() == Workload.Base.NF4 && numel % block != 0) {
            throw new IllegalArgumentException("workload " + w.label() + ": an nf4 base needs in*out to be a multiple of "
                    + block + " (block_size 64 x scaler_block_size 256), got " + numel);
        }
    }

    private static boolean sameLayer(LoRALinear l, Workload w) {
        return l.inDim() == w.inDim() && l.outDim() == w.outDim() && l.rank() == w.rank()
                && l.quantizeBase() == (w.base() == Workload.Base.NF4);
    }

    /**
     * The layer of a workload: torchtune's initialisation (seeded), alpha = 2·rank, no bias, no dropout, and a
     * random B instead of zeros so that the LoRA path (and dA) contributes to what is verified.
     */
    private LoRALinear buildLayer(Workload w) {
        // The layer (fp32 base while it is built), x, y, dy, dx and the timing buffers.
        HeapCheck.require(HeapCheck.sum(HeapCheck.product(w.inDim(), w.outDim(), 8),
                HeapCheck.product(w.tokens(), (long) w.inDim() + w.outDim(), 16)),
                "workload " + w.label());
        LoRALinear l = LoRALinear.builder(w.inDim(), w.outDim()).rank(w.rank()).alpha(2f * w.rank())
                .quantizeBase(w.base() == Workload.Base.NF4).seed(config.seed).build().eval();
        SplittableRandom rng = new SplittableRandom(config.seed ^ 0x5DEECE66DL);
        l.load("lora_b.weight", new Tensor(new int[] {w.outDim(), w.rank()},
                uniform(rng, w.outDim() * w.rank(), (float) (1 / Math.sqrt(w.rank())))));
        return l;
    }

    static float[] uniform(SplittableRandom rng, int n, float bound) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) ((rng.nextDouble() * 2 - 1) * bound);
        }
        return a;
    }

    /** A workload's layer and inputs: x [T, in] and the upstream gradient dy [T, out], uniform in ±1. */
    static final class Case {
        final Workload workload;
        final LoRALinear layer;
        final float[] x;
        final float[] dy;

        Case(Workload w, LoRALinear layer, long seed) {
            this.workload = w;
            this.layer = layer;
            SplittableRandom rng = new SplittableRandom(seed * 1_000_003L + 31L * w.tokens() + w.inDim());
            this.x = uniform(rng, w.tokens() * w.inDim(), 1f);
            this.dy = w.op() == Workload.Op.FORWARD_BACKWARD ? uniform(rng, w.tokens() * w.outDim(), 1f) : null;
        }
    }

    /** Where a profiling device's time went in one call (forward plus backward). */
    private record Timing(double compileMs, double kernelMs, double transferMs) {}

    /** The outputs of one call: y, and for forward_backward dx, dA and dB. */
    static final class Outputs {
        final float[] y;
        final float[] dx;
        final float[] gradA;
        final float[] gradB;

        Outputs(Case c) {
            Workload w = c.workload;
            int t = w.tokens(), r = w.rank();
            y = new float[t * w.outDim()];
            boolean backward = w.op() == Workload.Op.FORWARD_BACKWARD;
            dx = backward ? new float[t * w.inDim()] : null;
            gradA = backward ? new float[r * w.inDim()] : null;
            gradB = backward ? new float[w.outDim() * r] : null;
        }

        static Outputs compute(LoraBackend backend, Case c) {
            Outputs o = new Outputs(c);
            try (LayerKernels k = bind(backend, c.layer)) {
                o.call(k, c);
            }
            return o;
        }

        /** One call; returns the profile summed over forward and backward, or null without a profiler. */
        Timing call(LayerKernels k, Case c) {
            int t = c.workload.tokens();
            Adapters adapters = new Adapters(c.layer.loraA(), c.layer.loraB());
            LayerKernels.Activations saved = k.forward(c.x, null, t, adapters, y);
            Timing timing = timing(k, null);
            if (dx != null) {
                Arrays.fill(gradA, 0f);  // gradients accumulate; every call starts from zero
                Arrays.fill(gradB, 0f);
                k.backward(saved, c.dy, dx, adapters, new Adapters(gradA, gradB));
                timing = timing(k, timing);
            }
            return timing;
        }

        private static Timing timing(LayerKernels k, Timing before) {
            if (!(k instanceof LayerKernels.Profiling p) || p.lastProfile() == null) {
                return null;
            }
            LayerKernels.Profiling.Profile q = p.lastProfile();
            return before == null ? new Timing(q.compileMs(), q.kernelMs(), q.transferMs())
                    : new Timing(before.compileMs + q.compileMs(), before.kernelMs + q.kernelMs(),
                            before.transferMs + q.transferMs());
        }

        /** max over the outputs of max|this − expected| / max|expected|. */
        double maxRelativeError(Outputs expected) {
            double e = relative(y, expected.y);
            if (dx != null) {
                e = Math.max(e, relative(dx, expected.dx));
                e = Math.max(e, relative(gradA, expected.gradA));
                e = Math.max(e, relative(gradB, expected.gradB));
            }
            return e;
        }

        /** NaN anywhere in {@code actual} is an infinite error (Math.max would otherwise keep or drop it). */
        static double relative(float[] actual, float[] expected) {
            double diff = 0, scale = 0;
            for (int i = 0; i < expected.length; i++) {
                double d = Math.abs((double) actual[i] - expected[i]);
                if (Double.isNaN(d)) return Double.POSITIVE_INFINITY;
                diff = Math.max(diff, d);
                scale = Math.max(scale, Math.abs(expected[i]));
            }
            return scale == 0 ? (diff == 0 ? 0 : Double.POSITIVE_INFINITY) : diff / scale;
        }
    }
}
