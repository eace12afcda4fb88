package dev.tornadolora.finetune;

import dev.tornadolora.train.SettingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.device.Device;
import dev.tornadolora.io.AtomicFiles;
import dev.tornadolora.io.FolderLock;
import dev.tornadolora.io.OutputGuard;
import dev.tornadolora.io.RunFiles;
import dev.tornadolora.io.SafeText;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.llama.MemoryEstimate;
import dev.tornadolora.tensor.HeapCheck;
import dev.tornadolora.io.PeftAdapters;
import dev.tornadolora.train.Trainer;
import dev.tornadolora.train.RunIdentity;
import dev.tornadolora.train.TrainingLog;
import dev.tornadolora.train.TrainingState;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.zip.CRC32;

/**
 * One fine-tuning run with its outputs: {@link Finetuner} on the one step implementation ({@link Trainer}), evaluation before, every {@code eval_every}
 * steps and after, and at every {@code save_every} step and at the end, each atomically, in this order:
 * {@code peft/}, {@code adapter.safetensors} (torchtune keys), {@code log.json}, what the listener adds
 * ({@code loss.png} in the CLI), and last the resume point {@code training_state.safetensors}. The resume point is
 * whole whenever it exists; a run killed between these writes leaves at worst exports newer than it, which the
 * resumed run rewrites (the log's later entries are dropped and repeated). Everything but the log's timings is
 * byte-deterministic.
 *
 * <p>{@link #run} runs a {@link FinetuneJob} from its files; a program that builds its model and data itself
 * (the CLI's embedded job) uses the constructor, {@link #train}, {@link #save} and {@link #writeMerged}.
 */
public final class FinetuneRun {
    /** Log entries a resumed run may change: where it runs (and on how many threads), how often it reports, descriptions. */
    static final List<String> NOT_OPTIONS = List.of("device", "device_step", "threads", "eval_every", "save_every",
            "merge", "job");

    /** Every file a run writes in its output folder. */
    public static final List<String> OUTPUTS = List.of(RunFiles.PEFT + "/" + PeftAdapters.WEIGHTS,
            RunFiles.PEFT + "/" + PeftAdapters.CONFIG, RunFiles.ADAPTER, RunFiles.LOG, RunFiles.LOSS_CURVE,
            RunFiles.STATE, RunFiles.MERGED + "/config.json", RunFiles.MERGED + "/model.safetensors");

    /**
     * What a run ends with.
     *
     * @param initialEval  eval loss before training (NaN when the run resumed past it without a logged value)
     * @param finalEval    eval loss after the last step
     * @param wallSeconds  the run's time, a resumed run's earlier time included
     * @param tokens       tokens of every step
     * @param peakHeapMiB  the peak use of the heap's pools
     * @param output       the output folder
     * @param log          the run's log (its summary complete)
     */
    public record Result(double initialEval, double finalEval, double wallSeconds, long tokens, long peakHeapMiB,
                         Path output, TrainingLog log) {}

    private final LlamaForCausalLM model;
    private final TokenDataset eval;
    private final FinetuneConfig config;
    private final Finetuner finetuner;
    private final Trainer trainer;
    private final String baseName;
    private final Path output;
    private final boolean resume;
    private TrainingLog log = new TrainingLog();
    /** The run's identity (options, data checksums, model digest), fixed when training starts. */
    private RunIdentity identity;
    /** The estimate checked before loading; log.json records it beside the measured peak. */
    private MemoryEstimate memoryEstimate;
    private double initialEval = Double.NaN;
    private double finalEval = Double.NaN;
    private double wall;
    private long tokens;
    private StepExecutor executor = StepExecutor.LOCAL;
    /** Steps the device step has run in this process (the first brings the weights and compiles). */
    private int deviceSteps;
    private FinetuneListener listener = FinetuneListener.NONE;

