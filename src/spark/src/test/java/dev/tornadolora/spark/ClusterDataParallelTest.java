package dev.tornadolora.spark;

import dev.tornadolora.io.SafeTensors;
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
 * The data-parallel run on a real standalone cluster (a Master and two Workers, each a JVM, started by
 * {@code scripts/spark-cluster.sh}; {@code .ci/run} runs this test through it). Skips unless
 * {@code -Dspark.cluster.url=spark://127.0.0.1:17077} names a running cluster.
 */
class ClusterDataParallelTest {
    static JavaSparkContext sc;

    @BeforeAll
    static void start() {
        String url = System.getProperty("spark.cluster.url", "");
        Assumptions.assumeTrue(!url.isBlank(), "SKIPPED: no Spark cluster (start one with scripts/spark-cluster.sh start"
                + " and pass -Dspark.cluster.url=spark://127.0.0.1:17077; .ci/run does both)");
        SparkConf conf = SparkDataParallel.configure(new SparkConf().setMaster(url).setAppName("dp-cluster-test"), 4)
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
    void twoWorkersMatchOneProcessAndSurviveALostExecutor(@TempDir Path solo, @TempDir Path dp, @TempDir Path killed)
            throws Exception {
        TaskReport single = ReplicaLoop.run(new MlpRun(solo.toString(), 20, 8, 5, 7).open(0, 1), Collective.solo(), 5, 0);

        SparkDataParallel.Result r = SparkDataParallel.run(sc, new MlpRun(dp.toString(), 20, 8, 5, 7), 8,
                new SparkDataParallel.Options(2, 5));
        TaskReport w = r.writer();
        assertEquals(20, w.losses().length);
        for (int i = 0; i < 20; i++) {
            assertEquals(single.losses()[i], w.losses()[i], 1e-5 * Math.abs(single.losses()[i]), "step " + (i + 1));
        }
        for (TaskReport.Check c : w.checks()) assertEquals(c.checksums()[0], c.checksums()[1], "step " + c.step());
        LocalDataParallelTest.assertArrayEqualsWithin(SafeTensors.open(solo.resolve(MlpRun.ADAPTERS)),
                SafeTensors.open(dp.resolve(MlpRun.ADAPTERS)), 1e-6);
        System.out.printf("cluster: uninterrupted run, %.1f ms per step%n", w.meanStepSeconds() * 1e3);

        // the same run, slowed down, with one executor process killed once step 10 is done
        String appId = sc.sc().applicationId();
        CompletableFuture<Long> kill = CompletableFuture.supplyAsync(() -> killAnExecutorAfterStep(killed, 10, appId));
        SparkDataParallel.Result k = SparkDataParallel.run(sc, new MlpRun(killed.toString(), 20, 8, 5, 7, 300, -1, false),
                8, new SparkDataParallel.Options(2, 5));
        long pid = kill.get(10, TimeUnit.SECONDS);
        assertTrue(pid > 0, "an executor was killed");
        assertTrue(k.writer().stageAttempt() >= 1, "the barrier stage was retried");
        assertTrue(k.writer().startStep() >= 10, "the retry started from a resume point at or after step 10, not from 0: "
                + k.writer().startStep());
        LocalDataParallelTest.assertArrayEqualsWithin(SafeTensors.open(dp.resolve(MlpRun.ADAPTERS)),
                SafeTensors.open(killed.resolve(MlpRun.ADAPTERS)), 1e-6);
        System.out.printf("cluster: executor pid %d killed after step 10; attempt %d resumed at step %d%n",
                pid, k.writer().stageAttempt(), k.writer().startStep());
    }

    /** Waits for the run's progress file to reach {@code step}, then SIGKILLs one executor of {@code appId}. */
    static long killAnExecutorAfterStep(Path out, long step, String appId) {
        Path progress = out.resolve(MlpRun.PROGRESS);
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        try {
            while (System.nanoTime() < deadline) {
                if (Files.exists(progress) && Long.parseLong(Files.readString(progress).trim()) >= step) break;
                Thread.sleep(50);
            }
        } catch (Exception e) {
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
