package dev.tornadolora.train;

import dev.tornadolora.io.AdapterCheckpoints;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeText;
import dev.tornadolora.io.StrictJson;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.nn.LoRALinear;
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
 *
 * <p>Saved with the modules, the file is a whole resume point on its own: it also holds their adapters (keyed
 * {@code model.<module>.lora_a.weight}) and each one's dropout position ({@code <module>.dropout_draws}), all
 * written atomically in one file, so a run killed while saving its other outputs still resumes consistently.
 */
public final class TrainingState {
    /** Metadata key: the training step the resume point was saved at. */
    public static final String STEP = "step";
    /** Metadata key: the scheduler's epoch (torch's {@code last_epoch}). */
    public static final String SCHEDULER_EPOCH = "scheduler_epoch";
    /** Metadata key: the scheduler's base learning rate. */
    public static final String BASE_LR = "base_lr";
    /** Metadata key: the optimizer's name, checked on resume. */
    public static final String OPTIMIZER = "optimizer";
    /** Prefix of the adapter tensors in a resume point. */
    public static final String MODEL_PREFIX = "model.";
    private static final String DROPOUT_DRAWS = ".dropout_draws";

    private TrainingState() {}

    /**
     * Saves the optimizer's state (buffers, step count), the scheduler's epoch and base rate, and the step.
     *
     * @param file          the safetensors file, written atomically
     * @param optimizer     the optimizer
     * @param scheduler     its scheduler
     * @param step          the training step just done
     * @param extraMetadata more metadata to keep, e.g. the seed
     * @throws IOException when the file cannot be written
     */
    public static void save(Path file, Optimizer optimizer, LrScheduler scheduler, long step,
                            Map<String, String> extraMetadata) throws IOException {
        save(file, optimizer, scheduler, step, extraMetadata, Map.of());
    }

    /**
     * Saves a whole resume point: the optimizer state as above plus the modules' adapters and dropout positions.
     *
     * @param file          the safetensors file, written atomically
     * @param optimizer     the optimizer
     * @param scheduler     its scheduler
     * @param step          the training step just done
     * @param extraMetadata more metadata to keep, e.g. the seed
     * @param modules       the LoRA layers by name
     * @throws IOException when the file cannot be written
     */
    public static void save(Path file, Optimizer optimizer, LrScheduler scheduler, long step,
                            Map<String, String> extraMetadata, Map<String, LoRALinear> modules) throws IOException {
        Map<String, String> metadata = new LinkedHashMap<>(extraMetadata);
        modules.forEach((name, m) -> metadata.put(name + DROPOUT_DRAWS, Long.toString(m.dropoutDraws())));
        SafeTensorsWriter w = new SafeTensorsWriter()
                .metadata(STEP, Long.toString(step))
                .metadata(OPTIMIZER, optimizer.getClass().getSimpleName())
                .metadata("optimizer_steps", Long.toString(optimizer.stepCount()))
                .metadata("lr", Double.toString(optimizer.lr()))
                .metadata(metadata);
        if (scheduler != null) {
            w.metadata(SCHEDULER_EPOCH, Long.toString(scheduler.epoch()))
             .metadata(BASE_LR, Double.toString(scheduler.baseLr()));
        }
        optimizer.state().forEach(w::f32);
        AdapterCheckpoints.stateDict(modules).forEach((k, t) -> w.f32(MODEL_PREFIX + k, t));
        w.write(file);
    }

    /**
     * Restores a resume point written by {@link #save(Path, Optimizer, LrScheduler, long, Map, Map)}: the
     * optimizer state, the modules' adapters (keys checked as any adapter file's) and their dropout positions.
     * Returns the file, for the scheduler's epoch and base rate and the step.
     *
     * @param file      a resume point written by {@link #save(Path, Optimizer, LrScheduler, long, Map, Map)}
     * @param optimizer receives the buffers and step count
     * @param modules   receive the adapters and dropout positions
     * @return the opened file
     */
    public static SafeTensors resume(Path file, Optimizer optimizer, Map<String, LoRALinear> modules) {
        return resume(SafeTensors.open(file), optimizer, modules);
    }

    /**
     * As {@link #resume(Path, Optimizer, Map)} for a file already opened (or parsed from memory).
     *
     * @param file      the training state
     * @param optimizer receives the buffers and step count
     * @param modules   receive the adapters and dropout positions
     * @return the file, for the scheduler's epoch and base rate and the step
     */
    public static SafeTensors resume(SafeTensors file, Optimizer optimizer, Map<String, LoRALinear> modules) {
        SafeTensors st = restoreOptimizer(file, optimizer);
        Map<String, Tensor> adapters = new LinkedHashMap<>();
        for (String name : st.names()) {
            if (name.startsWith(MODEL_PREFIX)) adapters.put(name.substring(MODEL_PREFIX.length()), st.f32(name));
        }
        AdapterCheckpoints.load(adapters, modules, st.source());
        modules.forEach((name, m) -> m.resumeDropout(parseLong(st, name + DROPOUT_DRAWS)));
        return st;
    }

    /**
     * Restores the optimizer's buffers and step count.
     *
     * @param file      a file written by {@link #save}
     * @param optimizer receives them
     * @return the training step saved
     */
    public static long restore(Path file, Optimizer optimizer) {
        return parseLong(restoreOptimizer(SafeTensors.open(file), optimizer), STEP);
    }

    private static SafeTensors restoreOptimizer(SafeTensors st, Optimizer optimizer) {
        String kind = st.requireMetadata(OPTIMIZER);
        if (!kind.equals(optimizer.getClass().getSimpleName())) {
            throw new IllegalArgumentException(st.source() + ": saved by optimizer " + kind + ", not "
                    + optimizer.getClass().getSimpleName());
        }
        Map<String, Tensor> buffers = new LinkedHashMap<>();
        for (String name : st.names()) {
            if (!name.startsWith(MODEL_PREFIX)) buffers.put(name, st.f32(name));
        }
        try {
            optimizer.loadState(buffers, parseLong(st, "optimizer_steps"));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(st.source() + ": " + e.getMessage(), e);
        }
        return st;
    }

    /**
     * A whole-number metadata value.
     *
     * @param st  the file
     * @param key the metadata key
     * @return its value
     * @throws IllegalArgumentException naming the file and key when it is absent or not a number
     */
    public static long parseLong(SafeTensors st, String key) {
        String v = st.requireMetadata(key);
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(st.source() + ": metadata " + SafeText.quote(key) + " is not an integer: " + SafeText.quote(v) + "");
        }
    }

    /**
     * {@return the metadata value {@code key} of a resume point as a finite decimal number}
     *
     * @param st  the file
     * @param key the metadata key
     * @throws IllegalArgumentException naming the file and key when it is absent or not a finite number
     */
    public static double parseDouble(SafeTensors st, String key) {
        String v = st.requireMetadata(key);
        try {
            return StrictJson.decimal(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(st.source() + ": metadata " + SafeText.quote(key) + " is not a number: "
                    + SafeText.quote(v));
        }
    }
}
