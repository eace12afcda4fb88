package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.finetune.FinetuneConfig;
import dev.tornadolora.finetune.DeviceStep;
import dev.tornadolora.finetune.Finetuner;
import dev.tornadolora.finetune.StepExecutor;
import dev.tornadolora.finetune.TokenDataset;
import dev.tornadolora.io.AtomicFiles;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.train.Trainer;
import dev.tornadolora.train.TrainingLog;
import dev.tornadolora.train.RunIdentity;
import dev.tornadolora.train.TrainingState;
import me.tongfei.progressbar.ProgressBar;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.zip.CRC32;

/**
 * One fine-tuning run with its outputs: the {@link Finetuner} loop with a progress bar, evaluation before, every
 * {@code --eval-every} steps and after, and at every {@code --save-every} step and at the end, each atomically,
 * in this order: {@code peft/}, {@code adapter.safetensors} (torchtune keys), {@code log.json}, {@code loss.png},
 * and last the resume point {@code training_state.safetensors}. The resume point is whole whenever it exists; a
 * run killed between these writes leaves at worst exports newer than it, which the resumed run rewrites (the
 * log's later entries are dropped and repeated). Everything but the log's timings is byte-deterministic.
 */
final class FinetuneRun {
    static final String LOG = "log.json";
    /** Log entries a resumed run may change: where it runs (and on how many threads), how often it reports, descriptions. */
    static final List<String> NOT_OPTIONS = List.of("device", "device_step", "threads", "eval_every", "save_every",
            "merge", "job");

    private final FinetuneCommand opts;
    private final LlamaForCausalLM model;
    private final TokenDataset eval;
    private final FinetuneConfig config;
    private final Finetuner finetuner;
    private final String baseName;
    private final Path output;
    private TrainingLog log = new TrainingLog();
    /** The run's identity (options, data checksums, model digest), fixed when training starts. */
    private RunIdentity identity;
    private double initialEval = Double.NaN;
    private double finalEval = Double.NaN;
    private double wall;
    private long tokens;
    private StepExecutor executor = StepExecutor.LOCAL;

    FinetuneRun(FinetuneCommand opts, LlamaForCausalLM model, TokenDataset train, TokenDataset eval,
                FinetuneConfig config, String baseName) {
        this.opts = opts;
        this.model = model;
        this.eval = eval;
        this.config = config;
        this.finetuner = new Finetuner(model, train, config);
        this.baseName = baseName;
        this.output = opts.output;
        config.describe(log.config());
        log.config().put("data_rows", train.size()).put("data_crc32", crc(train))
                .put("eval_rows", eval.size()).put("eval_crc32", crc(eval)).put("model_digest", model.weightsDigest())
                .put("device", model.backend().name()).put("threads", model.device().threads());
        // An accelerator that runs the whole step (TornadoVM's device plan) takes it; else the projections only.
        DeviceStep.find(finetuner).ifPresent(d -> {
            executor = d;
            log.config().put("device_step", d.describe());
        });
    }

    /** The adapters and AdamW's buffers back from a device that holds them (before an evaluation or a save). */
    private void fromDevice() {
        if (executor instanceof DeviceStep d) d.toHost();
    }

    private double evalLoss() {
        fromDevice();
        return finetuner.evalLoss(eval, config.batch());
    }

    /** How the steps are computed: on this machine (the default) or as one replica of a data-parallel run. */
    FinetuneRun executor(StepExecutor e) {
        if (e == StepExecutor.LOCAL && executor instanceof DeviceStep) {
            return this;  // on this machine: the device's whole step, when it has one
        }
        if (executor instanceof DeviceStep d) {
            d.close();
            log.config().remove("device_step");
        }
        this.executor = e;
        return this;
    }

    /** Adds the caller's entries (data files, the job) to the log's config. */
    void describe(Consumer<ObjectNode> extra) {
        extra.accept(log.config());
    }

    Finetuner finetuner() {
        return finetuner;
    }

    double initialEval() { return initialEval; }
    double finalEval() { return finalEval; }
    TrainingLog log() { return log; }

