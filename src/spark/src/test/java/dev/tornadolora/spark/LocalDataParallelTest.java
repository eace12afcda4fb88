package dev.tornadolora.spark;

import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.tensor.Tensor;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Two barrier tasks in {@code local[2]} against the single-process run of the same global batch. */
class LocalDataParallelTest {
    static JavaSparkContext sc;

    @BeforeAll
    static void start() {
        sc = new JavaSparkContext(SparkDataParallel.configure(new SparkConf().setMaster("local[2]").setAppName("dp-test"), 3));
    }

    @AfterAll
    static void stop() {
        if (sc != null) sc.close();
    }

    @Test
    void twoReplicasMatchOneProcess(@TempDir Path solo, @TempDir Path dp) {
        TaskReport single = ReplicaLoop.run(new MlpRun(solo.toString(), 20, 8, 5, 7).open(0, 1), Collective.solo(), 5, 0);
        SparkDataParallel.Result r = SparkDataParallel.run(sc, new MlpRun(dp.toString(), 20, 8, 5, 7), 8,
                new SparkDataParallel.Options(2, 5));
        assertEquals(2, r.reports().size());
        TaskReport w = r.writer();
        assertEquals(20, w.losses().length);
        for (int i = 0; i < 20; i++) {
            assertEquals(single.losses()[i], w.losses()[i], 1e-5 * Math.abs(single.losses()[i]), "step " + (i + 1));
        }
        assertEquals(5, w.checks().size(), "start (0), 5, 10, 15, 20");
        assertEquals(java.util.List.of(0L, 5L, 10L, 15L, 20L), w.checks().stream().map(TaskReport.Check::step).toList());
        for (TaskReport.Check c : w.checks()) assertEquals(c.checksums()[0], c.checksums()[1], "step " + c.step());
        assertArrayEqualsWithin(SafeTensors.open(solo.resolve(MlpRun.ADAPTERS)), SafeTensors.open(dp.resolve(MlpRun.ADAPTERS)), 1e-6);
        // the mesh's reduce-scatter + all-gather: 2·(N−1)/N of the fp32 gradient, plus two 12-byte headers and the stamp
        long gradient = 4L * w.trainableFloats();
        assertTrue(w.bytesSentPerStep() >= gradient + 24 + 8 && w.bytesSentPerStep() <= gradient + 24 + 64,
                w.bytesSentPerStep() + " bytes sent per step for " + gradient + " gradient bytes");
        assertEquals(w.bytesSentPerStep(), w.allReduceBytesReceived() / w.losses().length, "as many in as out");
        double worst = 0;
        for (int i = 0; i < 20; i++) worst = Math.max(worst, Math.abs(w.losses()[i] / single.losses()[i] - 1));
        System.out.printf("local[2]: %d trainable floats, %d bytes sent per task per step, worst loss rel. diff %.3g, %.1f ms per step (1 process: %.1f)%n",
                w.trainableFloats(), w.bytesSentPerStep(), worst, w.meanStepSeconds() * 1e3, single.meanStepSeconds() * 1e3);
    }

    @Test
    void aFailedTaskRestartsTheStageFromTheResumePoint(@TempDir Path solo, @TempDir Path dp) {
        ReplicaLoop.run(new MlpRun(solo.toString(), 20, 8, 5, 7).open(0, 1), Collective.solo(), 5, 0);
        SparkDataParallel.Result r = SparkDataParallel.run(sc, new MlpRun(dp.toString(), 20, 8, 5, 7, 0, 11, false), 8,
                new SparkDataParallel.Options(2, 5));
        assertEquals(1, r.writer().stageAttempt(), "the second attempt finished");
        assertEquals(10, r.writer().startStep(), "from the resume point of step 10");
        assertArrayEqualsWithin(SafeTensors.open(solo.resolve(MlpRun.ADAPTERS)), SafeTensors.open(dp.resolve(MlpRun.ADAPTERS)), 1e-6);
    }

