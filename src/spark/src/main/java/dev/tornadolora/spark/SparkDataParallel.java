package dev.tornadolora.spark;

import org.apache.spark.BarrierTaskContext;
import org.apache.spark.HashPartitioner;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.rdd.RDD;
import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;
import scala.runtime.AbstractFunction1;

import java.io.Serializable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Data-parallel fine-tuning as one Spark barrier stage: N tasks start together, each builds a full replica
 * ({@link ReplicaFactory}) and runs {@link ReplicaLoop} with a {@link PeerMesh} as the collective: the tasks
 * exchange their addresses once through {@link BarrierTaskContext#allGather} and sum every step's gradients
 * between themselves, without the driver. Usable from any Spark application:
 * <pre>{@code
 *   SparkConf conf = SparkDataParallel.configure(new SparkConf().setMaster(master).setAppName("finetune"), 4);
 *   try (JavaSparkContext sc = new JavaSparkContext(conf)) {
 *       SparkDataParallel.Result r = SparkDataParallel.run(sc, factory, globalBatch, new SparkDataParallel.Options(2, 5));
 *   }
 * }</pre>
 *
 * <p>Faults: when a task or its executor dies, Spark fails the whole barrier stage and resubmits it (at most
 * {@code spark.stage.maxConsecutiveAttempts} attempts); the new tasks open their replicas from the newest resume
 * point, so training continues without anyone's action. The barrier stage is a shuffle-map stage on purpose:
 * Spark resubmits those, while a failed barrier <em>result</em> stage aborts the job.
 */
public final class SparkDataParallel {
    /** Stage attempts when the caller does not say: the first run plus three retries (Spark's default 4). */
    public static final int DEFAULT_STAGE_ATTEMPTS = 4;
    /** {@code mesh} (default: {@link PeerMesh}) or {@code driver} (every step through the driver's all-gather). */
    public static final String COLLECTIVE = "spark.tornadolora.collective";
    /** {@link PeerMesh.Settings#connectTimeout()}, a Spark time string (default 120s). */
    public static final String CONNECT_TIMEOUT = "spark.tornadolora.mesh.connectTimeout";
    /** {@link PeerMesh.Settings#stepTimeout()}, a Spark time string (default 600s). */
    public static final String STEP_TIMEOUT = "spark.tornadolora.mesh.stepTimeout";

    private SparkDataParallel() {}

    /** @param workers barrier tasks (replicas); @param checkEvery steps between replica checksum checks */
    public record Options(int workers, int checkEvery) implements Serializable {
        public Options {
            if (workers < 1) throw new IllegalArgumentException("--workers must be at least 1, got " + workers);
            if (checkEvery < 1) throw new IllegalArgumentException("the checksum interval must be at least 1, got " + checkEvery);
        }
    }

    /** The reports of the successful attempt's tasks, by rank. */
    public record Result(List<TaskReport> reports) {
        public TaskReport writer() {
            return reports.get(0);
        }
    }

    /** Thrown when the stage failed more often than allowed; the newest resume point stays on disk. */
    public static final class RunFailedException extends RuntimeException {
        public RunFailedException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * The settings the run relies on, added to {@code conf} (a context reads them when it starts): bounded stage
     * attempts, a quick re-check for free slots while a lost executor is replaced, and, unless already set,
     * loopback addresses and no web UI.
     */
    public static SparkConf configure(SparkConf conf, int maxStageAttempts) {
        if (maxStageAttempts < 1) throw new IllegalArgumentException("stage attempts must be at least 1, got " + maxStageAttempts);
        conf.set("spark.stage.maxConsecutiveAttempts", Integer.toString(maxStageAttempts));
        conf.setIfMissing("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "1s");
        conf.setIfMissing("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", "180");
        conf.setIfMissing("spark.driver.host", "127.0.0.1");
        conf.setIfMissing("spark.driver.bindAddress", "127.0.0.1");
        conf.setIfMissing("spark.ui.enabled", "false");
        // Spark's SerializationDebugger needs sun.security.action, gone in JDK 24+: it would turn a plain
        // NotSerializableException into a dead task thread (and, in local mode, a hung job).
        conf.setIfMissing("spark.serializer.extraDebugInfo", "false");
        return conf;
    }

    /** What each barrier task runs, given its collective and the stage attempt (0 first, then retries). */
    @FunctionalInterface
    public interface TaskBody extends Serializable {
        TaskReport run(Collective collective, int stageAttempt) throws Exception;
    }

    /** Runs a {@link ReplicaFactory}'s replicas to the end (retries included); the global batch must split evenly. */
    public static Result run(JavaSparkContext sc, ReplicaFactory factory, int globalBatch, Options options) {
        Shares.perTask(globalBatch, options.workers());
        int checkEvery = options.checkEvery();
        return run(sc, options.workers(), (collective, attempt) -> {
            try (Replica replica = factory.open(collective.rank(), collective.size())) {
                return ReplicaLoop.run(replica, collective, checkEvery, attempt);
            }
        });
    }

    /**
     * Runs {@code body} in {@code workers} barrier tasks; their reports by rank. The collective is a {@link PeerMesh}
     * unless {@value #COLLECTIVE} says {@code driver}; its timeouts come from {@value #CONNECT_TIMEOUT} and
     * {@value #STEP_TIMEOUT} in the context's configuration.
     */
    public static Result run(JavaSparkContext sc, int workers, TaskBody body) {
        SparkConf conf = sc.getConf();
        String kind = conf.get(COLLECTIVE, "mesh");
        if (!kind.equals("mesh") && !kind.equals("driver")) {
            throw new IllegalArgumentException(COLLECTIVE + " must be mesh or driver, got " + kind);
        }
        PeerMesh.Settings mesh = kind.equals("driver") ? null : new PeerMesh.Settings(
                Duration.ofMillis(conf.getTimeAsMs(CONNECT_TIMEOUT, PeerMesh.Settings.DEFAULT.connectTimeout().toMillis() + "ms")),
                Duration.ofMillis(conf.getTimeAsMs(STEP_TIMEOUT, PeerMesh.Settings.DEFAULT.stepTimeout().toMillis() + "ms")));
        RDD<Integer> ranks = sc.parallelize(IntStream.range(0, workers).boxed().toList(), workers).rdd();
        ClassTag<Tuple2<Integer, TaskReport>> pairTag = ClassTag$.MODULE$.apply(Tuple2.class);
        RDD<Tuple2<Integer, TaskReport>> trained = ranks.barrier().mapPartitions(new BarrierTask(body, mesh), false, pairTag);
        List<TaskReport> reports;
        try {
            reports = new ArrayList<>(JavaPairRDD.fromRDD(trained, ClassTag$.MODULE$.apply(Integer.class),
                            ClassTag$.MODULE$.<TaskReport>apply(TaskReport.class))
                    .partitionBy(new HashPartitioner(1)).values().collect());
        } catch (Exception e) {  // Scala throws SparkException without declaring it
            String attempts = sc.getConf().get("spark.stage.maxConsecutiveAttempts", Integer.toString(DEFAULT_STAGE_ATTEMPTS));
            throw new RunFailedException("the data-parallel run failed (" + attempts + " stage attempts allowed): "
                    + rootMessage(e) + "; the newest resume point is kept: rerun with --resume to continue", e);
        }
        reports.sort(Comparator.comparingInt(TaskReport::rank));
        return new Result(List.copyOf(reports));
    }

    /** The first line of Spark's message and, from the task's failure text within it, the task's own exception. */
    static String rootMessage(Throwable e) {
        String m = e.getMessage();
        if (m == null) return e.getClass().getName();
        String[] lines = m.split("\n");
        for (int i = 1; i < lines.length; i++) {
            if (lines[i].matches("^[\\w.$]+(Exception|Error)(: .*)?$")) return lines[0] + " (" + lines[i] + ")";
        }
        return lines[0];
    }

    /**
     * A barrier task: its collective (the mesh, listening on the executor's host, or the driver's), then the body;
     * one (0, report) pair out, for the shuffle. When the body fails, the mesh tells the peers why as it closes.
     */
    static final class BarrierTask extends AbstractFunction1<scala.collection.Iterator<Integer>,
            scala.collection.Iterator<Tuple2<Integer, TaskReport>>> implements Serializable {
        private final TaskBody body;
        private final PeerMesh.Settings mesh;

        BarrierTask(TaskBody body, PeerMesh.Settings mesh) {
            this.body = body;
            this.mesh = mesh;
        }

        @Override
        public scala.collection.Iterator<Tuple2<Integer, TaskReport>> apply(scala.collection.Iterator<Integer> ignored) {
            BarrierTaskContext ctx = BarrierTaskContext.get();
            Collective driver = Collective.barrier(ctx);
            PeerMesh peers = mesh == null ? null
                    : new PeerMesh(driver, executorHost(ctx), ctx.stageAttemptNumber(), mesh, ctx::isInterrupted);
            TaskReport report;
            try {
                report = body.run(peers == null ? driver : peers, ctx.stageAttemptNumber());
            } catch (Exception e) {
                if (peers != null) peers.close(e);
                if (e instanceof RuntimeException r) throw r;
                throw new IllegalStateException(e.getMessage(), e);
            } catch (Error e) {
                if (peers != null) peers.close(e);
                throw e;
            }
            if (peers != null) peers.close();
            return CollectionConverters.asScala(List.of(new Tuple2<>(0, report)).iterator());
        }

        /** The host part of the executor's address as the scheduler knows it (host:port), where peers reach it. */
        static String executorHost(BarrierTaskContext ctx) {
            String a = ctx.getTaskInfos()[ctx.partitionId()].address();
            int colon = a.lastIndexOf(':');
            return colon > 0 ? a.substring(0, colon) : a;
        }
    }
}