    /** Trains from the start or the resume point to the last step, writing the outputs as the class says. */
    void train(PrintWriter out) throws IOException {
        Files.createDirectories(output);
        Path state = output.resolve(FinetuneCommand.STATE);
        identity = RunIdentity.of(log.config(), NOT_OPTIONS);
        log.identify(identity);
        double clock = 0;
        if (opts.resume && Files.exists(state)) {
            resumeFrom(state);
            clock = log.elapsedSeconds();
            out.printf(Locale.ROOT, "resuming %s at step %d of %d%n", output, finetuner.stepsDone(), config.steps());

        } else {
            if (opts.resume) out.printf("%s has no resume point yet: starting at step 0%n", output);
            initialEval = evalLoss();
            evalEntry(0, initialEval);
        }
        printHeader(out);
        long start = System.nanoTime();
        tokens = log.steps().stream().mapToLong(Trainer.StepRecord::tokens).sum();
        try (ProgressBar bar = opts.quiet ? null : Progress.bar("finetune", config.steps())) {
            if (bar != null) bar.stepTo(finetuner.stepsDone());
            while (!finetuner.finished()) {
                long t0 = System.nanoTime();
                Trainer.StepRecord r = executor.step(finetuner);
                double stepSeconds = Progress.seconds(t0), elapsed = clock + Progress.seconds(start);
                tokens += r.tokens();
                ObjectNode entry = log.add(r, elapsed)
                        .put("tokens_per_s", round(r.tokens() / Math.max(stepSeconds, 1e-9)))
                        .put("peak_heap_mib", peakHeapMiB());
                if (executor instanceof DeviceStep d) d.lastStepStats().forEach(entry::put);
                long step = r.step();
                if (config.evalEvery() > 0 && step % config.evalEvery() == 0 && step < config.steps()) {
                    evalEntry(step, evalLoss());
                }
                if (bar != null) {
                    bar.stepTo(step);
                    bar.setExtraMessage(String.format(Locale.ROOT, " loss %.4f  %s tok/s", r.loss(),
                            Progress.compact(tokens / Math.max(elapsed, 1e-9))));
                }
                if (config.saveEvery() > 0 && step % config.saveEvery() == 0 && step < config.steps()) {
                    save(false);
                }
            }
        }
        wall = clock + Progress.seconds(start);
        finalEval = evalLoss();
        if (executor instanceof DeviceStep d) d.close();  // the host holds the adapters and buffers now
        evalEntry(config.steps(), finalEval);
        ObjectNode s = log.summary();
        s.put("initial_eval_loss", initialEval).put("final_eval_loss", finalEval)
         .put("wall_s", round(wall)).put("tokens", tokens).put("tokens_per_s", round(tokens / Math.max(wall, 1e-9)))
         .put("peak_heap_mib", peakHeapMiB());
        if (opts.memoryEstimate != null) s.put("memory_estimate_mib", opts.memoryEstimate.total() >> 20);
    }

    /**
     * Writes the outputs and then the resume point (loss.png only at the end, it takes longer than the rest);
     * call after {@link #train} with the summary complete.
     */
    void save() throws IOException {
        save(true);
    }

    private void save(boolean last) throws IOException {
        fromDevice();
        model.savePeft(output.resolve("peft"), baseName);
        SafeTensorsWriter tt = new SafeTensorsWriter()
                .metadata("format", "torchtune adapter (get_adapter_state_dict keys)")
                .metadata("lora_rank", Integer.toString(config.lora().rank()))
                .metadata("lora_alpha", Float.toString(config.lora().alpha()))
                .metadata("step", Long.toString(finetuner.stepsDone()));
        new TreeMap<>(model.adapterStateDictTorchtune()).forEach(tt::f32);
        tt.write(output.resolve("adapter.safetensors"));
        log.write(output.resolve(LOG));
        if (last && !log.steps().isEmpty()) {
            AtomicFiles.write(output.resolve("loss.png"), o -> o.write(LossCurve.png(String.format(Locale.ROOT,
                    "%s fine-tune: rank %d on %s", config.lora().quantizeBase() ? "QLoRA" : "LoRA",
                    config.lora().rank(), String.join(",", config.lora().targetModules())),
                    "training loss (cross-entropy)", log.steps())));
        }
        Map<String, String> meta = new java.util.LinkedHashMap<>(identity.stateMetadata());
        meta.put("seed", Long.toString(config.seed()));
        finetuner.save(output.resolve(FinetuneCommand.STATE), meta);
    }

    private void resumeFrom(Path state) {
        Path logFile = output.resolve(LOG);
        if (!Files.exists(logFile)) throw new IllegalArgumentException("--resume: " + logFile + " does not exist");
        SafeTensors head = SafeTensors.open(state);
        long step = TrainingState.parseLong(head, TrainingState.STEP);
        TrainingLog saved = TrainingLog.read(logFile, step);
        identity.requireResumable(head, saved, logFile, "--resume: " + output);
        saved.config().setAll(log.config());
        finetuner.resume(state);
        log = saved;
        log.summary().removeAll();
        log.summary().put("resumed_at_step", step);
        for (var e : log.entries("eval")) {
            if (e.path("step").asLong() == 0) initialEval = e.path("loss").asDouble();
        }
    }

