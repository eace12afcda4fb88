package dev.tornadolora.spark;

import dev.tornadolora.cli.DataParallelLauncher;
import dev.tornadolora.cli.FinetuneReplica;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code finetune} data-parallel on Spark: {@code workers} barrier tasks, each a {@link FinetuneReplica} of the
 * same command with {@link FinetuneStepExecutor} computing its steps; rank 0 writes the outputs exactly as the
 * single-process command does. A retried stage (a lost task or executor) resumes every replica from the newest
 * resume point in --output, which therefore must be on storage every executor sees (as the data and model).
 *
 * <p>From a Spark application: {@code SparkFinetune.run(sc, List.of("--model", dir, "--data", file, "--output",
 * out, "--steps", "100", "--save-every", "10"), 4, 10)}. From the command line: {@code ./tornado-lora finetune
 * --spark MASTER --workers N ...}, which reaches {@link #launch} through {@link DataParallelLauncher}.
 */
public final class SparkFinetune implements DataParallelLauncher {

    /**
     * Runs {@code finetuneArgs} (the {@code finetune} command's options) in {@code workers} replicas on {@code sc};
     * returns the replicas' reports (rank 0's has the losses of the steps of the successful attempt).
     */
    public static SparkDataParallel.Result run(JavaSparkContext sc, List<String> finetuneArgs, int workers, int checkEvery) {
        List<String> args = new ArrayList<>(finetuneArgs);
        if (!args.contains("--quiet")) args.add("--quiet");  // no progress bar in executors' logs
        String[] a = FinetuneReplica.absolutePaths(args.toArray(String[]::new));
        FinetuneReplica.validate(a);
        return SparkDataParallel.run(sc, workers, (collective, attempt) -> {
            FinetuneStepExecutor executor = new FinetuneStepExecutor(collective, checkEvery);
            boolean writer = collective.rank() == 0;
            PrintWriter out = new PrintWriter(writer ? new OutputStreamWriter(System.out, StandardCharsets.UTF_8)
                    : Writer.nullWriter(), true);
            FinetuneReplica.run(a, executor, writer, attempt > 0, out);
            out.flush();
            TaskReport r = executor.report(attempt);
            return r != null ? r : new TaskReport(collective.rank(), collective.size(), attempt, -1, new double[0],
                    List.of(), 0, 0, 0, 0);
        });
    }

    @Override
    public int launch(List<String> finetuneArgs, String master, int workers, int rowsPerStep, int checkEvery,
                      PrintWriter out) {
        Shares.perTask(rowsPerStep, workers);
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
            r = run(sc, finetuneArgs, workers, checkEvery);
        }
        TaskReport w = r.writer();
        out.printf(Locale.ROOT, "spark %s: %d replicas, %d trainable floats; all-reduce %d bytes sent and %d received"
                        + " per replica per step; %.3f s per step; %d replica checks passed%s; %.1f s in all%n",
                master, w.worldSize(), w.trainableFloats(), w.bytesSentPerStep(),
                w.losses().length == 0 ? 0 : w.allReduceBytesReceived() / w.losses().length, w.meanStepSeconds(),
                w.checks().size(), w.stageAttempt() > 0 ? " (stage attempt " + w.stageAttempt() + ", resumed at step "
                        + w.startStep() + ")" : "", (System.nanoTime() - t0) / 1e9);
        out.flush();
        return 0;
    }
}
