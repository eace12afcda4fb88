package dev.tornadolora.spark;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tornadolora.device.Device;
import dev.tornadolora.device.DeviceOptions;
import dev.tornadolora.finetune.FinetuneJob;
import dev.tornadolora.finetune.FinetuneListener;
import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.llama.TokenTensors;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.train.TrainingLog;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A tiny QLoRA fine-tune of the py oracle's 2-layer Llama fixture (hidden 128, vocab 128) on seeded random
 * pre-tokenized rows, and the comparisons the data-parallel tests make on its outputs.
 */
final class FinetuneFixture {
    static final Path MODEL = Path.of("../core/src/test/resources/golden/llama/qlora_mha/model").toAbsolutePath().normalize();

    private FinetuneFixture() {}

    /** 32 rows of 16 seeded random token ids below the fixture's vocabulary. */
    static Path data(Path dir) throws IOException {
        int rows = 32, seq = 16;
        int[] ids = new int[rows * seq];
        SplittableRandom rng = new SplittableRandom(11);
        for (int i = 0; i < ids.length; i++) ids[i] = rng.nextInt(128);
        Path file = dir.resolve("train.safetensors");
        new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {rows, seq}, TokenTensors.i64(ids)).write(file);
        return file;
    }

    /** A 20-step QLoRA job, global batch 2 x 2, a resume point every 5 steps (on the device "jvm"). */
    static FinetuneJob job(Path data, Path out) {
        return FinetuneJob.of(MODEL, data, out)
                .withLora(new LoraSettings(Set.of("q_proj", "v_proj"), true, false, 8, 16f, 0f, false, true))
                .withBatching(new FinetuneJob.Batching(2, 2, false, 0))
                .withOptimization(new FinetuneJob.Optimization(2e-3, 0.01, 0.9, 0.999, 1e-8, 1.0))
                .withSchedule(new FinetuneJob.Schedule(20L, null, "cosine", 3))
                .withCheckpoints(new FinetuneJob.Checkpoints(0, 5, false));
    }

    /** The same job run in this process. */
    static void runSingle(Path data, Path out) throws IOException {
        try (Device device = Device.open(DEVICE, OPTIONS)) {
            job(data, out).run(device, FinetuneListener.NONE);
        }
    }

    /** The device options of the single process and of every replica. */
    static final DeviceOptions OPTIONS = DeviceOptions.defaults();

    static final String DEVICE = "jvm";

    static double[] losses(Path out) {
        JsonNode steps = TrainingLog.mapper().valueToTree(readJson(out.resolve("log.json"))).path("steps");
        double[] l = new double[steps.size()];
        for (int i = 0; i < l.length; i++) l[i] = steps.get(i).path("loss").asDouble();
        return l;
    }

    private static JsonNode readJson(Path file) {
        try {
            return TrainingLog.mapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static void assertLossesClose(double[] expected, double[] actual, double relTol) {
        assertEquals(expected.length, actual.length, "steps");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], relTol * Math.abs(expected[i]), "loss of step " + (i + 1));
        }
    }

    /** The PEFT adapter files of two outputs are the same bytes (one micro-batch per replica: the same sums). */
    static void assertAdapterFilesIdentical(Path expected, Path actual) {
        Path e = expected.resolve("peft/adapter_model.safetensors"), a = actual.resolve("peft/adapter_model.safetensors");
        try {
            assertEquals(-1L, java.nio.file.Files.mismatch(e, a), "the adapters differ from byte " + java.nio.file.Files.mismatch(e, a));
        } catch (IOException x) {
            throw new java.io.UncheckedIOException(x);
        }
    }

    /** The PEFT adapters of two outputs agree within {@code tol}; returns the largest difference. */
    static double assertAdaptersClose(Path expected, Path actual, double tol) {
        SafeTensors e = SafeTensors.open(expected.resolve("peft/adapter_model.safetensors"));
        SafeTensors a = SafeTensors.open(actual.resolve("peft/adapter_model.safetensors"));
        assertEquals(e.names(), a.names());
        double worst = 0;
        for (String name : e.names()) {
            Tensor x = e.f32(name), y = a.f32(name);
            for (int i = 0; i < x.numel(); i++) {
                worst = Math.max(worst, Math.abs(x.data()[i] - y.data()[i]));
                assertEquals(x.data()[i], y.data()[i], tol, name + "[" + i + "]");
            }
        }
        return worst;
    }
}