    private void evalEntry(long step, double loss) {
        log.entries("eval").addObject().put("step", step).put("loss", loss);
    }

    /**
     * OUT/merged/: config.json (dtype {@code dtype}) and model.safetensors with W + scale·B·A for every weight
     * (NF4 dequantized), keys sorted, in {@code dtype} (float32, bfloat16 or float16).
     */
    void writeMerged(String dtype, LlamaConfig c) throws IOException {
        fromDevice();
        Path dir = output.resolve("merged");
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
        new TreeMap<>(model.mergedWeights()).forEach((k, t) -> {
            switch (dtype) {
                case "bfloat16" -> w.bf16(k, t.shape(), t.data());
                case "float16" -> w.f16(k, t.shape(), t.data());
                default -> w.f32(k, t);
            }
        });
        w.write(dir.resolve("model.safetensors"));
        LlamaConfig mc = new LlamaConfig(c.vocabSize(), c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(),
                c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), c.rmsNormEps(), c.ropeTheta(),
                c.ropeScaling(), c.tieWordEmbeddings() && !config.lora().output(), c.maxPositionEmbeddings(),
                c.bosTokenId(), c.eosTokenId(), dtype);
        AtomicFiles.writeString(dir.resolve("config.json"), mc.toJson());
    }

    private void printHeader(PrintWriter out) {
        var l = config.lora();
        out.printf(Locale.ROOT, "tornado-lora finetune: %s, rank %d, alpha %s%s on %s, device %s (%d threads)%n",
                l.quantizeBase() ? "QLoRA (NF4 base)" : "LoRA (fp32 base)", l.rank(), l.alpha(),
                (l.rslora() ? " (rsLoRA)" : "") + (l.dora() ? " (DoRA)" : ""), String.join(",", l.targetModules()),
                model.backend().name(), model.device().threads());
        out.printf(Locale.ROOT, "  %d steps x %d micro-batch(es) of %d x %d tokens; lr %s (%s, warm-up %d), clip %s;"
                        + " %d training rows, %d eval rows%n", config.steps(), config.gradAccum(), config.batch(),
                config.seqLen(), config.lr(), config.schedule(), config.warmupSteps(),
                config.maxGradNorm() > 0 ? Double.toString(config.maxGradNorm()) : "off", finetuner.data().size(),
                eval.size());
        if (executor instanceof DeviceStep d) out.printf(Locale.ROOT, "  %s%n", d.describe());
        out.flush();
    }

    /** The last lines: where the outputs are, then eval loss before → after (and the criterion, if any). */
    void printFinal(PrintWriter out, String criterion) {
        out.printf(Locale.ROOT, "wall time %.1f s, %s tokens/s, peak heap %d MiB; wrote %s: peft/, adapter.safetensors,"
                        + " log.json, loss.png, %s%s%n", wall, Progress.compact(tokens / Math.max(wall, 1e-9)),
                peakHeapMiB(), output, FinetuneCommand.STATE, opts.merge ? ", merged/" : "");
        if (criterion != null) out.println(criterion);
        out.printf(Locale.ROOT, "eval loss before %.6f -> after %.6f%n", initialEval, finalEval);
        out.flush();
    }

    /** The peak use of the heap's pools since the JVM started, in MiB. */
    static long peakHeapMiB() {
        long sum = 0;
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
            if (p.getType() == MemoryType.HEAP && p.getPeakUsage() != null) sum += p.getPeakUsage().getUsed();
        }
        return sum >> 20;
    }

    /** A checksum of the rows (ids and labels), so that a resumed run can tell its data changed. */
    static long crc(TokenDataset d) {
        CRC32 crc = new CRC32();
        int[] row = new int[d.seqLen()];
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * d.seqLen());
        for (int r = 0; r < d.size(); r++) {
            for (int pass = 0; pass < 2; pass++) {
                if (pass == 0) d.inputIds(r, row, 0); else d.labels(r, row, 0);
                b.clear();
                b.asIntBuffer().put(row);
                crc.update(b.array());
            }
        }
        return crc.getValue();
    }

    private static double round(double v) {
        return Math.round(v * 1e3) / 1e3;
    }
}
