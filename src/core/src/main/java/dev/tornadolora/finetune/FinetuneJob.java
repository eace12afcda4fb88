package dev.tornadolora.finetune;

import dev.tornadolora.train.SettingException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.device.Device;
import dev.tornadolora.llama.LoraSettings;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Set;

/**
 * A fine-tuning job as a value: everything {@code finetune} reads from its options, for a Java program to build
 * and {@link #run} without the CLI (which only parses its options into this record), and for the Spark module to
 * ship to its executors ({@link #toJson()}, {@link #fromJson}). Messages about a setting name it by its field in
 * braces ({@link SettingException}): {@code model}, {@code data}, {@code eval_data}, {@code eval_split},
 * {@code seq_len}, the preparation's {@code packing}, {@code assistant_only_loss}, {@code completion_only_loss},
 * {@code truncation_mode}, {@code chat_template},
 * {@code init_adapter}, {@code batch}, {@code grad_accum}, {@code shuffle}, {@code seed}, {@code lr},
 * {@code weight_decay}, {@code max_grad_norm}, {@code steps}, {@code epochs}, {@code schedule},
 * {@code warmup_steps}, {@code output}, {@code merge}, {@code eval_every}, {@code save_every}, {@code resume}, and
 * the LoRA settings' {@code lora_*} and {@code quantize_base}.
 *
 * <pre>{@code
 *   FinetuneJob job = FinetuneJob.of(modelDir, dataFile, outDir).withSteps(100);
 *   try (Device device = Device.open("jvm")) {
 *       FinetuneRun.Result r = job.run(device, FinetuneListener.NONE);
 *   }
 * }</pre>
 *
 * @param model        the Hugging Face Llama folder and an optional PEFT adapter to start from
 * @param data         training data, held-out data and the row length
 * @param lora         where the adapters go and how ({@link LoraSettings}; an initial adapter replaces its shape)
 * @param batching     rows per micro-batch, micro-batches per step, the data order
 * @param optimization AdamW and clipping
 * @param schedule     the run's length and the learning-rate schedule
 * @param outputs      the output folder and whether to write a merged model
 * @param checkpoints  when to evaluate and save, and whether to continue from the resume point
 * @param activationCheckpointing keep each decoder layer's input only and recompute the layer in backward
 *                     (identical results, less memory, more time)
 */
