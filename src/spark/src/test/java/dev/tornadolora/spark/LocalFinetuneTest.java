package dev.tornadolora.spark;

import dev.tornadolora.finetune.DataParallelLauncher;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code finetune} of a tiny Llama (QLoRA) on two barrier tasks in {@code local[2]} against the single-process
 * command with the same global batch (2 rows x 2 micro-batches; one micro-batch per replica): per-step losses
 * (log.json) within 1e-6 relative, the adapter file byte-identical, every replica check equal.
 */
class LocalFinetuneTest {
    @Test
    void twoReplicasMatchTheSingleProcessFinetune(@TempDir Path tmp) throws Exception {
        Path data = FinetuneFixture.data(tmp);
        Path solo = tmp.resolve("solo"), dp = tmp.resolve("dp");
        FinetuneFixture.runSingle(data, solo);

        SparkDataParallel.Result r;
        try (JavaSparkContext sc = new JavaSparkContext(SparkDataParallel.configure(
                new SparkConf().setMaster("local[2]").setAppName("finetune-test"), 2))) {
            r = SparkFinetune.run(sc, FinetuneFixture.job(data, dp), FinetuneFixture.DEVICE, FinetuneFixture.OPTIONS, 2, 5);
        }
        double[] expected = FinetuneFixture.losses(solo);
        // the CLI's finetune --spark reaches this module only through core's ServiceLoader
        assertEquals(SparkFinetune.class, DataParallelLauncher.find().getClass());
        assertEquals(20, expected.length);
        FinetuneFixture.assertLossesClose(expected, FinetuneFixture.losses(dp), 1e-6);
        FinetuneFixture.assertLossesClose(expected, r.writer().losses(), 1e-6);
        double worst = FinetuneFixture.assertAdaptersClose(solo, dp, 1e-6);
        FinetuneFixture.assertAdapterFilesIdentical(solo, dp);
        assertEquals(List.of(0L, 5L, 10L, 15L, 20L), r.writer().checks().stream().map(TaskReport.Check::step).toList());
        for (TaskReport.Check c : r.writer().checks()) assertEquals(c.checksums()[0], c.checksums()[1], "step " + c.step());
        System.out.printf("local[2] finetune: %d trainable floats, %d bytes sent per replica per step, %.1f ms per step,"
                + " in the all-reduce (waits for the slower share included) %.1f ms on rank 0 and %.1f on rank 1,"
                + " largest adapter difference %.3g%n", r.writer().trainableFloats(), r.writer().bytesSentPerStep(),
                r.writer().meanStepSeconds() * 1e3, r.reports().get(0).meanAllReduceSeconds() * 1e3,
                r.reports().get(1).meanAllReduceSeconds() * 1e3, worst);
    }
}