    /**
     * @param baseName the base model's name or path, for {@code adapter_config.json}
     * @param resume   continue from the resume point in {@code output} when there is one
     */
    public FinetuneRun(LlamaForCausalLM model, TokenDataset train, TokenDataset eval, FinetuneConfig config,
                       String baseName, Path output, boolean resume) {
        this.model = model;
        this.eval = eval;
        this.config = config;
        this.trainer = Finetuner.trainer(model, train, config);
        this.finetuner = (Finetuner) trainer.task();
        this.baseName = baseName;
        this.output = output;
        this.resume = resume;
        config.describe(log.config());
        log.config().put("data_rows", train.size()).put("data_crc32", crc(train))
                .put("eval_rows", eval.size()).put("eval_crc32", crc(eval)).put("model_digest", model.weightsDigest())
                .put("device", model.backend().name()).put("threads", model.device().threads());
        // An accelerator that runs the whole step (TornadoVM's device plan) takes it; else the projections only.
        DeviceStep.find(trainer).ifPresent(d -> {
            executor = d;
            log.config().put("device_step", d.describe());
        });
    }

    /** The adapters and AdamW's buffers back from a device that holds them (before an evaluation or a save). */
    private void fromDevice() {
        if (executor instanceof DeviceStep d) d.toHost();
    }

    private double evalLoss() {
        if (executor instanceof DeviceStep d) {  // on the device, from its adapters, when it can
            var onDevice = d.evalLoss(eval, config.batch());
            if (onDevice.isPresent()) return onDevice.getAsDouble();
        }
        fromDevice();
        return finetuner.evalLoss(eval, config.batch());
    }

