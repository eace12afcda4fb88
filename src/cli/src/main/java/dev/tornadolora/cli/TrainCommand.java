package dev.tornadolora.cli;

import dev.tornadolora.device.Device;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.io.AdapterCheckpoints;
import dev.tornadolora.io.AtomicFiles;
import dev.tornadolora.io.FolderLock;
import dev.tornadolora.io.ModelCheckpoint;
import dev.tornadolora.io.OutputGuard;
import dev.tornadolora.io.RunFiles;
import dev.tornadolora.io.SafeText;
import dev.tornadolora.io.StrictJson;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Sequential;
import dev.tornadolora.tensor.HeapCheck;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.train.AdamW;
import dev.tornadolora.train.CosineWithWarmup;
import dev.tornadolora.train.Losses;
import dev.tornadolora.train.Optimizer;
import dev.tornadolora.train.RunIdentity;
import dev.tornadolora.train.Sgd;
import dev.tornadolora.train.SettingException;
import dev.tornadolora.train.SyntheticTask;
import dev.tornadolora.train.Trainer;
import dev.tornadolora.train.TrainingLog;
import dev.tornadolora.train.TrainingState;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tornadolora.io.SafeTensors;
import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

/**
 * The main job: a QLoRA fine-tune on a synthetic task with a known answer (see {@link SyntheticTask}), showing
 * that the adapters learn the hidden update. Writes the adapters (torchtune keys and PEFT layout), the frozen
 * base, the optimizer state, a JSON log of every step and a PNG loss curve to the output folder.
 */
@Command(name = "train", sortOptions = false, mixinStandardHelpOptions = true, description = {
        "QLoRA fine-tune on a synthetic task with a known answer: the student, a frozen",
        "NF4 base network, learns through its LoRA adapters the hidden rank-r update",
        "that the teacher adds to every layer. The teacher is built on the dequantized",
        "base, so the adapters can represent the answer exactly. Success: final loss",
        "<= 1%% of the initial loss, cosine(alpha/r*B*A, hidden update) >= 0.99 per layer;",
        "with --dropout > 0 (whose optimum is a shrunken update): final < initial loss.",
        "Exit status 1 when the criteria are not met (the outputs are still written).",
        "Writes adapters (torchtune keys, PEFT folder), the base, optimizer state,",
        "log.json (every step) and loss.png to the output folder.", ""})
final class TrainCommand implements Callable<Integer> {
    static final String STATE = RunFiles.STATE;
    static final String LOG = RunFiles.LOG;
    /** Entries of the log's config that a resumed run may change: where it runs, and descriptions. */
    static final List<String> NOT_OPTIONS = List.of("device", "teacher", "schedule");
    static final double MAX_LOSS_RATIO = 0.01;
    static final double MIN_COSINE = 0.99;

    @Spec
    CommandSpec spec;

    /** The run's identity, from its options (set before anything is written). */
    private RunIdentity identity;

    @Option(names = "--sizes", split = ",", splitSynopsisLabel = ",", defaultValue = "256,256,256", paramLabel = "W",
            description = "layer widths: in, hidden..., out (layers = count - 1; default ${DEFAULT-VALUE})")
    int[] sizes;

    @Option(names = "--rank", paramLabel = "R", defaultValue = "8", description = "LoRA rank r (default ${DEFAULT-VALUE})")
    int rank;

    @Option(names = "--alpha", paramLabel = "A", defaultValue = "16", description = "LoRA alpha (default ${DEFAULT-VALUE})")
    float alpha;

    @Option(names = "--dropout", paramLabel = "P", defaultValue = "0", description = "LoRA dropout (default ${DEFAULT-VALUE})")
    float dropout;

    @Option(names = "--quantize-base", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "keep the frozen base as NF4, i.e. QLoRA (default; --no-quantize-base for fp32 LoRA)")
    boolean quantizeBase;

    @Option(names = "--block-size", paramLabel = "N", defaultValue = "64",
            description = "NF4 block size (default ${DEFAULT-VALUE}; out*in must be a multiple of it)")
    int blockSize;

    @Option(names = "--scaler-block-size", paramLabel = "N", defaultValue = "256",
            description = "NF4 scaler block size (default ${DEFAULT-VALUE}; blocks per layer must be a multiple of it)")
    int scalerBlockSize;

