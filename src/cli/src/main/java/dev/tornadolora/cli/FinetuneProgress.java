package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tornadolora.finetune.FinetuneListener;
import dev.tornadolora.finetune.FinetuneRun;
import dev.tornadolora.io.AtomicFiles;
import dev.tornadolora.io.RunFiles;
import dev.tornadolora.train.Trainer;
import dev.tornadolora.train.TrainingLog;
import me.tongfei.progressbar.ProgressBar;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The CLI's view of a {@link FinetuneRun}: its lines on stdout, a progress bar (unless {@code --quiet}) and, at
 * the end, {@code loss.png}.
 */
final class FinetuneProgress implements FinetuneListener, AutoCloseable {
    private final PrintWriter out;
    private final boolean quiet;
    private ProgressBar bar;

    FinetuneProgress(PrintWriter out, boolean quiet) {
        this.out = out;
        this.quiet = quiet;
    }

    @Override
    public void info(String line) {
        out.println(line);
        out.flush();
    }

    @Override
    public void started(long stepsDone, long steps) {
        if (quiet) return;
        bar = Progress.bar("finetune", steps);
        bar.stepTo(stepsDone);
    }

    @Override
    public void step(Trainer.StepRecord r, double elapsedSeconds, long tokens) {
        if (bar == null) return;
        bar.stepTo(r.step());
        bar.setExtraMessage(String.format(Locale.ROOT, " loss %.4f  %s tok/s", r.loss(),
                Progress.compact(tokens / Math.max(elapsedSeconds, 1e-9))));
    }

    @Override
    public void trained() {
        close();
    }

    /** Ends the progress bar, also when the run stops with an error. */
    @Override
    public void close() {
        if (bar != null) bar.close();
        bar = null;
    }

    @Override
    public void saved(Path output, TrainingLog log, boolean last) throws IOException {
        if (!last) return;
        JsonNode c = log.config();
        List<String> modules = new ArrayList<>();
        c.path("lora_modules").forEach(m -> modules.add(m.asText()));
        String title = String.format(Locale.ROOT, "%s fine-tune: rank %d on %s",
                c.path("quantize_base").asBoolean() ? "QLoRA" : "LoRA", c.path("lora_rank").asInt(),
                String.join(",", modules));
        List<LossCurve.EvalPoint> evals = new ArrayList<>();
        log.entries("eval").forEach(e -> evals.add(new LossCurve.EvalPoint(e.path("step").asLong(), e.path("loss").asDouble())));
        AtomicFiles.write(output.resolve(RunFiles.LOSS_CURVE), o -> o.write(LossCurve.finetune(title, log.steps(), evals)));
    }

    /** The last lines: where the outputs are, then eval loss before → after (and the criterion, if any). */
    void printFinal(FinetuneRun.Result r, boolean merged, String criterion) {
        out.printf(Locale.ROOT, "wall time %.1f s, %s tokens/s, peak heap %d MiB; wrote %s: peft/, adapter.safetensors,"
                        + " log.json, loss.png, %s%s%n", r.wallSeconds(),
                Progress.compact(r.tokens() / Math.max(r.wallSeconds(), 1e-9)), r.peakHeapMiB(), r.output(),
                RunFiles.STATE, merged ? ", merged/" : "");
        if (criterion != null) out.println(criterion);
        out.printf(Locale.ROOT, "eval loss before %.6f -> after %.6f%n", r.initialEval(), r.finalEval());
        out.flush();
    }
}