    /** How the steps are computed: on this machine (the default) or as one replica of a data-parallel run. */
    public FinetuneRun executor(StepExecutor e) {
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

    /** Who hears the progress (nobody by default). */
    public FinetuneRun listener(FinetuneListener l) {
        this.listener = l;
        return this;
    }

    /** Adds the caller's entries (data files, the job) to the log's config. */
    public void describe(Consumer<ObjectNode> extra) {
        extra.accept(log.config());
    }

    public Trainer trainer() {
        return trainer;
    }

    public TrainingLog log() {
        return log;
    }

    /** Trains from the start or the resume point to the last step, writing the outputs as the class says. */
    public void train() throws IOException {
        Files.createDirectories(output);
        Path state = output.resolve(RunFiles.STATE);
        identity = RunIdentity.of(log.config(), NOT_OPTIONS);
        log.identify(identity);
        double clock = 0;
        if (resume && Files.exists(state)) {
            resumeFrom(state);
            clock = log.elapsedSeconds();
            listener.info(String.format(Locale.ROOT, "resuming %s at step %d of %d", output, trainer.stepsDone(),
                    config.steps()));
        } else {
            if (resume) listener.info(output + " has no resume point yet: starting at step 0");
            initialEval = evalLoss();
            evalEntry(0, initialEval);
        }
        header();
        long start = System.nanoTime();
        tokens = log.steps().stream().mapToLong(Trainer.StepRecord::tokens).sum();
        listener.started(trainer.stepsDone(), config.steps());
        while (!trainer.finished()) {
            long t0 = System.nanoTime();
            Trainer.StepRecord r = executor.step(trainer);
            double stepSeconds = seconds(t0), elapsed = clock + seconds(start);
            tokens += r.tokens();
            ObjectNode entry = log.add(r, elapsed).put("tokens_per_s", round(r.tokens() / Math.max(stepSeconds, 1e-9)))
                    .put("peak_heap_mib", peakHeapMiB());
            if (executor instanceof DeviceStep d) {
                Map<String, Double> stats = d.lastStepStats();
                stats.forEach(entry::put);
                if (++deviceSteps == 2 && stats.containsKey("copy_in_bytes")) {  // the first step after the warm-up
                    listener.info(String.format(Locale.ROOT, "  bus per step: %.0f B to the device, %.0f B back (%.0f kernel"
                            + " launches; TornadoVM's profiler, in log.json per step)", stats.get("copy_in_bytes"),
                            stats.get("copy_out_bytes"), stats.getOrDefault("kernel_launches", 0.0)));
                }
            }
            long step = r.step();
            listener.step(r, elapsed, tokens);
            if (config.evalEvery() > 0 && step % config.evalEvery() == 0 && step < config.steps()) {
                evalEntry(step, evalLoss());
            }
            if (config.saveEvery() > 0 && step % config.saveEvery() == 0 && step < config.steps()) {
                save(false);
            }
        }
        listener.trained();
        wall = clock + seconds(start);
        finalEval = evalLoss();
        fromDevice();
        if (executor instanceof DeviceStep d) d.close();  // the host holds the adapters and buffers now
        evalEntry(config.steps(), finalEval);
        ObjectNode s = log.summary();
        s.put("initial_eval_loss", initialEval).put("final_eval_loss", finalEval)
         .put("wall_s", round(wall)).put("tokens", tokens).put("tokens_per_s", round(tokens / Math.max(wall, 1e-9)))
         .put("peak_heap_mib", peakHeapMiB());
        if (memoryEstimate != null) s.put("memory_estimate_mib", memoryEstimate.total() >> 20);
    }

    /**
     * Writes the outputs and then the resume point (the listener's at the end only, it may take longer than the
     * rest); call after {@link #train} with the summary complete.
     */
    public void save() throws IOException {
        save(true);
    }

    /** What the run ended with; after {@link #train}. */
    public Result result() {
        return new Result(initialEval, finalEval, wall, tokens, peakHeapMiB(), output, log);
    }

    private void save(boolean last) throws IOException {
        fromDevice();
        model.savePeft(output.resolve(RunFiles.PEFT), baseName);
        SafeTensorsWriter tt = new SafeTensorsWriter()
                .metadata("format", "torchtune adapter (get_adapter_state_dict keys)")
                .metadata("lora_rank", Integer.toString(config.lora().rank()))
                .metadata("lora_alpha", Float.toString(config.lora().alpha()))
                .metadata("step", Long.toString(trainer.stepsDone()));
        new TreeMap<>(model.adapterStateDictTorchtune()).forEach(tt::f32);
        tt.write(output.resolve(RunFiles.ADAPTER));
        log.write(output.resolve(RunFiles.LOG));
        listener.saved(output, log, last && !log.steps().isEmpty());
        Map<String, String> meta = new LinkedHashMap<>(identity.stateMetadata());
        meta.put("seed", Long.toString(config.seed()));
        trainer.save(output.resolve(RunFiles.STATE), meta);
    }

    /**
     * For the options that joined a run's identity after runs had been saved (issue 25's data options), the values
     * that do what the version before them did (plain {"text"} data read as blocks): a resume point that does not
     * record one resumes when this run's value is that, and is refused naming it otherwise.
     */
    private static Map<String, JsonNode> earlierDefaults() {
        ObjectNode d = new ObjectNode(com.fasterxml.jackson.databind.node.JsonNodeFactory.instance);
        FinetuneJob.Preparation.DEFAULT.describe(d);
        Map<String, JsonNode> m = new LinkedHashMap<>();
        d.fields().forEachRemaining(e -> m.put(e.getKey(), e.getValue()));
        return m;
    }

    private void resumeFrom(Path state) {
        Path logFile = output.resolve(RunFiles.LOG);
        if (!Files.exists(logFile)) throw new SettingException("{resume}: " + logFile + " does not exist");
        SafeTensors head = SafeTensors.open(state);
        long step = TrainingState.parseLong(head, TrainingState.STEP);
        TrainingLog saved = TrainingLog.read(logFile, step);
        identity.requireResumable(head, saved, logFile, "{resume}: " + output, earlierDefaults());
        saved.config().setAll(log.config());
        saved.identify(identity);  // an earlier version's run continues as this version's (the same when nothing was added)
        trainer.resume(state);
        log = saved;
        log.summary().removeAll();
        log.summary().put("resumed_at_step", step);
        for (var e : log.entries("eval")) {
            if (e.path("step").asLong() == 0) initialEval = e.path("loss").asDouble();
        }
    }

    private void evalEntry(long step, double loss) {
        log.entries("eval").addObject().put("step", step).put("loss", loss);
        listener.evaluated(step, loss);
    }

    /**
     * {@code merged/}: config.json (dtype {@code dtype}) and model.safetensors with W + scale·B·A for every weight
     * (NF4 dequantized), keys sorted, in {@code dtype} (float32, bfloat16 or float16).
     */
    public void writeMerged(String dtype, LlamaConfig c) throws IOException {
        fromDevice();
        Path dir = output.resolve(RunFiles.MERGED);
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
                c.bosTokenId(), c.eosTokenId(), dtype, c.parts());
        AtomicFiles.writeString(dir.resolve("config.json"), mc.toJson());
    }