public record FinetuneJob(Model model, Data data, LoraSettings lora, Batching batching, Optimization optimization,
                          Schedule schedule, Outputs outputs, Checkpoints checkpoints, boolean activationCheckpointing) {

    /** A job without activation checkpointing. */
    public FinetuneJob(Model model, Data data, LoraSettings lora, Batching batching, Optimization optimization,
                       Schedule schedule, Outputs outputs, Checkpoints checkpoints) {
        this(model, data, lora, batching, optimization, schedule, outputs, checkpoints, false);
    }

    /**
     * @param dir         config.json, model.safetensors (or shards), tokenizer.json for {@code .jsonl} data
     * @param initAdapter a PEFT folder to start from instead of fresh adapters; null for none
     */
    public record Model(Path dir, Path initAdapter) {}

    /**
     * @param train       {@code .jsonl} / {@code .json} examples (needs tornado-lora-data: TRL's dataset types,
     *                    prepared as {@code preparation} says, or {"text"} blocks) or pre-tokenized
     *                    {@code .safetensors} ({@code input_ids} I64 [N, S], optional {@code labels},
     *                    {@code position_ids}, {@code example_ids} as the {@code data} command writes them)
     * @param eval        held-out data in the same formats, prepared the same way; null: {@code evalSplit}, else
     *                    the first rows of {@code train}
     * @param evalSplit   a fraction in (0, 1) of the prepared rows of {@code train} held out for evaluation,
     *                    chosen by {@code batching.seed} ({@link TokenDataset#split}); null: none
     * @param seqLen      tokens per row: TRL's {@code max_length} (the row length) for {@code .jsonl}/{@code .json};
     *                    must match {@code .safetensors} data; null: 256 for {@code .jsonl}/{@code .json}, the
     *                    file's S otherwise
     * @param preparation how {@code .jsonl}/{@code .json} examples become rows; null: {@link Preparation#DEFAULT}
     */
    public record Data(Path train, Path eval, Double evalSplit, Integer seqLen, Preparation preparation) {
        public Data {
            if (preparation == null) preparation = Preparation.DEFAULT;
            if (evalSplit != null && !(evalSplit > 0 && evalSplit < 1)) {
                throw new SettingException("{eval_split} must be a fraction in (0, 1), got " + evalSplit);
            }
            if (evalSplit != null && eval != null) {
                throw new SettingException("give {eval_data} or {eval_split}, not both");
            }
        }

        /** Data prepared with the defaults, without a split. */
        public Data(Path train, Path eval, Integer seqLen) {
            this(train, eval, null, seqLen, Preparation.DEFAULT);
        }
    }

    /**
     * How {@code .jsonl} / {@code .json} examples become rows (tornado-lora-data's SftData), with TRL's
     * {@code SFTConfig} names: docs/data.md.
     *
     * @param packing            {@code none}: one example a row, right-padded (TRL's packing=False); {@code bfd}:
     *                           TRL's best-fit-decreasing packing, position ids restarting per example;
     *                           {@code blocks}: {"text"} documents joined with EOS, cut into blocks; null: blocks
     *                           for plain {"text"} data with every other field at its default, else none
     * @param assistantOnlyLoss  [assistant_only_loss] the assistant's tokens only (conversational data)
     * @param completionOnlyLoss [completion_only_loss] null: true for prompt-completion data, as TRL
     * @param truncationMode     [truncation_mode] {@code keep_start}, {@code keep_end} or {@code error}; null:
     *                           keep_start
     * @param chatTemplate       a Jinja template file instead of the model folder's; null: the model's
     */
    public record Preparation(String packing, boolean assistantOnlyLoss, Boolean completionOnlyLoss,
                              String truncationMode, Path chatTemplate) {
        public static final Preparation DEFAULT = new Preparation(null, false, null, null, null);

        public Preparation {
            if (packing != null && !Set.of("none", "bfd", "blocks").contains(packing)) {
                throw new SettingException("{packing} must be none, bfd or blocks, got '" + packing + "'");
            }
            if (truncationMode != null && !Set.of("keep_start", "keep_end", "error").contains(truncationMode)) {
                throw new SettingException("{truncation_mode} must be keep_start, keep_end or error, got '"
                        + truncationMode + "'");
            }
        }

        /** Whether every field is at its default (plain {"text"} data is then read as blocks). */
        public boolean atDefaults() {  // not isDefault: Jackson would write it as a property
            return equals(DEFAULT);
        }

        /** Records the fields in a log's configuration under TRL's names (the run's identity compares them). */
        public void describe(ObjectNode c) {
            c.put("packing", packing).put("assistant_only_loss", assistantOnlyLoss)
                    .put("completion_only_loss", completionOnlyLoss).put("truncation_mode", truncationMode)
                    .put("chat_template", chatTemplate == null ? null : chatTemplate.toString());
        }
    }

    /**
     * @param batch     rows per micro-batch
     * @param gradAccum micro-batches per optimizer step
     * @param shuffle   a seeded permutation per epoch (else step i takes rows (i·B·A + j) mod N)
     * @param seed      seeds the permutation
     */
    public record Batching(int batch, int gradAccum, boolean shuffle, long seed) {}

    /** {@code torch.optim.AdamW} and the global gradient-norm clip (0: off). */
    public record Optimization(double lr, double weightDecay, double beta1, double beta2, double eps,
                               double maxGradNorm) {}

    /**
     * @param steps       optimizer steps; null: {@code epochs}
     * @param epochs      passes over the data, ⌈E·N / (B·A)⌉ steps; null with {@code steps} null: 1
     * @param kind        {@code cosine} (torchtune's, to 0 at the last step) or {@code constant}, after warm-up
     * @param warmupSteps linear warm-up from 0
     */
    public record Schedule(Long steps, Integer epochs, String kind, long warmupSteps) {}

    /**
     * @param dir   the output folder: {@code peft/}, {@code adapter.safetensors}, {@code log.json}, the resume point
     * @param merge also {@code merged/}: config.json + model.safetensors with W + s·B·A
     */
    public record Outputs(Path dir, boolean merge) {}

    /**
     * @param evalEvery also evaluate every N steps (0: before and after only)
     * @param saveEvery also write the outputs and the resume point every N steps (0: at the end)
     * @param resume    continue from the resume point in the output folder when there is one
     */
    public record Checkpoints(int evalEvery, int saveEvery, boolean resume) {}

    public FinetuneJob {
        if (model == null || model.dir() == null) throw new SettingException("{model}: a model folder is needed");
        if (data == null || data.train() == null) throw new SettingException("{data}: a training data file is needed");
        if (outputs == null || outputs.dir() == null) throw new SettingException("{output}: an output folder is needed");
        if (lora == null || batching == null || optimization == null || schedule == null || checkpoints == null) {
            throw new IllegalArgumentException("every part of a FinetuneJob is needed (see FinetuneJob.of for defaults)");
        }
        if (schedule.steps() != null && schedule.epochs() != null) {
            throw new SettingException("give {steps} or {epochs}, not both");
        }
        if (schedule.epochs() != null && schedule.epochs() <= 0) {
            throw new SettingException("{epochs} must be positive, got " + schedule.epochs());
        }
    }

    /**
     * A job with {@code finetune}'s defaults: LoRA rank 8, alpha 16 on q_proj and v_proj (torchtune's), batch 2,
     * no accumulation, shuffled with seed 0, AdamW at 3e-4 with weight decay 0.01 (torch's betas and eps), clip
     * at 1, one epoch with a cosine schedule and no warm-up, no merged model, evaluated and saved at the end.
     */
    public static FinetuneJob of(Path model, Path data, Path output) {
        return new FinetuneJob(new Model(model, null), new Data(data, null, null),
                new LoraSettings(Set.of("q_proj", "v_proj"), false, false, 8, 16f, 0f, false, false),
                new Batching(2, 1, true, 0), new Optimization(3e-4, 0.01, 0.9, 0.999, 1e-8, 1.0),
                new Schedule(null, null, FinetuneConfig.COSINE, 0), new Outputs(output, false),
                new Checkpoints(0, 0, false));
    }

    public FinetuneJob withModel(Model m) {
        return new FinetuneJob(m, data, lora, batching, optimization, schedule, outputs, checkpoints);
    }

    public FinetuneJob withData(Data d) {
        return new FinetuneJob(model, d, lora, batching, optimization, schedule, outputs, checkpoints);
    }

    public FinetuneJob withLora(LoraSettings l) {
        return new FinetuneJob(model, data, l, batching, optimization, schedule, outputs, checkpoints);
    }

    public FinetuneJob withBatching(Batching b) {
        return new FinetuneJob(model, data, lora, b, optimization, schedule, outputs, checkpoints);
    }

    public FinetuneJob withOptimization(Optimization o) {
        return new FinetuneJob(model, data, lora, batching, o, schedule, outputs, checkpoints);
    }

    public FinetuneJob withSchedule(Schedule s) {
        return new FinetuneJob(model, data, lora, batching, optimization, s, outputs, checkpoints);
    }

    /** The same job with a length of {@code steps} optimizer steps (and the schedule's kind and warm-up). */
    public FinetuneJob withSteps(long steps) {
        return withSchedule(new Schedule(steps, null, schedule.kind(), schedule.warmupSteps()));
    }

    public FinetuneJob withOutputs(Outputs o) {
        return new FinetuneJob(model, data, lora, batching, optimization, schedule, o, checkpoints);
    }

    public FinetuneJob withCheckpoints(Checkpoints c) {
        return new FinetuneJob(model, data, lora, batching, optimization, schedule, outputs, c);
    }

    /**
     * Runs the job on this machine: checks that no output is an input, locks the output folder, loads the model
     * and data, trains with evaluation and saves as {@link FinetuneRun} says, and writes {@code merged/} when
     * asked. {@code listener} hears the progress.
     *
     * @param device where the model runs (open it with {@code Device.open}; the run does not close it)
     */
    public FinetuneRun.Result run(Device device, FinetuneListener listener) throws IOException {
        return FinetuneRun.run(this, device, StepExecutor.LOCAL, true, listener);
    }

    private static final ObjectMapper JSON = new ObjectMapper()
            .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, true);

    /** The job as JSON (paths as absolute {@code file:} URIs), e.g. to ship it to other machines. */
    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("the job does not serialize: " + e.getOriginalMessage(), e);
        }
    }

    /** The job {@link #toJson} wrote. */
    public static FinetuneJob fromJson(String json) {
        try {
            return JSON.readValue(json, FinetuneJob.class);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not a finetune job: " + e.getOriginalMessage(), e);
        }
    }
}
