package dev.tornadolora.finetune;

import dev.tornadolora.train.SettingException;
import dev.tornadolora.llama.LoraSettings;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The job as a value: its JSON form (what the Spark driver ships) and its messages naming settings by field. */
class FinetuneJobTest {
    @Test
    void jsonRoundTripGivesTheSameJobWithAbsolutePaths() {
        FinetuneJob job = FinetuneJob.of(Path.of("model"), Path.of("data.jsonl"), Path.of("out"))
                .withLora(new LoraSettings(Set.of("q_proj", "k_proj"), true, true, 4, 8f, 0.1f, true, true))
                .withData(new FinetuneJob.Data(Path.of("data.jsonl"), Path.of("/tmp/eval.safetensors"), 64))
                .withBatching(new FinetuneJob.Batching(3, 2, false, 7))
                .withSchedule(new FinetuneJob.Schedule(null, 2, "constant", 5))
                .withCheckpoints(new FinetuneJob.Checkpoints(4, 6, true));
        FinetuneJob back = FinetuneJob.fromJson(job.toJson());
        assertEquals(Path.of("model").toAbsolutePath(), back.model().dir());
        assertEquals(Path.of("out").toAbsolutePath(), back.outputs().dir());
        assertEquals(job.lora(), back.lora());
        assertEquals(job.batching(), back.batching());
        assertEquals(job.schedule(), back.schedule());
        assertEquals(job.checkpoints(), back.checkpoints());
        assertEquals(job.optimization(), back.optimization());
        assertEquals(job.data().seqLen(), back.data().seqLen());
        assertEquals(back, FinetuneJob.fromJson(back.toJson()));
    }

    @Test
    void messagesNameTheFieldAndAFrontEndRendersItsOwnSpelling() {
        FinetuneJob job = FinetuneJob.of(Path.of("m"), Path.of("d"), Path.of("o"));
        SettingException e = assertThrows(SettingException.class,
                () -> job.withSchedule(new FinetuneJob.Schedule(3L, 1, "cosine", 0)));
        assertEquals("give steps or epochs, not both", e.getMessage());
        assertEquals("give --steps or --epochs, not both", e.render(f -> "--" + f));
        SettingException b = assertThrows(SettingException.class, () -> new FinetuneConfig(job.lora(), 1, 0, 1, 8,
                1e-3, 0, 0.9, 0.999, 1e-8, 0, "cosine", 1, 0, true, 0, 0));
        assertTrue(b.getMessage().startsWith("batch must be positive"), b.getMessage());
    }

    @Test
    void malformedJsonIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> FinetuneJob.fromJson("{\"model\": 1}"));
    }
}
