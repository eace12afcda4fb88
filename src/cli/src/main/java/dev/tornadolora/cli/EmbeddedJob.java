package dev.tornadolora.cli;

import dev.tornadolora.device.Device;
import dev.tornadolora.finetune.FinetuneConfig;
import dev.tornadolora.finetune.FinetuneRun;
import dev.tornadolora.finetune.SafetensorsTokens;
import dev.tornadolora.finetune.TeacherStudent;
import dev.tornadolora.finetune.TokenDataset;
import dev.tornadolora.io.AtomicFiles;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * {@code finetune} without {@code --model} and {@code --data}: the {@link TeacherStudent} job, fine-tuned and
 * written as a real run is, plus {@code OUT/base_model/} (the student's base as an HF folder, which
 * {@code peft/adapter_config.json} names, so PEFT and transformers can load the outputs) and the sampled corpus
 * and held-out sequences as pre-tokenized data ({@code train_data.safetensors}, {@code eval_data.safetensors}). Success: the share of
 * the initial KL(teacher ‖ student) on held-out teacher samples that training removes is at least
 * {@link #MIN_KL_REMOVED}, and every learned scale·B·A has cosine at least {@link #MIN_COSINE} with its hidden
 * update; otherwise the command exits 1.
 */
final class EmbeddedJob {
    static final double MIN_KL_REMOVED = 0.90;
    static final double MIN_COSINE = 0.90;
    /** The options the embedded job takes; the others describe a real run and need --model and --data. */
    static final Set<String> OPTIONS = Set.of("--output", "--device", "--seed", "--quiet", "--resume", "--merge",
            "--save-every", "--eval-every");

    /**
     * A 1-layer Llama (hidden 128, 4 heads of 32, intermediate 256, vocab 256; every projection's numel a multiple
     * of torchao's 64·256 NF4 blocks), hidden rank-2 updates with ‖ΔW‖ = ‖deq W‖ on q_proj and v_proj, LoRA
     * rank 2, alpha 4, NF4 base; 512 training and 64 held-out sequences of 32 tokens.
     */
    static TeacherStudent.Spec spec(long seed) {
        LlamaConfig c = new LlamaConfig(256, 128, 256, 1, 4, 4, 32, 1e-5, 10000.0, null, false, 64, 0, 1, "float32");
        LoraSettings lora = new LoraSettings(Set.of("q_proj", "v_proj"), false, false, 2, 4f, 0f, false, true);
        return new TeacherStudent.Spec(c, lora, 2, 1.0, 4.0, 512, 64, 32, seed);
    }

    /** The job's optimisation: 300 steps of 16 rows, AdamW at 1e-2 with 10 warm-up steps and a cosine to 0, clip 1, no decay. */
    static FinetuneConfig finetuneConfig(TeacherStudent.Spec s, FinetuneCommand o) {
        return new FinetuneConfig(s.lora(), 300, 16, 1, s.seqLen(), 1e-2, 0, 0.9, 0.999, 1e-8, 10, "cosine", 1.0,
                s.seed(), true, o.evalEvery, o.saveEvery);
    }

    private final FinetuneCommand opts;

    EmbeddedJob(FinetuneCommand opts) {
        this.opts = opts;
    }

    int run(PrintWriter out) throws IOException {
        for (var o : opts.spec.commandLine().getParseResult().matchedOptions()) {
            if (!OPTIONS.contains(o.longestName())) {
                throw new IllegalArgumentException(o.longestName() + " needs --model and --data (the embedded job has"
                        + " fixed settings; it takes only " + String.join(", ", new java.util.TreeSet<>(OPTIONS)) + ")");
            }
        }
        TeacherStudent.Spec spec = spec(opts.seed);
        TeacherStudent job = new TeacherStudent(spec);
        LlamaConfig c = spec.model();
        out.printf(Locale.ROOT, "tornado-lora finetune (embedded job): teacher = seeded %d-layer Llama (hidden %d,"
                        + " %d heads, vocab %d) + hidden rank-%d updates on %s; corpus %d x %d tokens sampled from it;%n"
                        + "  student = the teacher's base in NF4 + fresh rank-%d adapters (QLoRA)%n",
                c.numHiddenLayers(), c.hiddenSize(), c.numAttentionHeads(), c.vocabSize(), spec.hiddenRank(),
                String.join(",", spec.lora().targetModules()), spec.trainSequences(), spec.seqLen(), spec.lora().rank());
        out.flush();
        Path base = opts.output.resolve("base_model");
        writeBase(job, base);
        try (Device device = opts.device.open(); LlamaForCausalLM teacher = job.teacher(device);
             LlamaForCausalLM student = job.student(device)) {
            long t0 = System.nanoTime();
            TokenDataset train = job.sample(teacher, spec.trainSequences(), 1, "teacher corpus");
            TokenDataset eval = job.sample(teacher, spec.evalSequences(), 2, "held-out teacher samples");
            double sampling = Progress.seconds(t0);
            SafetensorsTokens.write(opts.output.resolve("train_data.safetensors"), train);
            SafetensorsTokens.write(opts.output.resolve("eval_data.safetensors"), eval);
            double klBefore = TeacherStudent.kl(teacher, student, eval, 16);
            FinetuneProgress progress = new FinetuneProgress(out, opts.quiet);
            FinetuneRun run = new FinetuneRun(student, train, eval, finetuneConfig(spec, opts),
                    base.toAbsolutePath().normalize().toString(), opts.output, opts.resume).listener(progress);
            run.describe(cfg -> cfg.put("job", "embedded teacher/student (TeacherStudent)")
                    .put("hidden_rank", spec.hiddenRank()).put("update_scale", spec.updateScale())
                    .put("logit_std", spec.logitStd()).put("model_config", c.toString()));
            run.train();
            double klAfter = TeacherStudent.kl(teacher, student, eval, 16);
            Map<String, Double> cos = job.cosines(student);
            double removed = 1 - klAfter / klBefore;
            boolean met = removed >= MIN_KL_REMOVED && cos.values().stream().allMatch(v -> v >= MIN_COSINE);
            var s = run.log().summary();
            s.put("sampling_s", Math.round(sampling * 1e3) / 1e3).put("kl_before", klBefore).put("kl_after", klAfter)
             .put("kl_removed", removed).put("min_kl_removed", MIN_KL_REMOVED).put("min_cosine", MIN_COSINE);
            var cs = s.putObject("cosine");
            cos.forEach(cs::put);
            s.put("criteria_met", met);
            run.save();
            if (opts.merge) run.writeMerged("float32", c);
            StringBuilder crit = new StringBuilder();
            crit.append(String.format(Locale.ROOT, "KL(teacher || student) on held-out samples %.4f -> %.4f nats:"
                    + " %.1f%% removed (criterion >= %.0f%%): %s%n", klBefore, klAfter, 100 * removed,
                    100 * MIN_KL_REMOVED, removed >= MIN_KL_REMOVED ? "ok" : "NOT MET"));
            cos.forEach((m, v) -> crit.append(String.format(Locale.ROOT,
                    "cosine(scale*B*A, hidden update) %s: %.4f (criterion >= %.2f): %s%n", m, v, MIN_COSINE,
                    v >= MIN_COSINE ? "ok" : "NOT MET")));
            crit.append(met ? "learning criteria met" : "learning criteria NOT met");
            progress.printFinal(run.result(), opts.merge, crit.toString());
            return met ? 0 : 1;
        }
    }

    /** The student's base as an HF folder (config.json + model.safetensors, F32, keys sorted). */
    private static void writeBase(TeacherStudent job, Path dir) throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
        new TreeMap<>(job.baseWeights()).forEach(w::f32);
        w.write(dir.resolve("model.safetensors"));
        AtomicFiles.writeString(dir.resolve("config.json"), job.spec().model().toJson());
    }
}