    @Option(names = "--hidden-rank", paramLabel = "R", description = "rank of the teacher's hidden update (default: --rank)")
    Integer hiddenRank;

    @Option(names = "--update-scale", paramLabel = "S", defaultValue = "0.3",
            description = "||hidden update|| / ||base weight|| per layer (default ${DEFAULT-VALUE})")
    double updateScale;

    @Option(names = "--activation", paramLabel = "NAME", defaultValue = "silu", description = "silu or relu (default ${DEFAULT-VALUE})")
    String activation;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "300", description = "optimizer steps (default ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--batch", paramLabel = "N", defaultValue = "64", description = "tokens (rows) per step (default ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--lr", paramLabel = "LR", defaultValue = "0.01", description = "peak learning rate (default ${DEFAULT-VALUE})")
    double lr;

    @Option(names = "--warmup-steps", paramLabel = "N", description = "linear warm-up steps of the cosine schedule (default: steps/20)")
    Integer warmupSteps;

    @Option(names = "--optimizer", paramLabel = "NAME", defaultValue = "adamw", description = "adamw or sgd (default ${DEFAULT-VALUE})")
    String optimizerName;

    @Option(names = "--weight-decay", paramLabel = "W", defaultValue = "0",
            description = "decoupled weight decay of AdamW, coupled for SGD (default ${DEFAULT-VALUE}: the"
                    + " task's answer is not small, so decay would only bias it)")
    double weightDecay;

    @Option(names = "--momentum", paramLabel = "M", defaultValue = "0.9", description = "SGD momentum (default ${DEFAULT-VALUE})")
    double momentum;

    @Option(names = "--max-grad-norm", paramLabel = "N", defaultValue = "1.0",
            description = "clip the global gradient norm to this; 0 disables (default ${DEFAULT-VALUE})")
    double maxGradNorm;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "seeds the base, the hidden update and the data")
    long seed;

    @Mixin
    DeviceOption device;

    @Option(names = "--output", defaultValue = "out/train", paramLabel = "DIR",
            description = "output folder (default ${DEFAULT-VALUE})")
    Path output;

    @Option(names = "--save-every", paramLabel = "N", defaultValue = "0",
            description = "also write the checkpoint every N steps (default 0: at the end only)")
    int saveEvery;

    @Option(names = "--eval-batch", paramLabel = "N", defaultValue = "256",
            description = "tokens of the held-out batch for the initial and final loss (default ${DEFAULT-VALUE})")
    int evalBatch;

    @Option(names = "--quiet", description = "no progress bar")
    boolean quiet;

    @Option(names = "--resume", description = {"continue the run in --output from its last checkpoint",
            "(training_state.safetensors; same options, same result as never stopping)"})
    boolean resume;

    @Option(names = "--check-finite", description = "stop naming the first NaN/Inf in an input, output or gradient")
    boolean checkFinite;

    @Override
    public Integer call() throws IOException {
        validate();
        new OutputGuard().folder("--output", output, OUTPUTS.toArray(String[]::new));
        HeapCheck.require(heapNeeded(), "train (--sizes " + Arrays.stream(sizes).mapToObj(Integer::toString)
                .collect(Collectors.joining(",")) + ", --batch " + batch + ", --eval-batch " + evalBatch
                + (quantizeBase ? "" : ", --no-quantize-base") + ")");
        try (FolderLock lock = FolderLock.acquire(output, "--output"); Device d = device.open()) {
            return train(d);
        } catch (SettingException e) {  // train's options are the settings' names with dashes: lr -> --lr
            throw new IllegalArgumentException(e.render(f -> "--" + f.replace('_', '-')), e);
        }
    }

    /** Every file a run writes in --output. */
    static final List<String> OUTPUTS = List.of(RunFiles.ADAPTER, RunFiles.PEFT + "/" + AdapterCheckpoints.PEFT_WEIGHTS,
            RunFiles.PEFT + "/" + AdapterCheckpoints.PEFT_CONFIG, "base_model.safetensors", LOG, STATE, "sample.safetensors",
            RunFiles.LOSS_CURVE);

    /**
     * The heap a run takes, from the options: per layer the student's base (fp32 or NF4), the teacher's fp32 base
     * and hidden update, the fp32 weight a layer is initialised from and the merged copy a save makes; per token
     * of a batch the activations of student and teacher with the saved inputs and gradients (about 8 floats per
     * width). An estimate (within a factor of about 2), meant to stop a job that cannot fit before it starts.
     */
    long heapNeeded() {
        long params = 0, largest = 0, widths = 0;
        for (int i = 0; i + 1 < sizes.length; i++) {
            long p = HeapCheck.product(sizes[i], sizes[i + 1]);
            params = p < 0 || params < 0 ? -1 : params + p;
            largest = Math.max(largest, p);
        }
        for (int s : sizes) widths += s;
        long layers = HeapCheck.product(params, (quantizeBase ? 1 : 4) + 8), transient_ = HeapCheck.product(largest, 8);
        long adapters = HeapCheck.product(rank, widths, 2 * 4 * 4);  // A, B, their grads and two AdamW moments
        long tokens = HeapCheck.product(Math.max(batch, evalBatch), widths, 8 * 4);
        return HeapCheck.sum(params < 0 ? -1 : layers, transient_, adapters, tokens);
    }

    private Integer train(Device device) throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        SyntheticTask task = new SyntheticTask(new SyntheticTask.Config(sizes, rank, alpha, dropout, quantizeBase,
                blockSize, scalerBlockSize, hiddenRank == null ? rank : hiddenRank, updateScale, activation, seed),
                device);
        Sequential model = task.student();
        if (checkFinite) {
            model.loraModules().values().forEach(m -> m.setCheckFinite(true));
        }
        int warmup = warmupSteps == null ? steps / 20 : warmupSteps;
        // the one step implementation of train and finetune: here on the student's regression to the teacher
        Trainer trainer = new Trainer(task.regression(batch), optimizer(model), new CosineWithWarmup(warmup, steps),
                maxGradNorm, steps);
        Tensor evalX = task.evalInputs(evalBatch);
        TrainingLog log = begin(task, trainer, warmup, evalX);
        long done = log.steps().size();
        printHeader(out, task);
        if (resume) {
            out.printf(Locale.ROOT, "resuming %s at step %d of %d%n", output, done, steps);
        }

        double initialLoss = log.summary().path("initial_eval_loss").asDouble();
        double clock = log.elapsedSeconds();
        long start = System.nanoTime();
        long tokens = log.steps().stream().mapToLong(Trainer.StepRecord::tokens).sum();
        try (ProgressBar bar = quiet ? null : Progress.bar("train", steps)) {
            while (!trainer.finished()) {
                Trainer.StepRecord r = trainer.step();
                long step = r.step();
                double elapsed = clock + Progress.seconds(start);
                tokens += r.tokens();
                log.add(r, elapsed);
                if (bar != null) {
                    bar.stepTo(step);
                    bar.setExtraMessage(String.format(Locale.ROOT, " loss %.3e  %s tok/s", r.loss(),
                            Progress.compact(tokens / Math.max(elapsed, 1e-9))));
                }
                if (saveEvery > 0 && step % saveEvery == 0 && step < steps) {
                    saveCheckpoint(task, trainer, step, log);
                }
            }
        }
        double wall = clock + Progress.seconds(start);
        double finalLoss = task.evalLoss(evalX);
        Map<String, Double> cosines = task.cosines();
        List<String> missed = missedCriteria(initialLoss, finalLoss, cosines);
        boolean met = missed.isEmpty();
        summarize(log.summary(), initialLoss, finalLoss, cosines, met, wall, tokens);
        saveCheckpoint(task, trainer, steps, log);
        writeSample(task);
        AtomicFiles.write(output.resolve(RunFiles.LOSS_CURVE), o -> o.write(LossCurve.png(String.format(Locale.ROOT,
                "%s fine-tune: %d layers %s, rank %d", quantizeBase ? "QLoRA" : "LoRA", sizes.length - 1,
                Arrays.toString(sizes), rank), log.steps())));
        printSummary(out, initialLoss, finalLoss, cosines, wall, tokens, met);
        if (!met) {
            spec.commandLine().getErr().println("tornado-lora train: learning criteria not met: " + String.join("; ", missed)
                    + " (the outputs were written)");
            return 1;
        }
        return 0;
    }

    /**
     * The learning criteria this run missed, empty when it met them. Without dropout the adapters can represent the
     * hidden update exactly, so the run must find it: final loss at most 1% of the initial one and, per layer,
     * cosine(α/r·B·A, ΔW) at least 0.99. With dropout they cannot: the mask's variance acts as a ridge penalty, so
     * the optimum is a shrunken update ((1 − p)·ΔW for the first layer, whose inputs are N(0, 1); ‖ΔW − (1 − p)·ΔW‖²
     * alone is p² of the initial loss, already 1% at p = 0.1) and the deeper layers' optimum depends on their
     * inputs' covariance. Then the one criterion is that learning happened: a final loss below the initial one.
     */
    private List<String> missedCriteria(double initialLoss, double finalLoss, Map<String, Double> cosines) {
        List<String> missed = new ArrayList<>();
        double ratio = finalLoss / initialLoss;
        if (dropout > 0) {
            if (!(finalLoss < initialLoss)) {
                missed.add(String.format(Locale.ROOT, "final loss %.3e is not below the initial %.3e", finalLoss, initialLoss));
            }
            return missed;
        }
        if (!(ratio <= MAX_LOSS_RATIO)) {
            missed.add(String.format(Locale.ROOT, "final/initial loss %.4f%% > %.0f%%", 100 * ratio, 100 * MAX_LOSS_RATIO));
        }
        cosines.forEach((name, c) -> {
            if (!(c >= MIN_COSINE)) missed.add(String.format(Locale.ROOT, "cosine %s %.6f < %.2f", name, c, MIN_COSINE));
        });
        return missed;
    }

    /** Where training starts: a fresh log, or the resumed run's log (steps 1..k) with the trainer at step k. */
    private TrainingLog begin(SyntheticTask task, Trainer trainer, int warmup, Tensor evalX) {
        TrainingLog log = new TrainingLog();
        describe(log.config(), warmup, task);
        identity = RunIdentity.of(options(log.config()));
        log.identify(identity);
        if (!resume) {
            log.summary().put("initial_eval_loss", task.evalLoss(evalX));
            return log;
        }
        log = resumeFrom(task, trainer, log.config());
        log.identify(identity);
        StrictJson.requireDouble(log.summary(), "initial_eval_loss", output.resolve(LOG) + ": summary");
        log.summary().put("resumed_at_step", log.steps().size());
        return log;
    }

    /** The options that change the math: the log's configuration less where the run runs and descriptions. */
    private static ObjectNode options(ObjectNode config) {
        ObjectNode o = config.deepCopy();
        NOT_OPTIONS.forEach(o::remove);
        return o;
    }

    private void validate() {
        if (steps <= 0) throw new IllegalArgumentException("--steps must be positive, got " + steps);
        if (batch <= 0) throw new IllegalArgumentException("--batch must be positive, got " + batch);
        if (evalBatch <= 0) throw new IllegalArgumentException("--eval-batch must be positive, got " + evalBatch);
        if (!(maxGradNorm >= 0) || Double.isInfinite(maxGradNorm)) {
            throw new IllegalArgumentException("--max-grad-norm must be a finite number >= 0 (0: no clipping), got "
                    + maxGradNorm);
        }
        if (!(momentum >= 0) || Double.isInfinite(momentum)) {
            throw new IllegalArgumentException("--momentum must be a finite number >= 0, got " + momentum);
        }
        if (!(lr > 0) || Double.isInfinite(lr)) throw new IllegalArgumentException("--lr must be positive and finite, got " + lr);
        if (saveEvery < 0) throw new IllegalArgumentException("--save-every must be >= 0, got " + saveEvery);
        if (sizes.length < 2) {
            throw new IllegalArgumentException("--sizes: expected at least 2 widths (in, out) but got " + sizes.length);
        }
    }

    private Optimizer optimizer(Sequential model) {
        return switch (optimizerName.toLowerCase(Locale.ROOT)) {
            case "adamw" -> new AdamW(model.parameters(), lr, AdamW.DEFAULT_BETA1, AdamW.DEFAULT_BETA2,
                    AdamW.DEFAULT_EPS, weightDecay);
            case "sgd" -> new Sgd(model.parameters(), lr, momentum, 0, weightDecay, false);
            default -> throw new IllegalArgumentException("--optimizer: unknown '" + optimizerName + "'; expected adamw or sgd");
        };
    }

    /**
     * Adapters (torchtune keys and PEFT folder), frozen base, the log and last the training state, each
     * atomically. The training state holds the adapters too and is written last: it is the resume point, whole
     * whenever it exists, and a kill between these writes leaves at worst exports newer than it (the log's later
     * entries are dropped and repeated on resume).
     */
    private void saveCheckpoint(SyntheticTask task, Trainer trainer, long step, TrainingLog log) throws IOException {
        Map<String, LoRALinear> modules = task.student().loraModules();
        Map<String, String> meta = new LinkedHashMap<>(identity.metadata());
        meta.put("alpha", Float.toString(alpha));
        meta.put("rank", Integer.toString(rank));
        meta.put("step", Long.toString(step));
        AdapterCheckpoints.saveTorchtune(output.resolve(RunFiles.ADAPTER), modules, meta);
        AdapterCheckpoints.savePeft(output.resolve(RunFiles.PEFT), modules, identity.metadata());
        ModelCheckpoint.save(output.resolve("base_model.safetensors"), task.student(), false, identity.metadata());
        log.write(output.resolve(LOG));
        Map<String, String> stateMeta = new LinkedHashMap<>(identity.stateMetadata());
        stateMeta.put("seed", Long.toString(seed));
        trainer.save(output.resolve(STATE), stateMeta);
    }

    /**
     * Loads the resume point of the run in {@code output} into the student and optimizer, after checking that the
     * run was made with the same options (all but the device), so that it continues the same computation; returns
     * the run's log up to that point.
     */
    private TrainingLog resumeFrom(SyntheticTask task, Trainer trainer, ObjectNode config) {
        Path state = output.resolve(STATE), logFile = output.resolve(LOG);
        if (!Files.exists(state)) {
            throw new IllegalArgumentException("--resume: " + state + " does not exist (nothing to resume; a run"
                    + " writes it at each --save-every and at the end)");
        }
        if (!Files.exists(logFile)) {
            throw new IllegalArgumentException("--resume: " + logFile + " does not exist");
        }
        SafeTensors st = SafeTensors.open(state);
        identity.requireSameOptions(RunIdentity.fromState(st), "--resume: " + output);
        long step = TrainingState.parseLong(st, TrainingState.STEP);
        if (step < 0 || step > steps) {
            throw new IllegalArgumentException("--resume: " + state + ": step " + step + " is outside [0, --steps "
                    + steps + "]");
        }
        TrainingLog log = TrainingLog.read(logFile, step);
        identity.requireResumable(st, log, logFile, "--resume: " + output);
        requirePossibleDropoutDraws(st, step, task);
        trainer.resume(state);  // also checks the base rate and the scheduler's step
        return log;
    }

    /**
     * A layer draws one dropout number per element of its input in each training step (none without dropout), so
     * a state claiming more than step x batch x width draws was not written by this run; refused before the
     * generator is positioned.
     */
    private void requirePossibleDropoutDraws(SafeTensors st, long step, SyntheticTask task) {
        int i = 0;
        for (Map.Entry<String, LoRALinear> e : task.student().loraModules().entrySet()) {
            String key = e.getKey() + ".dropout_draws";
            long draws = TrainingState.parseLong(st, key);
            long product = HeapCheck.product(step, batch, sizes[i]);  // -1: past 2^63, so anything is possible
            long max = dropout == 0 ? 0 : product < 0 ? Long.MAX_VALUE : product;
            if (draws < 0 || draws > max) {
                throw new IllegalArgumentException("--resume: " + st.source() + ": " + key + " is " + draws
                        + " but the run can have drawn " + max + " (step " + step + " x --batch " + batch
                        + " x width " + sizes[i] + (dropout > 0 ? "" : "; --dropout is 0") + ")");
            }
            i++;
        }
    }

    /** A few inputs and the student's outputs, for checking the checkpoint elsewhere (scripts/check_peft.py). */
    private void writeSample(SyntheticTask task) throws IOException {
        Tensor x = task.inputs(-2, 8);
        task.student().train(false);
        Tensor y = task.student().forward(x);
        new SafeTensorsWriter().f32("x", x).f32("y", y)
                .metadata("description", "x: held-out inputs; y: the trained student's outputs (eval mode)")
                .metadata(identity.metadata())
                .write(output.resolve("sample.safetensors"));
    }

    private void describe(ObjectNode c, int warmup, SyntheticTask task) {
        var s = c.putArray("sizes");
        for (int v : sizes) s.add(v);
        c.put("rank", rank).put("alpha", alpha).put("dropout", dropout).put("quantize_base", quantizeBase)
         .put("block_size", blockSize).put("scaler_block_size", scalerBlockSize)
         .put("hidden_rank", task.config().hiddenRank()).put("update_scale", updateScale)
         .put("activation", activation).put("steps", steps).put("batch", batch).put("lr", lr)
         .put("warmup_steps", warmup).put("optimizer", optimizerName.toLowerCase(Locale.ROOT)).put("weight_decay", weightDecay)
         .put("max_grad_norm", maxGradNorm).put("momentum", momentum).put("eval_batch", evalBatch)
         .put("seed", seed).put("device", deviceName(task))
         .put("schedule", "cosine with linear warm-up (torchtune get_cosine_schedule_with_warmup, num_cycles 0.5)")
         .put("teacher", "deq(W) + hidden rank-" + task.config().hiddenRank() + " update per layer");
    }

    private static String deviceName(SyntheticTask task) {
        return task.student().loraModules().values().iterator().next().backend().name();
    }

    private void summarize(ObjectNode s, double initial, double fin, Map<String, Double> cosines, boolean met,
                           double wall, long tokens) {
        s.put("initial_eval_loss", initial).put("final_eval_loss", fin).put("loss_ratio", fin / initial);
        ObjectNode c = s.putObject("cosine");
        cosines.forEach(c::put);
        if (dropout > 0) {
            s.put("max_loss_ratio", 1.0).putNull("min_cosine");
        } else {
            s.put("max_loss_ratio", MAX_LOSS_RATIO).put("min_cosine", MIN_COSINE);
        }
        s.put("criteria_met", met);
        s.put("wall_s", wall).put("tokens", tokens).put("tokens_per_s", tokens / wall);
    }

    private void printHeader(PrintWriter out, SyntheticTask task) {
        LoRALinear first = task.student().loraModules().values().iterator().next();
        out.printf(Locale.ROOT, "tornado-lora train: %s, %d layers %s (%s), rank %d, alpha %s, device %s%n",
                quantizeBase ? "QLoRA, frozen NF4 base" : "LoRA, frozen fp32 base", sizes.length - 1,
                Arrays.stream(sizes).mapToObj(Integer::toString).collect(Collectors.joining(" -> ")), activation,
                rank, alpha, first.backend().name());
        out.printf(Locale.ROOT, "  teacher = deq(W) + hidden rank-%d update per layer (built on the dequantized base,"
                + " so the adapters can represent it exactly); %d steps x %d tokens%n",
                task.config().hiddenRank(), steps, batch);
        out.flush();
    }

    private void printSummary(PrintWriter out, double initial, double fin, Map<String, Double> cosines,
                              double wall, long tokens, boolean met) {
        double ratio = fin / initial;
        if (dropout > 0) {
            out.printf(Locale.ROOT, "final loss %.3e / initial %.3e = %.4f%% (criterion with dropout: below 100%%): %s%n",
                    fin, initial, 100 * ratio, fin < initial ? "ok" : "NOT MET");
            cosines.forEach((name, c) -> out.printf(Locale.ROOT, "cosine(alpha/r*B*A, hidden update) %s: %.6f (no"
                    + " criterion with dropout: its optimum is a shrunken update)%n", name, c));
        } else {
            out.printf(Locale.ROOT, "final loss %.3e / initial %.3e = %.4f%% (criterion <= %.0f%%): %s%n", fin, initial,
                    100 * ratio, 100 * MAX_LOSS_RATIO, ratio <= MAX_LOSS_RATIO ? "ok" : "NOT MET");
            cosines.forEach((name, c) -> out.printf(Locale.ROOT,
                    "cosine(alpha/r*B*A, hidden update) %s: %.6f (criterion >= %.2f): %s%n", name, c, MIN_COSINE,
                    c >= MIN_COSINE ? "ok" : "NOT MET"));
        }
        out.printf(Locale.ROOT, "wall time %.1f s, %s tokens/s; %s%n", wall, Progress.compact(tokens / wall),
                met ? "learning criteria met" : "learning criteria NOT met");
        out.printf("wrote %s: adapter.safetensors (torchtune keys), peft/ (PEFT layout), base_model.safetensors,"
                + " training_state.safetensors, sample.safetensors, log.json, loss.png%n", output);
        out.flush();
    }
}
