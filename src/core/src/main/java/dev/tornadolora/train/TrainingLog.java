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

    /** Appends a step's entry and returns it (for callers that record more per step). */
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
            ObjectNode entry = log.add(new Trainer.StepRecord(s, n.path("loss").asDouble(), n.path("lr").asDouble(),
                    n.path("grad_norm").asDouble(), n.path("tokens").asLong()), n.path("elapsed_s").asDouble());
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

    /**
     * Throws naming every entry that differs when {@code now} (the options of a run about to resume this one) is
     * not this log's configuration, apart from the entries in {@code ignored} (where it runs, descriptions).
     */
    public void requireSameConfig(ObjectNode now, List<String> ignored, String what) {
        JsonNode current;
        try {  // through text, as the saved one was: 8.0f and 8.0 become the same node
            current = JSON.readTree(JSON.writeValueAsString(now));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        ObjectNode saved = config();
        List<String> differences = new ArrayList<>();
        current.properties().forEach(e -> {
            JsonNode before = saved.get(e.getKey());
            if (!ignored.contains(e.getKey()) && !e.getValue().equals(before)) {
                differences.add(e.getKey() + " " + before + " -> " + e.getValue());
            }
        });
        if (!differences.isEmpty()) {
            throw new IllegalArgumentException(what + " was trained with other options: "
                    + String.join(", ", differences) + " (give the options of the run being resumed)");
        }
    }

    /** Seconds since the run began at the last entry (0 without entries): where a resumed run's clock starts. */
    public double elapsedSeconds() {
        return stepNodes.isEmpty() ? 0 : stepNodes.get(stepNodes.size() - 1).path("elapsed_s").asDouble();
    }

    public static ObjectMapper mapper() {
        return JSON;
    }
}
