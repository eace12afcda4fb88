package dev.tornadolora.bench;

import dev.tornadolora.device.Device;
import dev.tornadolora.device.DeviceOptions;
import dev.tornadolora.finetune.DeviceStep;
import dev.tornadolora.finetune.FinetuneConfig;
import dev.tornadolora.finetune.Finetuner;
import dev.tornadolora.finetune.StepExecutor;
import dev.tornadolora.finetune.TokenDataset;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.tensor.HalfWeight;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.train.Trainer;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * A {@link Workload.Op#STEP} workload on each device: {@code finetune}'s optimizer step (forward, transformers'
 * causal-LM loss, backward, clipping to 1.0, AdamW) on a model of the workload's configuration with random weights
 * (the same seed on every device) over random token rows. A device's step is what {@code finetune} runs there:
 * the {@link DeviceStep} an accelerator offers for the model (TornadoVM's whole-step device plan), else the
 * {@link Trainer} with the device's projection kernels (the JVM backend).
 *
 * <p>Check: every device takes {@link BenchRunner.Config#checkSteps} steps from the same start as the JVM backend;
 * each step's loss must equal the JVM backend's within {@link BenchRunner.Config#stepTolerance} relative. Then
 * warm-up and timed steps as for the layer workloads (the model trains on; its losses are not checked there).
 * A device with a profiler reports per step the kernel time, the bytes it moved each way and its memory.
 */
final class StepBench {
    /** Rows of data; the steps walk through them in order, B at a time. */
    private static final int ROWS_PER_BATCH = 4;
    private static final double LR = 1e-3;
    private static final double MAX_GRAD_NORM = 1.0;

    private final BenchRunner runner;
    private final BenchRunner.Config config;
    private final LoraBackend oracle;

    StepBench(BenchRunner runner, LoraBackend oracle) {
        this.runner = runner;
        this.config = runner.config();
        this.oracle = oracle;
    }

    /** The workload on each device of {@code order} (the oracle first when it is measured), results as they come. */
    void measureWorkload(Workload w, List<LoraBackend> order, boolean oracleMeasured, Consumer<BenchResult> out) {
        double[] expected = null;
        String unavailable = null;
        if (!oracleMeasured) {
            try {
                expected = checkedLosses(oracle, w);
            } catch (RuntimeException e) {
                unavailable = "no reference: the " + oracle.name() + " backend failed: " + BenchRunner.message(e);
            }
        }
        double jvmMs = Double.NaN;
        for (LoraBackend k : order) {
            boolean isOracle = k == oracle;
            Measured m = measure(k, w, isOracle ? null : expected, isOracle ? null : unavailable);
            if (isOracle) {
                expected = m.losses;
                unavailable = m.losses == null ? "no reference: the " + oracle.name() + " backend failed" : null;
                jvmMs = m.result.verified() ? m.result.msMedian() : Double.NaN;
            }
            out.accept(m.result.withSpeedup(jvmMs));
        }
    }

    private record Measured(BenchResult result, double[] losses) {}

    /** The oracle's checked losses, when the oracle itself is not measured. */
    private double[] checkedLosses(LoraBackend backend, Workload w) {
        try (Device device = Device.of(backend, DeviceOptions.defaults().threads());
             LlamaForCausalLM model = model(w, device);
             Run run = new Run(model, w)) {
            double[] losses = new double[config.checkSteps()];
            for (int i = 0; i < losses.length; i++) losses[i] = run.step();
            return losses;
        }
    }

    /**
     * One device: the model built there, the checked steps (the first one timed as {@code ms_first}), warm-up and
     * timed steps. {@code expected} null: this is the oracle (or there is no reference, {@code unavailable} says why).
     */
    private Measured measure(LoraBackend backend, Workload w, double[] expected, String unavailable) {
        double weightBytes = Double.NaN;
        try (Device device = Device.of(backend, DeviceOptions.defaults().threads());
             LlamaForCausalLM model = model(w, device);
             Run run = new Run(model, w)) {
            weightBytes = w.weightBytes(model.frozenWeights().get("model.layers.0.self_attn.q_proj.weight")
                    .bytesPerParameter());
            double[] losses = new double[config.checkSteps()];
            long t0 = System.nanoTime();
            losses[0] = run.step();
            double msFirst = BenchRunner.millis(System.nanoTime() - t0);
            for (int i = 1; i < losses.length; i++) losses[i] = run.step();
            double err = expected == null ? Double.NaN : relativeError(losses, expected);
            String reference = expected != null || unavailable != null ? oracle.name() : "none";
            String error = unavailable != null ? unavailable
                    : err > config.stepTolerance() ? String.format(Locale.ROOT,
                            "step losses differ from %s: max relative error %.3g > tolerance %.1g", oracle.name(), err,
                            config.stepTolerance())
                    : !Double.isFinite(losses[0]) ? "the loss is not finite: " + losses[0]
                    : null;
            boolean steady = runner.warmUp(run::step);
            List<Double> kernel = new ArrayList<>(), in = new ArrayList<>(), outBytes = new ArrayList<>();
            double[] sorted = runner.timeCalls(() -> {
                run.step();
                Map<String, Double> st = run.stats();
                double k = st.entrySet().stream().filter(e -> e.getKey().startsWith("kernel_ms_"))
                        .mapToDouble(Map.Entry::getValue).sum();
                if (st.containsKey("copy_in_bytes")) {
                    kernel.add(k);
                    in.add(st.get("copy_in_bytes"));
                    outBytes.add(st.get("copy_out_bytes"));
                }
            });
            steady = steady && Stats.median(sorted) <= BenchRunner.UNSETTLED * sorted[0];
            long deviceBytes = run.deviceBytes();
            BenchResult r = new BenchResult(backend.name(), w, sorted.length, Stats.median(sorted), sorted[0],
                    sorted[sorted.length - 1], msFirst, error == null, reference, err, error, Double.NaN,
                    Stats.median(kernel), Double.NaN, weightBytes, steady,
                    deviceBytes, medianBytes(in), medianBytes(outBytes),
                    Double.NaN);
            return new Measured(r, error == null ? losses : null);
        } catch (RuntimeException | Error e) {
            if (e instanceof VirtualMachineError && !(e instanceof OutOfMemoryError)) {
                throw e;
            }
            BenchResult r = new BenchResult(backend.name(), w, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, false,
                    oracle.name(), Double.NaN, "threw " + BenchRunner.message(e), Double.NaN, Double.NaN, Double.NaN,
                    weightBytes, false, -1, -1, -1, Double.NaN);
            return new Measured(r, null);
        }
    }

    private static long medianBytes(List<Double> bytes) {
        if (bytes.isEmpty()) return -1;
        return Math.round(Stats.median(bytes.stream().mapToDouble(Double::doubleValue).sorted().toArray()));
    }

    /** max over the steps of |actual − expected| / |expected|; NaN anywhere is an infinite error. */
    static double relativeError(double[] actual, double[] expected) {
        double e = 0;
        for (int i = 0; i < expected.length; i++) {
            double d = Math.abs(actual[i] - expected[i]) / Math.abs(expected[i]);
            if (Double.isNaN(d)) return Double.POSITIVE_INFINITY;
            e = Math.max(e, d);
        }
        return e;
    }

    /**
     * The workload's model on {@code device}: random weights as transformers initialises them (seeded; a bf16 base
     * rounds the matrices to BF16 and keeps them 16-bit, as a BF16 checkpoint loads), and
     * lora_B random too (PEFT starts it at zero) so that the adapters' path and lora_A's gradients are real work.
     */
    private LlamaForCausalLM model(Workload w, Device device) {
        ModelStep m = w.model();
        LlamaForCausalLM model = LlamaForCausalLM.random(m.config(), m.lora(w.rank(), w.base() == Workload.Base.NF4),
                config.seed(), device, w.base() == Workload.Base.BF16 ? HalfWeight.Format.BF16 : null);
        try {
            SplittableRandom rng = new SplittableRandom(config.seed() ^ 0x5DEECE66DL);
            Map<String, Tensor> adapters = model.adapterStateDict();
            adapters.replaceAll((k, t) -> k.endsWith("lora_B.weight")
                    ? new Tensor(t.shape(), BenchRunner.uniform(rng, t.numel(), 0.01f)) : t);
            model.loadAdapters(adapters);
            model.train(true);
            return model;
        } catch (RuntimeException | Error e) {
            model.close();
            throw e;
        }
    }

    /** {@code finetune}'s loop on one model: its trainer and the executor the device offers for it. */
    private final class Run implements AutoCloseable {
        private final Trainer trainer;
        private final StepExecutor executor;

        Run(LlamaForCausalLM model, Workload w) {
            ModelStep m = w.model();
            int rows = ROWS_PER_BATCH * m.batch(), seq = m.seq(), vocab = m.config().vocabSize();
            SplittableRandom rng = new SplittableRandom(config.seed() * 1_000_003L + 17);
            int[][] ids = new int[rows][seq];
            for (int[] row : ids) {
                for (int i = 0; i < seq; i++) row[i] = rng.nextInt(vocab);
            }
            FinetuneConfig c = new FinetuneConfig(model.lora(), Long.MAX_VALUE / rows, m.batch(), 1, seq, LR, 0.01,
                    0.9, 0.999, 1e-8, 0, FinetuneConfig.CONSTANT, MAX_GRAD_NORM, config.seed(), false, 0, 0);
            trainer = Finetuner.trainer(model, new Rows(ids), c);
            executor = DeviceStep.find(trainer).map(d -> (StepExecutor) d).orElse(StepExecutor.LOCAL);
        }

        double step() {
            return executor.step(trainer).loss();
        }

        /** The device step's numbers of the last step (empty off an accelerator). */
        Map<String, Double> stats() {
            return executor instanceof DeviceStep d ? d.lastStepStats() : Map.of();
        }

        long deviceBytes() {
            return executor instanceof DeviceStep d ? d.deviceBytes() : -1;
        }

        @Override
        public void close() {
            if (executor instanceof DeviceStep d) d.close();
        }
    }

    /** Token rows in memory, labels = ids (the loss shifts them itself). */
    private record Rows(int[][] ids) implements TokenDataset {
        @Override public String source() { return "random benchmark rows"; }
        @Override public int size() { return ids.length; }
        @Override public int seqLen() { return ids[0].length; }
        @Override public void inputIds(int row, int[] dst, int offset) { System.arraycopy(ids[row], 0, dst, offset, seqLen()); }
        @Override public void labels(int row, int[] dst, int offset) { inputIds(row, dst, offset); }
    }
}