    private void header() {
        var l = config.lora();
        listener.info(String.format(Locale.ROOT, "tornado-lora finetune: %s, rank %d, alpha %s%s on %s, device %s (%d threads)",
                l.quantizeBase() ? "QLoRA (NF4 base)" : "LoRA (fp32 base)", l.rank(), l.alpha(),
                (l.rslora() ? " (rsLoRA)" : "") + (l.dora() ? " (DoRA)" : ""), String.join(",", l.targetModules()), model.backend().name(),
                model.device().threads()));
        listener.info(String.format(Locale.ROOT, "  %d steps x %d micro-batch(es) of %d x %d tokens; lr %s (%s,"
                        + " warm-up %d), clip %s; %d training rows, %d eval rows", config.steps(), config.gradAccum(),
                config.batch(), config.seqLen(), config.lr(), config.schedule(), config.warmupSteps(),
                config.maxGradNorm() > 0 ? Double.toString(config.maxGradNorm()) : "off", finetuner.data().size(),
                eval.size()));
        if (executor instanceof DeviceStep d) listener.info("  " + d.describe());
    }

    // ---- a job from its files ----

    /**
     * Runs {@code job} on {@code device} (which it does not close): its steps computed by {@code executor}; only the {@code writer} checks the outputs, locks
     * the folder, evaluates and writes (the other replicas of a data-parallel run train, resuming from the same
     * resume point) and gets a result; the others return null.
     */
    public static Result run(FinetuneJob job, Device device, StepExecutor executor, boolean writer,
                             FinetuneListener listener) throws IOException {
        try {
            if (!writer) return runLoaded(job, device, executor, false, listener);
            Path output = job.outputs().dir();
            // Before anything is read: no output may be an input (or a special file), and one process per folder.
            new OutputGuard().input("{model}", job.model().dir()).input("{data}", job.data().train())
                    .input("{eval_data}", job.data().eval()).input("{init_adapter}", job.model().initAdapter())
                    .input("{chat_template}", job.data().preparation().chatTemplate())
                    .folder("{output}", output, OUTPUTS.toArray(String[]::new));
            Files.createDirectories(output);
            try (FolderLock lock = FolderLock.acquire(output, "{output}")) {
                return runLoaded(job, device, executor, true, listener);
            }
        } catch (SettingException e) {
            throw e;
        } catch (IllegalArgumentException e) {  // the settings named in braces, as the messages above name them
            SettingException s = new SettingException(e.getMessage());
            s.initCause(e);
            throw s;
        }
    }

