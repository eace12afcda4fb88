package dev.tornadolora.spark;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.device.Device;
import dev.tornadolora.device.DeviceOptions;
import dev.tornadolora.finetune.DataParallelLauncher;
import dev.tornadolora.finetune.FinetuneJob;
import dev.tornadolora.finetune.FinetuneListener;
import dev.tornadolora.finetune.FinetuneRun;
import dev.tornadolora.io.RunFiles;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.train.TrainingLog;
import dev.tornadolora.train.TrainingState;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * A {@link FinetuneJob} data-parallel on Spark: {@code workers} barrier tasks, each a replica of the same job
 * ({@link FinetuneRun#run} with {@link FinetuneStepExecutor} computing its steps); rank 0 writes the outputs
 * exactly as a single-process run does. The driver ships the job as JSON ({@link FinetuneJob#toJson}, paths
 * absolute), so executors parse no command line. A retried stage (a lost task or executor) resumes every replica
 * from the newest resume point in the output folder, which therefore must be on storage every executor sees (as
 * the data and model).
 *
 * <p>From a Spark application: {@code SparkFinetune.run(sc, job, "jvm", DeviceOptions.defaults(), 4, 10)}. From the command line:
 * {@code ./tornado-lora finetune --spark MASTER --workers N ...}, which reaches {@link #launch} through
 * {@link DataParallelLauncher}.
 */
public final class SparkFinetune implements DataParallelLauncher {

    /**
     * Runs {@code job} in {@code workers} replicas on {@code sc}, each on the device {@code device} opened with
     * {@code options} on its machine; returns the replicas' reports (rank 0's has the losses of the steps of the
     * successful attempt).
     */
    public static SparkDataParallel.Result run(JavaSparkContext sc, FinetuneJob job, String device,
                                               DeviceOptions options, int workers, int checkEvery) {
        Shares.perTask(job.batching().batch() * job.batching().gradAccum(), workers);
        // What would make every replica (and every retry) fail the same way is refused here, on the driver.
        Path config = job.model().dir().resolve("config.json");
        if (!Files.isRegularFile(config)) throw new IllegalArgumentException(config + ": no such file");
        if (!Files.isRegularFile(job.data().train())) {
            throw new IllegalArgumentException(job.data().train() + ": no such file");
        }
        String json = job.toJson(), deviceOptions = json(options);
        return SparkDataParallel.run(sc, workers, (collective, attempt) -> {
            FinetuneJob mine = FinetuneJob.fromJson(json);
            if (attempt > 0) {  // a retried stage continues from the newest resume point
                FinetuneJob.Checkpoints c = mine.checkpoints();
                mine = mine.withCheckpoints(new FinetuneJob.Checkpoints(c.evalEvery(), c.saveEvery(), true));
            }
            FinetuneStepExecutor executor = new FinetuneStepExecutor(collective, checkEvery);
            boolean writer = collective.rank() == 0;
            try (Device d = Device.open(device, OPTIONS_JSON.readValue(deviceOptions, DeviceOptions.class))) {
                FinetuneRun.run(mine, d, executor, writer, writer ? new Lines(System.out) : FinetuneListener.NONE);
            }
            TaskReport r = executor.report(attempt);
            return r != null ? r : new TaskReport(collective.rank(), collective.size(), attempt, -1, new double[0],
                    List.of(), 0, 0, 0, 0);
        });
    }

    private static final ObjectMapper OPTIONS_JSON = new ObjectMapper();

    /** The device options as the executors receive them. */
    private static String json(DeviceOptions options) {
        try {
            return OPTIONS_JSON.writeValueAsString(options);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("device options do not serialize: " + e.getOriginalMessage(), e);
        }
    }

    /** Rank 0's lines, on its executor's standard output. */
    private record Lines(PrintStream out) implements FinetuneListener {
        @Override
        public void info(String line) {
            out.println(line);
            out.flush();
        }
    }

    @Override
    public FinetuneRun.Result launch(FinetuneJob job, String device, DeviceOptions options, String master,
                                     int workers, int checkEvery, FinetuneListener listener) throws Exception {
        Shares.perTask(job.batching().batch() * job.batching().gradAccum(), workers);
        SparkConf conf = SparkDataParallel.configure(new SparkConf().setMaster(master).setAppName("tornado-lora finetune"),
                SparkDataParallel.DEFAULT_STAGE_ATTEMPTS);
        if (!master.startsWith("local")) {
            // One machine or identical installs: executors load this JVM's class path (spark-submit users pass --jars).
            conf.setIfMissing("spark.executor.extraClassPath", System.getProperty("java.class.path"));
            conf.setIfMissing("spark.cores.max", Integer.toString(workers));
            conf.setIfMissing("spark.executor.cores", "1");
        }
        long t0 = System.nanoTime();
        SparkDataParallel.Result r;
        try (JavaSparkContext sc = new JavaSparkContext(conf)) {
            sc.setLogLevel("WARN");
            r = run(sc, job, device, options, workers, checkEvery);
        }
        TaskReport w = r.writer();
        listener.info(String.format(Locale.ROOT, "spark %s: %d replicas, %d trainable floats; all-reduce %d bytes sent"
                        + " and %d received per replica per step; %.3f s per step; %d replica checks passed%s; %.1f s"
                        + " in all", master, w.worldSize(), w.trainableFloats(), w.bytesSentPerStep(),
                w.losses().length == 0 ? 0 : w.allReduceBytesReceived() / w.losses().length, w.meanStepSeconds(),
                w.checks().size(), w.stageAttempt() > 0 ? " (stage attempt " + w.stageAttempt() + ", resumed at step "
                        + w.startStep() + ")" : "", (System.nanoTime() - t0) / 1e9));
        return result(job.outputs().dir(), listener);
    }

    /** The run's result from what rank 0 wrote; the listener's last save (the CLI's loss.png) happens here. */
    private static FinetuneRun.Result result(Path output, FinetuneListener listener) throws Exception {
        long step = TrainingState.parseLong(SafeTensors.open(output.resolve(RunFiles.STATE)), TrainingState.STEP);
        TrainingLog log = TrainingLog.read(output.resolve(RunFiles.LOG), step);
        if (!log.steps().isEmpty()) listener.saved(output, log, true);
        var s = log.summary();
        return new FinetuneRun.Result(s.path("initial_eval_loss").asDouble(Double.NaN),
                s.path("final_eval_loss").asDouble(Double.NaN), s.path("wall_s").asDouble(),
                s.path("tokens").asLong(), s.path("peak_heap_mib").asLong(), output, log);
    }
}
