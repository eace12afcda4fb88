package dev.tornadolora.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.io.AtomicFiles;
import dev.tornadolora.io.StrictJson;

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

    /** An empty log: no configuration, steps or summary yet. */
    public TrainingLog() {
        root.put("format", "tornado-lora train log v1");
        root.putObject("config");
        root.putObject("summary");
        stepNodes = root.putArray("steps");
    }

    /**
     * Records which run this log belongs to (top-level {@code run_id} and {@code options_sha256}).
     *
     * @param id the run's identity
     */
    public void identify(RunIdentity id) {
        root.put(RunIdentity.RUN_ID, id.runId());
        root.put(RunIdentity.OPTIONS_SHA256, id.optionsSha256());
    }

    /** {@return the run id recorded, or null} */
    public String runId() {
        JsonNode n = root.get(RunIdentity.RUN_ID);
        return n == null || !n.isTextual() ? null : n.textValue();
    }

    /** {@return the configuration object, to fill in} */
    public ObjectNode config() {
        return (ObjectNode) root.get("config");
    }

    /** {@return the summary object (final losses, cosines, timings), to fill in} */
    public ObjectNode summary() {
        return (ObjectNode) root.get("summary");
    }

    /**
     * Appends a step's entry.
     *
     * @param r              what the step measured
     * @param elapsedSeconds seconds since the run began
     * @return the entry, for callers that record more per step
     */
    public ObjectNode add(Trainer.StepRecord r, double elapsedSeconds) {
        steps.add(r);
        ObjectNode n = stepNodes.addObject();
        n.put("step", r.step());
        n.put("loss", r.loss());
        n.put("lr", r.lr());
        n.put("grad_norm", r.gradNorm());
        n.put("tokens", r.tokens());
        n.put("elapsed_s", Math.round(elapsedSeconds * 1e4) / 1e4);
        return n;
    }

    /**
     * A further list of entries by step (e.g. {@code "eval"}), created empty on first use; a resumed log keeps the
     * entries up to the step it resumes at.
     */
    public ArrayNode entries(String name) {
        if (name.equals("steps") || name.equals("config") || name.equals("summary")) {
            throw new IllegalArgumentException("'" + name + "' is not a list of entries of its own");
        }
        JsonNode n = root.get(name);
        return n instanceof ArrayNode a ? a : root.putArray(name);
    }

    /** {@return the steps logged so far, in order} */
    public List<Trainer.StepRecord> steps() {
        return steps;
    }

    /**
     * Writes the log as JSON, atomically.
     *
     * @param file the file to create or replace
     * @throws IOException when it cannot be written
     */
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
     *
     * @param file a log written by {@link #write}
     * @param step the last step to keep
     * @return the log with its configuration, summary and steps 1..{@code step}
     */
    public static TrainingLog read(Path file, long step) {
        // A log has about 150 bytes a step: a bound from the step count keeps a hostile file from filling the heap.
        JsonNode root = StrictJson.read(file, (1L << 20) + 512 * Math.max(0, step));
        if ( !root.path("config").isObject() || !root.path("steps").isArray()) {
            throw new IllegalArgumentException(file + ": not a training log (no config object and steps array)");
        }
        TrainingLog log = new TrainingLog();
        if (root.path(RunIdentity.RUN_ID).isTextual()) log.root.put(RunIdentity.RUN_ID, root.get(RunIdentity.RUN_ID).textValue());
        log.config().setAll((ObjectNode) root.get("config"));
        if (root.path("summary").isObject()) log.summary().setAll((ObjectNode) root.get("summary"));
        for (JsonNode n : root.get("steps")) {
            String where = file + ": step entry " + (log.steps.size() + 1);
            StrictJson.requireObject(n, where);
            long s = StrictJson.requireLong(n, "step", 1, Long.MAX_VALUE, where);
            if (s > step) break;
            if (s != log.steps.size() + 1) {
                throw new IllegalArgumentException(file + ": step entries are not 1, 2, ...: found " + s
                        + " after " + log.steps.size());
            }
            ObjectNode entry = log.add(new Trainer.StepRecord(s, StrictJson.requireDouble(n, "loss", where),
                    StrictJson.requireDouble(n, "lr", where), StrictJson.requireDouble(n, "grad_norm", where),
                    StrictJson.requireLong(n, "tokens", 0, Long.MAX_VALUE, where)),
                    StrictJson.requireDouble(n, "elapsed_s", where));
            if (n.isObject()) entry.setAll((ObjectNode) n);
        }
        for (var field : root.properties()) {
            String k = field.getKey();
            if (!k.equals("steps") && field.getValue().isArray()) {
                ArrayNode kept = log.entries(k);
                for (JsonNode e : field.getValue()) {
                    if (e.path("step").asLong(Long.MAX_VALUE) <= step) kept.add(e);
                }
            }
        }
        if (log.steps.size() != step) {
            throw new IllegalArgumentException(file + ": has " + log.steps.size() + " steps, the training state "
                    + step + " (the files are from different runs?)");
        }
        return log;
    }

    /** {@return seconds since the run began at the last entry (0 without entries): where a resumed run's clock starts} */
    public double elapsedSeconds() {
        return stepNodes.isEmpty() ? 0 : stepNodes.get(stepNodes.size() - 1).path("elapsed_s").asDouble();
    }

    /** {@return the JSON mapper the log is written with (indented output)} */
    public static ObjectMapper mapper() {
        return JSON;
    }
}