    private static Result runLoaded(FinetuneJob job, Device device, StepExecutor executor, boolean writer,
                                    FinetuneListener listener) throws IOException {
        Path modelDir = job.model().dir();
        LlamaConfig config = LlamaConfig.read(modelDir.resolve("config.json"));
        LoraSettings lora = job.lora();
        PeftAdapters.Adapter init = null;
        if (job.model().initAdapter() != null) {
            init = PeftAdapters.read(job.model().initAdapter());
            lora = initSettings(lora, LoraSettings.of(init.config()));
        }
        List<TokenFormat.Prepared> prepared = new ArrayList<>();
        TokenDataset train = readData(job.data().train(), job, config, prepared);
        if (prepared.isEmpty() && !job.data().preparation().atDefaults() && job.data().train().getFileName()
                .toString().toLowerCase(Locale.ROOT).endsWith(".safetensors")) {  // not silently ignored
            throw new SettingException(job.data().train() + ": pre-tokenized rows are trained on as they are;"
                    + " {packing}, {assistant_only_loss}, {completion_only_loss}, {truncation_mode} and"
                    + " {chat_template} apply to .jsonl / .json examples (give them to the data command that wrote it)");
        }
        TokenDataset split = null;
        if (job.data().evalSplit() != null) {  // before the replicas of a data-parallel run part: all train on the same rows
            TokenDataset[] parts = TokenDataset.split(train, job.data().evalSplit(), job.batching().seed());
            train = parts[0];
            split = parts[1];
        }
        FinetuneConfig fc = finetuneConfig(job, lora, train);  // validates the options before the eval rows depend on them
        // Before the model is read or a step computed: the weights and one micro-batch's activations must fit.
        MemoryEstimate estimate = MemoryEstimate.training(config, lora, config.torchDtype() != null
                && config.torchDtype().endsWith("16") ? 2 : 4, fc.batch(), train.seqLen(), job.activationCheckpointing(),
                device.threads());
        if (writer) listener.info(estimate.describe());
        HeapCheck.require(estimate.total(), "a micro-batch of " + fc.batch() + " x " + train.seqLen()
                + " tokens on this model", "lower {batch} or {seq_len}, or use activation checkpointing or NF4 weights");
        TokenDataset eval = job.data().eval() != null ? readData(job.data().eval(), job, config, prepared)
                : split != null ? split : firstRows(train, (int) Math.min(train.size(), 4L * fc.batch()));
        if (eval.seqLen() != train.seqLen()) {
            throw new SettingException(job.data().eval() + ": rows of " + eval.seqLen() + " tokens, {data}'s "
                    + train.seqLen());
        }
        try (LlamaForCausalLM m = LlamaForCausalLM.load(modelDir, lora, device)) {
            m.activationCheckpointing(job.activationCheckpointing());
            if (init != null) {
                try {
                    m.loadAdapters(init.tensors());
                } catch (IllegalArgumentException e) {
                    throw new SettingException("{init_adapter} " + job.model().initAdapter() + ": " + e.getMessage());
                }
            }
            Path output = job.outputs().dir();
            boolean resume = job.checkpoints().resume();
            if (!writer) {
                Trainer t = Finetuner.trainer(m, train, fc);
                Path state = output.resolve(RunFiles.STATE);
                if (resume && Files.exists(state)) t.resume(state);
                while (!t.finished()) executor.step(t);
                return null;
            }
            FinetuneRun run = new FinetuneRun(m, train, eval, fc, modelDir.toAbsolutePath().normalize().toString(),
                    output, resume).executor(executor).listener(listener);
            run.memoryEstimate = estimate;
            FinetuneJob.Preparation p = job.data().preparation();
            run.describe(c -> {
                c.put("model", modelDir.toString()).put("data", job.data().train().toString())
                        .put("eval_data", job.data().eval() != null ? job.data().eval().toString()
                                : job.data().evalSplit() != null ? "split " + job.data().evalSplit() + " of the data (seed "
                                + job.batching().seed() + ")" : "first " + eval.size() + " rows of the data")
                        .put("init_adapter", job.model().initAdapter() == null ? null : job.model().initAdapter().toString());
                p.describe(c);
                if (!prepared.isEmpty()) {
                    var a = c.putArray("data_preparation");
                    for (TokenFormat.Prepared d : prepared) a.add(d.summary());
                }
            });
            for (TokenFormat.Prepared d : prepared) listener.info(SafeText.of(d.line(), 2000));
            run.train();
            run.save();
            if (job.outputs().merge()) run.writeMerged(outputDtype(config.torchDtype()), config);
            return run.result();
        }
    }

