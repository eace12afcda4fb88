package dev.tornadolora.spark;

import dev.tornadolora.device.DeviceOptions;
import dev.tornadolora.device.Device;
import dev.tornadolora.io.AdapterCheckpoints;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.train.AdamW;
import dev.tornadolora.train.CosineWithWarmup;
import dev.tornadolora.train.GradClip;
import dev.tornadolora.train.LrScheduler;
import dev.tornadolora.train.SyntheticTask;
import dev.tornadolora.train.TrainingState;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A small QLoRA run for the engine's tests, independent of the Llama model: the synthetic teacher/student MLP
 * (NF4 bases, LoRA on every layer), MSE over the whole global batch, AdamW with cosine warm-up and clipping,
 * a resume point every {@code saveEvery} steps in {@code out}. {@code pauseMillis} slows each step so a test
 * can kill an executor mid-run; rank 1 throws at step {@code failAtStep}, once (a marker file remembers) or in
 * every attempt.
 */
record MlpRun(String out, long steps, int globalBatch, int saveEvery, long seed, long pauseMillis,
              long failAtStep, boolean failEveryAttempt) implements ReplicaFactory {
    static final String STATE = "resume.safetensors";
    static final String ADAPTERS = "adapters.safetensors";
    static final String PROGRESS = "progress";

    MlpRun(String out, long steps, int globalBatch, int saveEvery, long seed) {
        this(out, steps, globalBatch, saveEvery, seed, 0, -1, false);
    }

    @Override
    public Replica open(int rank, int worldSize) {
        return new MlpReplica(this, rank);
    }

    static final class MlpReplica implements Replica {
        private final MlpRun run;
        private final int rank;
        private final SyntheticTask task;
        private final AdamW optimizer;
        private final LrScheduler scheduler;
        private final List<Parameter> params;
        private final Map<String, LoRALinear> modules;
        private final long completed;

        MlpReplica(MlpRun run, int rank) {
            this.run = run;
            this.rank = rank;
            this.task = new SyntheticTask(new SyntheticTask.Config(new int[] {32, 32, 16}, 4, 8f, 0f, true, 16, 32,
                    2, 0.5, "relu", run.seed()), Device.open("jvm", DeviceOptions.defaults().withThreads(1)));
            this.modules = task.student().loraModules();
            this.params = task.student().parameters();
            this.optimizer = new AdamW(params, 5e-3);
            CosineWithWarmup schedule = new CosineWithWarmup(3, run.steps());
            Path state = Path.of(run.out(), STATE);
            if (Files.exists(state)) {
                SafeTensors st = TrainingState.resume(state, optimizer, modules);
                this.completed = TrainingState.parseLong(st, TrainingState.STEP);
                this.scheduler = new LrScheduler(optimizer, schedule, Double.parseDouble(st.requireMetadata(TrainingState.BASE_LR)),
                        TrainingState.parseLong(st, TrainingState.SCHEDULER_EPOCH));
            } else {
                this.completed = 0;
                this.scheduler = new LrScheduler(optimizer, schedule);
            }
        }

        @Override public long completedSteps() { return completed; }
        @Override public long totalSteps() { return run.steps(); }
        @Override public int globalBatch() { return run.globalBatch(); }
        @Override public List<Parameter> trainableParameters() { return params; }

        @Override
        public double shareGradients(long step, int from, int to) {
            if (step == run.failAtStep() && rank == 1) {
                try {
                    if (run.failEveryAttempt()) throw new IllegalStateException("injected failure at step " + step);
                    Files.createFile(Path.of(run.out(), "failed-once"));
                    throw new IllegalStateException("injected failure at step " + step);
                } catch (java.nio.file.FileAlreadyExistsException e) {
                    // failed before: run on
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
            optimizer.zeroGrad();
            Tensor all = task.inputs(step, run.globalBatch());
            int in = all.dim(-1);
            float[] rows = java.util.Arrays.copyOfRange(all.data(), from * in, to * in);
            Tensor x = Tensor.of(rows, to - from, in);
            Tensor y = task.student().forward(x), t = task.targets(x);
            float[] p = y.data(), q = t.data(), g = new float[p.length];
            long n = (long) run.globalBatch() * y.dim(-1);
            float scale = 2f / n;
            double sum = 0;
            for (int i = 0; i < p.length; i++) {
                float d = p[i] - q[i];
                sum += (double) d * d;
                g[i] = scale * d;
            }
            task.student().backward(new Tensor(y.shape(), g));
            pause();
            return sum / n;
        }

        @Override
        public void apply(long step, double loss, boolean writer) {
            GradClip.clipGradNorm(params, 1.0);
            optimizer.step();
            scheduler.step();
            if (!writer) return;
            try {
                if (step % run.saveEvery() == 0) {
                    TrainingState.save(Path.of(run.out(), STATE), optimizer, scheduler, step, Map.of(), modules);
                }
                Files.writeString(Path.of(run.out(), PROGRESS), Long.toString(step));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        @Override
        public void finish(boolean writer) {
            if (!writer) return;
            SafeTensorsWriter w = new SafeTensorsWriter();
            AdapterCheckpoints.stateDict(modules).forEach(w::f32);
            try {
                w.write(Path.of(run.out(), ADAPTERS));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        private void pause() {
            if (run.pauseMillis() <= 0) return;
            try {
                Thread.sleep(run.pauseMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            }
        }

        @Override
        public void close() {}
    }
}
