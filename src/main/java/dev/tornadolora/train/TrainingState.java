package dev.tornadolora.train;

import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a run needs besides the adapters to continue exactly where it stopped: the optimizer's buffers (keyed
 * {@code <param>.<buffer>}, e.g. {@code fc1.lora_a.weight.exp_avg}) and, in the metadata, the number of steps
 * taken, the scheduler's epoch and base rate, and the optimizer's name. Saved next to the adapter checkpoint
 * of the same step; data batches depend only on (seed, step), so nothing else is needed to resume.
 */
public final class TrainingState {
    public static final String STEP = "step";
    public static final String SCHEDULER_EPOCH = "scheduler_epoch";
    public static final String BASE_LR = "base_lr";
    public static final String OPTIMIZER = "optimizer";

    private TrainingState() {}

    public static void save(Path file, Optimizer optimizer, LrScheduler scheduler, long step,
                            Map<String, String> extraMetadata) throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter()
                .metadata(STEP, Long.toString(step))
                .metadata(OPTIMIZER, optimizer.getClass().getSimpleName())
                .metadata("optimizer_steps", Long.toString(optimizer.stepCount()))
                .metadata("lr", Double.toString(optimizer.lr()))
                .metadata(extraMetadata);
        if (scheduler != null) {
            w.metadata(SCHEDULER_EPOCH, Long.toString(scheduler.epoch()))
             .metadata(BASE_LR, Double.toString(scheduler.baseLr()));
        }
        optimizer.state().forEach(w::f32);
        w.write(file);
    }

    /** Restores the optimizer's buffers and step count from {@code file}; returns the training step saved. */
    public static long restore(Path file, Optimizer optimizer) {
        SafeTensors st = SafeTensors.open(file);
        String kind = st.requireMetadata(OPTIMIZER);
        if (!kind.equals(optimizer.getClass().getSimpleName())) {
            throw new IllegalArgumentException(file + ": saved by optimizer " + kind + ", not "
                    + optimizer.getClass().getSimpleName());
        }
        Map<String, Tensor> buffers = new LinkedHashMap<>();
        for (String name : st.names()) buffers.put(name, st.f32(name));
        optimizer.loadState(buffers, parseLong(st, "optimizer_steps"));
        return parseLong(st, STEP);
    }

    static long parseLong(SafeTensors st, String key) {
        String v = st.requireMetadata(key);
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(st.source() + ": metadata '" + key + "' is not an integer: '" + v + "'");
        }
    }
}