    /** An initial adapter decides the adapters' shape: its r, alpha, modules, rsLoRA and DoRA, with this run's dropout/base. */
    private static LoraSettings initSettings(LoraSettings options, LoraSettings adapter) {
        return adapter.withDropout(options.dropout()).withQuantizeBase(options.quantizeBase());
    }

    /** The job's optimisation with its length resolved against the data (epochs to steps). */
    public static FinetuneConfig finetuneConfig(FinetuneJob job, LoraSettings lora, TokenDataset train) {
        FinetuneJob.Batching b = job.batching();
        FinetuneJob.Schedule s = job.schedule();
        FinetuneJob.Optimization o = job.optimization();
        long n = s.steps() != null ? s.steps()
                : new TokenBatches(train.size(), b.batch(), b.gradAccum(), b.shuffle(), b.seed())
                        .stepsForEpochs(s.epochs() == null ? 1 : s.epochs());
        return new FinetuneConfig(lora, n, b.batch(), b.gradAccum(), train.seqLen(), o.lr(), o.weightDecay(), o.beta1(),
                o.beta2(), o.eps(), s.warmupSteps(), s.kind(), o.maxGradNorm(), b.seed(), b.shuffle(),
                job.checkpoints().evalEvery(), job.checkpoints().saveEvery());
    }

    /**
     * The rows of a data file: pre-tokenized {@code .safetensors} here, other formats ({@code .jsonl},
     * {@code .json}) through a {@link TokenFormat} on the class path, prepared as the job's
     * {@link FinetuneJob.Preparation} says; what the preparation made goes to {@code prepared} (log entries,
     * one line each for people).
     */
    static TokenDataset readData(Path file, FinetuneJob job, LlamaConfig c, List<TokenFormat.Prepared> prepared)
            throws IOException {
        if (!Files.exists(file)) throw new IllegalArgumentException(file + ": no such file");
        Integer seqLen = job.data().seqLen();
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".safetensors")) {
            TokenDataset d = SafetensorsTokens.read(file, c.vocabSize());
            if (seqLen != null && seqLen != d.seqLen()) {
                throw new SettingException(file + ": rows of " + d.seqLen() + " tokens but {seq_len} " + seqLen);
            }
            return d;
        }
        for (TokenFormat f : ServiceLoader.load(TokenFormat.class)) {
            if (f.reads(file)) {
                TokenFormat.Prepared p = f.read(file, job.model().dir(), c, seqLen == null ? 256 : seqLen,
                        job.data().preparation());
                if (p.summary() != null) prepared.add(p);
                return p.rows();
            }
        }
        if (name.endsWith(".jsonl") || name.endsWith(".json")) {
            throw new IllegalArgumentException(file + ": .jsonl / .json data needs the data module"
                    + " (tornado-lora-data) on the class path; or give pre-tokenized .safetensors data");
        }
        throw new IllegalArgumentException(file + ": unknown data format; expected .jsonl, .json or .safetensors");
    }

    /** The first {@code n} rows of {@code d}. */
    public static TokenDataset firstRows(TokenDataset d, int n) {
        if (d instanceof ExampleRows r) return r.firstRows(n);  // positions and example ids kept
        int[][] ids = new int[n][d.seqLen()], labels = new int[n][d.seqLen()];
        for (int i = 0; i < n; i++) {
            d.inputIds(i, ids[i], 0);
            d.labels(i, labels[i], 0);
        }
        return TokenDataset.of(d.source() + " (first " + n + " rows)", ids, labels);
    }

    /** The merged checkpoint's dtype: the input's 16-bit type, else F32. */
    static String outputDtype(String torchDtype) {
        return "bfloat16".equals(torchDtype) || "float16".equals(torchDtype) ? torchDtype : "float32";
    }

    /** The peak use of the heap's pools since the JVM started, in MiB. */
    public static long peakHeapMiB() {
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
        ByteBuffer b = ByteBuffer.allocate(4 * d.seqLen());
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

    private static double seconds(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }

    private static double round(double v) {
        return Math.round(v * 1e3) / 1e3;
    }
}