    /** What the wrapped collectives of the test below saw fail, by rank (tasks are threads of this JVM in local mode). */
    static final java.util.Map<Integer, String> FAILURES = new java.util.concurrent.ConcurrentHashMap<>();

    @Test
    void aPeerKilledInTheMiddleOfAnAllReduceResumesFromTheResumePoint(@TempDir Path solo, @TempDir Path dp) {
        ReplicaLoop.run(new MlpRun(solo.toString(), 20, 8, 5, 7).open(0, 1), Collective.solo(), 5, 0);
        MlpRun run = new MlpRun(dp.toString(), 20, 8, 5, 7);
        FAILURES.clear();
        SparkDataParallel.Result r = SparkDataParallel.run(sc, 2, (collective, attempt) -> {
            Collective c = attempt == 0 ? new DiesInAllReduce((PeerMesh) collective, 12) : collective;
            try (Replica replica = run.open(collective.rank(), collective.size())) {
                return ReplicaLoop.run(replica, c, 5, attempt);
            }
        });
        // rank 1 died between step 12's reduce-scatter and all-gather; rank 0 lost it in the all-gather; the retried
        // stage resumed both from step 10 and ended with the uninterrupted adapters
        assertTrue(FAILURES.get(0).contains("rank 1 closed its connection during the all-gather"), FAILURES.toString());
        assertEquals(1, r.writer().stageAttempt(), "the second attempt finished");
        assertEquals(10, r.writer().startStep(), "from the resume point of step 10");
        assertEquals(10, r.writer().losses().length);
        assertArrayEqualsWithin(SafeTensors.open(solo.resolve(MlpRun.ADAPTERS)), SafeTensors.open(dp.resolve(MlpRun.ADAPTERS)), 1e-6);
    }

    /** The mesh, until all-reduce {@code n}: there rank 1 dies between the reduce-scatter and the all-gather. */
    record DiesInAllReduce(PeerMesh mesh, int n, int[] calls) implements Collective {
        DiesInAllReduce(PeerMesh mesh, int n) {
            this(mesh, n, new int[1]);
        }

        @Override public int rank() { return mesh.rank(); }
        @Override public int size() { return mesh.size(); }
        @Override public String[] allGather(String message) { return mesh.allGather(message); }

        @Override
        public Reduced sumInRankOrder(float[] values, byte[] stamp) {
            if (++calls[0] == n && rank() == 1) mesh.afterReduceScatter = mesh::kill;
            try {
                return mesh.sumInRankOrder(values, stamp);
            } catch (RuntimeException e) {
                FAILURES.put(rank(), e.getMessage());
                throw e;
            }
        }
    }

    @Test
    void boundedAttemptsThenAClearError(@TempDir Path dp) {
        SparkDataParallel.RunFailedException e = assertThrows(SparkDataParallel.RunFailedException.class, () ->
                SparkDataParallel.run(sc, new MlpRun(dp.toString(), 20, 8, 5, 7, 0, 7, true), 8,
                        new SparkDataParallel.Options(2, 5)));
        assertTrue(e.getMessage().contains("3 stage attempts") && e.getMessage().contains("--resume"), e.getMessage());
        assertTrue(e.getMessage().contains("injected failure at step 7"), e.getMessage());
    }

    static void assertArrayEqualsWithin(SafeTensors expected, SafeTensors actual, double tol) {
        assertEquals(expected.names(), actual.names());
        for (String name : expected.names()) {
            Tensor e = expected.f32(name), a = actual.f32(name);
            for (int i = 0; i < e.numel(); i++) {
                assertEquals(e.data()[i], a.data()[i], tol, name + "[" + i + "]");
            }
        }
    }

    @Test
    void unevenSplitIsRefused(@TempDir Path dp) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () ->
                SparkDataParallel.run(sc, new MlpRun(dp.toString(), 2, 6, 5, 7), 6, new SparkDataParallel.Options(4, 5)));
        assertTrue(e.getMessage().contains("does not split evenly over 4 workers"), e.getMessage());
    }
}
