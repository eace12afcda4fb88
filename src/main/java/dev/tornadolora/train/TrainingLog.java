package dev.tornadolora.train;

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

    public static ObjectMapper mapper() {
        return JSON;
    }
}
