package dev.tornadolora.cli;

import dev.tornadolora.device.Device;
import dev.tornadolora.finetune.DataParallelLauncher;
import dev.tornadolora.finetune.FinetuneJob;
import dev.tornadolora.finetune.FinetuneRun;
import dev.tornadolora.train.SettingException;
import dev.tornadolora.finetune.TeacherStudent;
import dev.tornadolora.io.PeftAdapters;
import dev.tornadolora.io.TargetModules;
import dev.tornadolora.llama.LoraSettings;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;

/**
 * {@code finetune}: LoRA/QLoRA fine-tuning of a Hugging Face Llama folder, torchtune's
 * {@code lora_finetune_single_device} recipe on the JVM: the options parsed into a {@link FinetuneJob}, which
 * core runs ({@link FinetuneRun}); this command only prints its progress ({@link FinetuneProgress}). Without {@code --model} and {@code --data} it runs the embedded job with a known answer
 * ({@link TeacherStudent}).
 */
@Command(name = "finetune", sortOptions = false, mixinStandardHelpOptions = true, description = {
        "LoRA / QLoRA fine-tuning of a Hugging Face Llama checkpoint (torchtune's",
        "lora_finetune_single_device recipe; losses step for step as transformers + PEFT).",
        "Writes OUT/peft/ (PEFT adapter), OUT/adapter.safetensors (torchtune keys),",
        "log.json, loss.png, the resume point training_state.safetensors, and with",
        "--merge OUT/merged/ (config.json + model.safetensors).",
        "Without --model and --data: the embedded job with a known answer - a seeded",
        "small Llama teacher with hidden low-rank updates, a corpus sampled from it, and",
        "a QLoRA student fine-tuned on it; exits 1 when it does not learn the updates.", ""})
