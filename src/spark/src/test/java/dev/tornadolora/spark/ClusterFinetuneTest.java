package dev.tornadolora.spark;

import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.train.TrainingState;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code finetune} of a tiny Llama (QLoRA) on a real standalone cluster: a Master and two Workers, each a JVM,
 * started by {@code scripts/spark-cluster.sh} ({@code .ci/run} runs this test through it). Skips unless
 * {@code -Dspark.cluster.url=spark://127.0.0.1:17077} names a running cluster.
 */
class ClusterFinetuneTest {
    static final String URL = System.getProperty("spark.cluster.url", "");
    static JavaSparkContext sc;

    @BeforeAll
    static void start() {
        if (URL.isBlank()) return;
        String url = URL;
        SparkConf conf = SparkDataParallel.configure(new SparkConf().setMaster(url).setAppName("finetune-cluster-test"), 4)
                .set("spark.executor.memory", "1g").set("spark.executor.cores", "1").set("spark.cores.max", "2")
                // one machine: the executors read this JVM's class path (test classes included) from disk
                .set("spark.executor.extraClassPath", System.getProperty("java.class.path"));
        sc = new JavaSparkContext(conf);
    }

    @AfterAll
    static void stop() {
        if (sc != null) sc.close();
    }

    @Test
    void twoWorkersMatchOneProcessAndSurviveAKilledExecutor(@TempDir Path tmp) throws Exception {
        Assumptions.assumeTrue(sc != null, "SKIPPED: no Spark cluster (start one with scripts/spark-cluster.sh start"
                + " and pass -Dspark.cluster.url=spark://127.0.0.1:17077; .ci/run does both)");
        Path data = FinetuneFixture.data(tmp);
        Path solo = tmp.resolve("solo"), dp = tmp.resolve("dp"), killed = tmp.resolve("killed");
        FinetuneFixture.runSingle(data, solo);
        double[] expected = FinetuneFixture.losses(solo);

        SparkDataParallel.Result r = SparkFinetune.run(sc, FinetuneFixture.job(data, dp), FinetuneFixture.DEVICE, FinetuneFixture.OPTIONS, 2, 5);
        FinetuneFixture.assertLossesClose(expected, FinetuneFixture.losses(dp), 1e-6);
        FinetuneFixture.assertLossesClose(expected, r.writer().losses(), 1e-6);
        FinetuneFixture.assertAdaptersClose(solo, dp, 1e-6);
        FinetuneFixture.assertAdapterFilesIdentical(solo, dp);
        assertEquals(List.of(0L, 5L, 10L, 15L, 20L), r.writer().checks().stream().map(TaskReport.Check::step).toList());
        for (TaskReport.Check c : r.writer().checks()) assertEquals(c.checksums()[0], c.checksums()[1], "step " + c.step());
        System.out.printf("cluster: uninterrupted run, %.1f ms per step, in the all-reduce (waits for the slower share"
                + " included) %.1f ms on rank 0 and %.1f on rank 1, %d bytes sent per replica per step%n",
                r.writer().meanStepSeconds() * 1e3, r.reports().get(0).meanAllReduceSeconds() * 1e3,
                r.reports().get(1).meanAllReduceSeconds() * 1e3, r.writer().bytesSentPerStep());

        // the same run with one executor process killed once the resume point of step 10 is written
        String appId = sc.sc().applicationId();
        CompletableFuture<Long> kill = CompletableFuture.supplyAsync(() -> killAnExecutorAfterStep(killed, 10, appId));
        SparkDataParallel.Result k = SparkFinetune.run(sc, FinetuneFixture.job(data, killed), FinetuneFixture.DEVICE, FinetuneFixture.OPTIONS, 2, 5);
        long pid = kill.get(10, TimeUnit.SECONDS);
        assertTrue(k.writer().stageAttempt() >= 1, "the barrier stage was retried");
        assertTrue(k.writer().startStep() >= 10, "the retry resumed at or after step 10, not at 0: " + k.writer().startStep());
        double worst = FinetuneFixture.assertAdaptersClose(dp, killed, 1e-6);
        FinetuneFixture.assertLossesClose(expected, FinetuneFixture.losses(killed), 1e-6);
        FinetuneFixture.assertAdapterFilesIdentical(solo, killed);
        System.out.printf("cluster: executor pid %d killed after step 10; attempt %d resumed at step %d; largest"
                + " adapter difference to the uninterrupted run %.3g%n", pid, k.writer().stageAttempt(),
                k.writer().startStep(), worst);
    }

    /** Waits for the run's resume point to reach {@code step}, then SIGKILLs one executor process of {@code appId}. */
    static long killAnExecutorAfterStep(Path out, long step, String appId) {
        Path state = out.resolve("training_state.safetensors");
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
        try {
            while (true) {
                if (Files.exists(state) && TrainingState.parseLong(SafeTensors.open(state), TrainingState.STEP) >= step) break;
                if (System.nanoTime() > deadline) throw new IllegalStateException("step " + step + " never came");
                Thread.sleep(50);
            }
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
        // the whole command line from /proc (ProcessHandle.Info cuts long ones off)
        List<ProcessHandle> executors = ProcessHandle.allProcesses().filter(p -> {
            try {
                String c = new String(Files.readAllBytes(Path.of("/proc", Long.toString(p.pid()), "cmdline")));
                return c.contains("CoarseGrainedExecutorBackend") && c.contains(appId);
            } catch (java.io.IOException e) {
                return false;  // gone, or not ours to read
            }
        }).sorted(Comparator.comparingLong(ProcessHandle::pid)).toList();
        assertFalse(executors.isEmpty(), "no executor process of " + appId + " found");
        ProcessHandle victim = executors.get(executors.size() - 1);
        victim.destroyForcibly();
        return victim.pid();
    }
}
