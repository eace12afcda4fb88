package dev.tornadolora.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.io.AtomicFiles;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The JSON record of a training run: its configuration, one entry per step (step, loss, lr, grad_norm, tokens,
 * elapsed_s) and a summary. Written whole and atomically each time it is saved, so a reader never sees half a log.
 */
public final class TrainingLog {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final ObjectNode root = JSON.createObjectNode();
    private final ArrayNode stepNodes;
    private final List<Trainer.StepRecord> steps = new ArrayList<>();

    public TrainingLog() {
        root.put("format", "tornado-lora train log v1");
        root.putObject("config");
        root.putObject("summary");
        stepNodes = root.putArray("steps");
    }

    /** The configuration object, to fill in. */
    public ObjectNode config() {
        return (ObjectNode) root.get("config");
    }

    /** The summary object (final losses, cosines, timings), to fill in. */
    public ObjectNode summary() {
        return (ObjectNode) root.get("summary");
    }

    public void add(Trainer.StepRecord r, double elapsedSeconds) {
        steps.add(r);
        ObjectNode n = stepNodes.addObject();
        n.put("step", r.step());
        n.put("loss", r.loss());
        n.put("lr", r.lr());
        n.put("grad_norm", r.gradNorm());
        n.put("tokens", r.tokens());
        n.put("elapsed_s", Math.round(elapsedSeconds * 1e4) / 1e4);
    }

    public List<Trainer.StepRecord> steps() {
        return steps;
    }

    public void write(Path file) throws IOException {
        byte[] bytes = JSON.writeValueAsBytes(root);
        AtomicFiles.write(file, out -> {
            out.write(bytes);
            out.write('\n');
        });
    }

    /**
     * The log of a run being resumed at {@code step}: its configuration and summary as written, and its step
     * entries up to {@code step} (a run killed after writing the log but before its training state wrote later
     * ones, which the resumed run repeats).
     */
    public static TrainingLog read(Path file, long step) {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read the training log: " + e.getMessage(), e);
        }
        if (root == null || !root.path("config").isObject() || !root.path("steps").isArray()) {
            throw new IllegalArgumentException(file + ": not a training log (no config object and steps array)");
        }
        TrainingLog log = new TrainingLog();
        log.config().setAll((ObjectNode) root.get("config"));
        if (root.path("summary").isObject()) log.summary().setAll((ObjectNode) root.get("summary"));
        for (JsonNode n : root.get("steps")) {
            long s = n.path("step").asLong(-1);
            if (s > step) break;
            if (s != log.steps.size() + 1) {
                throw new IllegalArgumentException(file + ": step entries are not 1, 2, ...: found " + s
                        + " after " + log.steps.size());
            }
            log.add(new Trainer.StepRecord(s, n.path("loss").asDouble(), n.path("lr").asDouble(),
                    n.path("grad_norm").asDouble(), n.path("tokens").asLong()), n.path("elapsed_s").asDouble());
        }
        if (log.steps.size() != step) {
            throw new IllegalArgumentException(file + ": has " + log.steps.size() + " steps, the training state "
                    + step + " (the files are from different runs?)");
        }
        return log;
    }

    /** Seconds since the run began at the last entry (0 without entries): where a resumed run's clock starts. */
    public double elapsedSeconds() {
        return stepNodes.isEmpty() ? 0 : stepNodes.get(stepNodes.size() - 1).path("elapsed_s").asDouble();
    }

    public static ObjectMapper mapper() {
        return JSON;
    }
}