final class FinetuneCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", paramLabel = "DIR", description = "Hugging Face Llama folder: config.json,"
            + " model.safetensors (or sharded), tokenizer.json for .jsonl data")
    Path model;

    @Option(names = "--data", paramLabel = "FILE", description = {"training data: .jsonl / .json examples of TRL's"
            + " dataset types ({\"text\"}, {\"prompt\",\"completion\"}, {\"messages\"}, prompt/completion message"
            + " lists, alpaca; prepared as TRL's SFTTrainer does with DIR's tokenizer and chat template, docs/data.md;"
            + " plain {\"text\"} without the data options: joined with EOS, packed into --seq-len blocks), or"
            + " pre-tokenized .safetensors (input_ids I64 [N, S], optional labels, position_ids, example_ids: the"
            + " data command's output)"})
    Path data;

    @Mixin
    SftDataOptions sft;

    @Option(names = "--output", paramLabel = "OUT", defaultValue = "out/finetune",
            description = "output folder (default ${DEFAULT-VALUE})")
    Path output;

    @Option(names = "--lora-rank", paramLabel = "R", defaultValue = "8", description = "LoRA rank r (default ${DEFAULT-VALUE})")
    int loraRank;

    @Option(names = "--lora-alpha", paramLabel = "A", defaultValue = "16", description = "LoRA alpha; scale alpha/r (default ${DEFAULT-VALUE})")
    float loraAlpha;

    @Option(names = "--lora-dropout", paramLabel = "P", defaultValue = "0",
            description = "dropout on the LoRA branch's input, training only (default ${DEFAULT-VALUE})")
    float loraDropout;

    @Option(names = "--lora-modules", paramLabel = "M", defaultValue = "q_proj,v_proj",
            description = "PEFT's target_modules: projections with adapters, any of q_proj,k_proj,v_proj,o_proj,"
                    + "gate_proj,up_proj,down_proj,lm_head (comma-separated); or all-linear (every projection, not"
                    + " lm_head); or a regex matched against the full module name, e.g. '.*\\.(q|down)_proj'"
                    + " (default ${DEFAULT-VALUE}, as torchtune)")
    String loraModules;

    @Option(names = "--lora-mlp", description = "also adapters on gate_proj, up_proj, down_proj (torchtune's apply_lora_to_mlp)")
    boolean loraMlp;

    @Option(names = "--lora-output", description = "also an adapter on lm_head (torchtune's apply_lora_to_output)")
    boolean loraOutput;

    @Option(names = "--rslora", description = "rank-stabilised scale alpha/sqrt(r) (PEFT's use_rslora)")
    boolean rslora;

    @Option(names = "--dora", description = "DoRA: a trained magnitude per output row (PEFT's use_dora,"
            + " torchtune's DoRALinear)")
    boolean dora;

    @Option(names = "--quantize-base", description = "QLoRA: every q/k/v/o/gate/up/down weight in NF4 (torchao's"
            + " to_nf4, block 64, scaler block 256); embeddings, norms, lm_head stay fp32")
    boolean quantizeBase;

    @Option(names = "--activation-checkpointing", description = {"keep only each decoder layer's input in the"
            + " forward and recompute the layer in backward (torchtune's enable_activation_checkpointing): the"
            + " activations of one layer instead of all, more step time, identical results"})
    boolean activationCheckpointing;

    @Option(names = "--steps", paramLabel = "N", description = "optimizer steps (default: --epochs 1)")
    Long steps;

    @Option(names = "--epochs", paramLabel = "E", description = "passes over the data: ceil(E*N / (batch*grad-accum))"
            + " steps (default 1 when --steps is not given)")
    Integer epochs;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "2", description = "rows per micro-batch (default ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--grad-accum", paramLabel = "A", defaultValue = "1",
            description = "micro-batches per optimizer step; the loss is normalised by the step's counted tokens"
                    + " (default ${DEFAULT-VALUE})")
    int gradAccum;

    @Option(names = "--seq-len", paramLabel = "S", description = "tokens per row: TRL's max_length for .jsonl / .json"
            + " examples, the block length of {\"text\"} blocks (default 256); for .safetensors data its S (must"
            + " match when given)")
    Integer seqLen;

    @Option(names = "--lr", paramLabel = "LR", defaultValue = "3e-4", description = "peak learning rate of AdamW (default ${DEFAULT-VALUE})")
    double lr;

    @Option(names = "--weight-decay", paramLabel = "W", defaultValue = "0.01",
            description = "AdamW's decoupled weight decay (default ${DEFAULT-VALUE}, torch's)")
    double weightDecay;

    @Option(names = "--warmup-steps", paramLabel = "N", defaultValue = "0",
            description = "linear warm-up steps from lr 0, before the cosine or constant part (default ${DEFAULT-VALUE})")
    long warmupSteps;

    @Option(names = "--schedule", paramLabel = "S", defaultValue = "cosine",
            description = "cosine (torchtune's get_cosine_schedule_with_warmup, to 0 at the last step) or constant"
                    + " (transformers' get_constant_schedule_with_warmup) (default ${DEFAULT-VALUE})")
    String schedule;

    @Option(names = "--max-grad-norm", paramLabel = "N", defaultValue = "1.0",
            description = "clip the global gradient norm to N; 0 disables (default ${DEFAULT-VALUE})")
    double maxGradNorm;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0",
            description = "seeds the data order with --shuffle (and the embedded job's teacher and corpus)")
    long seed;

    @Option(names = "--shuffle", paramLabel = "true|false", arity = "1", defaultValue = "true",
            description = "a seeded permutation of the rows per epoch; false: step i uses rows (i*B*A + j) mod N"
                    + " (default ${DEFAULT-VALUE})")
    boolean shuffle;

    @Option(names = "--eval-data", paramLabel = "FILE", description = "held-out data (same formats) for the eval"
            + " loss before, during and after training, prepared as --data (default: the first rows of --data)")
    Path evalData;

    @Option(names = "--eval-split", paramLabel = "F", description = {"hold out a fraction F in (0, 1) of --data's"
            + " prepared rows for the eval loss instead: ceil(F*N) rows (as datasets' train_test_split counts), chosen"
            + " by a permutation seeded with --seed, each part in file order"})
    Double evalSplit;

    @Option(names = "--eval-every", paramLabel = "N", defaultValue = "0",
            description = "also evaluate every N steps (default 0: before and after only)")
    int evalEvery;

    @Option(names = "--save-every", paramLabel = "N", defaultValue = "0",
            description = "also write the outputs and the resume point every N steps (default 0: at the end)")
    int saveEvery;

    @Option(names = "--resume", description = {"continue the run in --output from its resume point (same options;"
            + " the same adapters bit for bit as a run never stopped); without a resume point it starts afresh"})
    boolean resume;

    @Option(names = "--init-adapter", paramLabel = "PEFT_DIR",
            description = "start from this PEFT adapter (adapter_config.json + adapter_model.safetensors) instead of"
                    + " fresh adapters; its r, alpha and target modules become the LoRA options")
    Path initAdapter;

    @Mixin
    DeviceOption device;

    @Option(names = "--merge", description = "also write OUT/merged/: config.json + model.safetensors with"
            + " W + scale*B*A (NF4 dequantized), dtype as the input checkpoint (F32 for the embedded job)")
    boolean merge;

    @Option(names = "--quiet", description = "no progress bar")
    boolean quiet;

    @Option(names = "--spark", paramLabel = "MASTER", description = {"data-parallel on Apache Spark: local[N],"
            + " spark://host:port, ... (barrier mode; every worker holds the whole model and takes an equal share of"
            + " each step's rows; --output and the data must be on storage every executor sees)"})
    String spark;

    @Option(names = "--workers", paramLabel = "N", description = "replicas (barrier tasks) with --spark (default 2);"
            + " --batch x --grad-accum must be a multiple of N")
    Integer workers;

    @Option(names = "--check-every", paramLabel = "K", defaultValue = "10",
            description = "with --spark: compare the replicas' adapter checksums every K steps (default ${DEFAULT-VALUE})")
    int checkEvery;

    /**
     * The one map from the job's settings (as core messages name them, {@link SettingException}) to this
     * command's options.
     */
    static final Map<String, String> FLAGS = Map.ofEntries(Map.entry("model", "--model"), Map.entry("data", "--data"),
            Map.entry("eval_data", "--eval-data"), Map.entry("eval_split", "--eval-split"),
            Map.entry("seq_len", "--seq-len"), Map.entry("packing", "--packing"),
            Map.entry("assistant_only_loss", "--assistant-only-loss"),
            Map.entry("completion_only_loss", "--completion-only-loss"),
            Map.entry("truncation_mode", "--truncation-mode"), Map.entry("chat_template", "--chat-template"),
            Map.entry("init_adapter", "--init-adapter"), Map.entry("batch", "--batch"),
            Map.entry("grad_accum", "--grad-accum"), Map.entry("shuffle", "--shuffle"), Map.entry("seed", "--seed"),
            Map.entry("lr", "--lr"), Map.entry("weight_decay", "--weight-decay"),
            Map.entry("max_grad_norm", "--max-grad-norm"), Map.entry("steps", "--steps"),
            Map.entry("epochs", "--epochs"), Map.entry("schedule", "--schedule"),
            Map.entry("warmup_steps", "--warmup-steps"), Map.entry("output", "--output"), Map.entry("merge", "--merge"),
            Map.entry("eval_every", "--eval-every"), Map.entry("save_every", "--save-every"),
            Map.entry("resume", "--resume"), Map.entry("lora_rank", "--lora-rank"),
            Map.entry("lora_alpha", "--lora-alpha"), Map.entry("lora_dropout", "--lora-dropout"),
            Map.entry("lora_attn_modules", "--lora-modules"), Map.entry("quantize_base", "--quantize-base"));

    /** A setting's option; the name itself when the command has no option for it. */
    static String flag(String field) {
        return FLAGS.getOrDefault(field, field);
    }

    @Override
    public Integer call() throws Exception {
        try {
            return execute(spec.commandLine().getOut());
        } catch (SettingException e) {
            throw new IllegalArgumentException(e.render(FinetuneCommand::flag), e);
        }
    }

    private int execute(PrintWriter out) throws Exception {
        if (spark != null) {
            if (model == null || data == null) {
                throw new IllegalArgumentException("--spark needs --model DIR and --data FILE (the embedded job runs on one machine)");
            }
            int n = workers == null ? 2 : workers;
            SparkArguments.validate(spark, n, batch, gradAccum, checkEvery,
                    Runtime.getRuntime().availableProcessors());  // before Spark starts, not in its stage attempts
            FinetuneJob job = job();
            requireAgreesWithInitAdapter(job);
            FinetuneProgress progress = new FinetuneProgress(out, true);
            FinetuneRun.Result r = DataParallelLauncher.find().launch(job, device.name(), BackendProperties.read(), spark, n,
                    checkEvery, progress);
            progress.printFinal(r, merge, null);
            return 0;
        }
        if (workers != null) throw new IllegalArgumentException("--workers needs --spark MASTER");
        if (model == null && data == null) {
            return new EmbeddedJob(this).run(out);
        }
        FinetuneJob job = job();
        requireAgreesWithInitAdapter(job);
        try (FinetuneProgress progress = new FinetuneProgress(out, quiet); Device d = device.open()) {
            FinetuneRun.Result r = job.run(d, progress);
            progress.printFinal(r, merge, null);
            return 0;
        }
    }

    /** The options as a job. */
    FinetuneJob job() {
        if (model == null || data == null) {
            throw new IllegalArgumentException("give both --model DIR and --data FILE (or neither, for the embedded job)");
        }
        return new FinetuneJob(new FinetuneJob.Model(model, initAdapter), new FinetuneJob.Data(data, evalData, evalSplit, seqLen,
                sft.preparation()),
                loraSettings(), new FinetuneJob.Batching(batch, gradAccum, shuffle, seed),
                new FinetuneJob.Optimization(lr, weightDecay, 0.9, 0.999, 1e-8, maxGradNorm),
                new FinetuneJob.Schedule(steps, epochs, schedule, warmupSteps), new FinetuneJob.Outputs(output, merge),
                new FinetuneJob.Checkpoints(evalEvery, saveEvery, resume), activationCheckpointing);
    }

    /** The LoRA options as settings. */
    LoraSettings loraSettings() {
        return new LoraSettings(targetModules(loraModules, loraMlp, loraOutput), loraRank, loraAlpha, loraDropout,
                rslora, dora, quantizeBase);
    }

    /**
     * --lora-modules as PEFT's target_modules: {@code all-linear}, a regex (any regex metacharacter but '.'), or
     * comma-separated names; --lora-mlp and --lora-output add gate/up/down_proj and lm_head to a list of names.
     */
    static TargetModules targetModules(String spec, boolean mlp, boolean output) {
        String s = spec.trim();
        boolean regex = s.chars().anyMatch(ch -> "*+?[](){}|\\^$".indexOf(ch) >= 0);
        if (s.equals(TargetModules.ALL_LINEAR) || regex) {
            if (mlp || output) {
                throw new IllegalArgumentException("--lora-mlp and --lora-output add to a list of --lora-modules,"
                        + " not to " + (regex ? "a regex" : "all-linear"));
            }
            return TargetModules.of(s);
        }
        List<String> names = new ArrayList<>();
        for (String n : s.split(",")) if (!n.isBlank()) names.add(n.trim());
        if (mlp) names.addAll(LoraSettings.MLP_MODULES);
        if (output) names.add(LoraSettings.OUTPUT_MODULE);
        return TargetModules.of(names);
    }

    /**
     * Options given explicitly that the initial adapter contradicts are refused, not silently replaced by its values
     * (the job takes the adapter's shape).
     */
    private void requireAgreesWithInitAdapter(FinetuneJob job) {
        if (initAdapter == null || spec == null) return;
        LoraSettings given = job.lora(), adapter = LoraSettings.of(PeftAdapters.read(initAdapter).config());
        CommandLine.ParseResult pr = spec.commandLine().getParseResult();
        List<String> clash = new ArrayList<>();
        if (pr.hasMatchedOption("--lora-rank") && given.rank() != adapter.rank()) {
            clash.add("--lora-rank " + given.rank() + " (its r is " + adapter.rank() + ")");
        }
        if (pr.hasMatchedOption("--lora-alpha") && given.alpha() != adapter.alpha()) {
            clash.add("--lora-alpha " + given.alpha() + " (its lora_alpha is " + adapter.alpha() + ")");
        }
        boolean modulesGiven = pr.hasMatchedOption("--lora-modules") || pr.hasMatchedOption("--lora-mlp")
                || pr.hasMatchedOption("--lora-output");
        if (modulesGiven && !given.targets().equals(adapter.targets())) {
            clash.add("--lora-modules " + given.targets() + " (its target_modules are " + adapter.targets() + ")");
        }
        if (pr.hasMatchedOption("--dora") && given.dora() != adapter.dora()) {
            clash.add("--dora (its use_dora is " + adapter.dora() + ")");
        }
        if (pr.hasMatchedOption("--rslora") && given.rslora() != adapter.rslora()) {
            clash.add("--rslora (its use_rslora is " + adapter.rslora() + ")");
        }
        if (!clash.isEmpty()) {
            throw new IllegalArgumentException("--init-adapter " + initAdapter + " decides the adapters' shape, but "
                    + String.join(", ", clash) + " says otherwise: leave these options out or give the adapter's");
        }
    }

}
