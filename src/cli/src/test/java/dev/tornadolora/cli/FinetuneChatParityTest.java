package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.finetune.ExampleRows;
import dev.tornadolora.finetune.SafetensorsTokens;
import dev.tornadolora.finetune.TokenDataset;
import dev.tornadolora.testing.Oracle;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code finetune} on chat data (assistant-only loss under llama3's TRL training template) step for step against
 * transformers + PEFT (scripts/finetune_parity.py): Java reads the {@code .jsonl} itself; the replica trains on
 * TRL 1.13's own SFTTrainer preprocessing of the same file, and feeds transformers the padded rows with their
 * attention mask and the packed rows with their position_ids, so that its masks are block-diagonal. Per-step losses
 * within 1e-4 relative, with padding and with bfd packing; training on the {@code data} command's file of the
 * same options gives the same losses bit for bit.
 */
class FinetuneChatParityTest {
    static final ObjectMapper JSON = new ObjectMapper();
    Path root, python, golden;

    @BeforeEach
    void findOracle() {
        root = Oracle.root("scripts/finetune_parity.py");
        python = Oracle.requirePython(root, "the chat finetune parity with PyTorch + PEFT");
        golden = root.resolve("src/data/src/test/resources/golden/chat");
    }

    @Test
    void paddedChatData(@TempDir Path tmp) throws Exception {
        Path rows = prepare(tmp, "padded", "none", 48);
        ExampleRows r = assertInstanceOf(ExampleRows.class, SafetensorsTokens.read(rows, 1000));
        assertTrue(r.examples()[0][47] == ExampleRows.PADDING, "rows are right-padded");
        compare(tmp, "padded", "none", 48, rows, 2);
    }

    @Test
    void packedChatData(@TempDir Path tmp) throws Exception {
        Path rows = prepare(tmp, "packed", "bfd", 96);
        TokenDataset d = SafetensorsTokens.read(rows, 1000);
        int[] pos = d.positionIds(new int[] {0});
        boolean restarts = false;
        for (int i = 1; i < pos.length; i++) restarts |= pos[i] == 0 && pos[i - 1] > 0;
        assertTrue(restarts, "row 0 packs more than one example");
        compare(tmp, "packed", "bfd", 96, rows, 1);
    }

    private Path prepare(Path tmp, String name, String packing, int seqLen) {
        Path out = tmp.resolve(name + ".safetensors");
        CliRun r = CliRun.of("data", "--model", golden.resolve("model").toString(), "--data", chat().toString(),
                "--assistant-only-loss", "--packing", packing, "--seq-len", "" + seqLen, "--output", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("in the loss"), r.out());
        return out;
    }

    private Path chat() {
        return golden.resolve("data/messages.jsonl");
    }

    private void compare(Path tmp, String name, String packing, int seqLen, Path prepared, int batch) throws Exception {
        int steps = 6;
        List<String> common = List.of("--model", golden.resolve("model").toString(), "--init-adapter",
                golden.resolve("adapter").toString(), "--steps", "" + steps, "--batch", "" + batch, "--lr", "2e-3",
                "--weight-decay", "0.01", "--schedule", "cosine", "--max-grad-norm", "1.0");
        JsonNode direct = finetune(tmp.resolve(name), common, "--data", chat().toString(), "--assistant-only-loss",
                "--packing", packing, "--seq-len", "" + seqLen);
        JsonNode fromFile = finetune(tmp.resolve(name + "-file"), common, "--data", prepared.toString());
        for (int i = 0; i < steps; i++) {
            for (String k : List.of("loss", "grad_norm", "tokens")) {
                assertEquals(fromFile.get("steps").get(i).get(k).asDouble(), direct.get("steps").get(i).get(k).asDouble(),
                        name + " step " + (i + 1) + " " + k + ": the .jsonl trains as the data command's file of it");
            }
        }
        JsonNode prep = direct.get("config").get("data_preparation").get(0);
        assertEquals(chat().toString(), prep.get("source").asText());
        assertEquals(4, prep.get("examples").asInt(), prep.toString());
        assertEquals(SafetensorsTokens.read(prepared, 1000).size(), prep.get("rows").asInt(), prep.toString());

        Path ref = tmp.resolve(name + "-ref.json");
        List<String> cmd = new ArrayList<>(List.of(python.toString(), root.resolve("scripts/finetune_parity.py").toString()));
        cmd.addAll(common);
        cmd.addAll(List.of("--data", chat().toString(), "--max-length", "" + seqLen, "--assistant-only-loss",
                "--json", ref.toString()));
        if (packing.equals("bfd")) cmd.add("--packing");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve(name + ".log").toFile()).start();
        assertEquals(0, p.waitFor(), Files.readString(tmp.resolve(name + ".log")));
        JsonNode mine = direct.get("steps");
        JsonNode theirs = JSON.readTree(ref.toFile()).get("steps");
        assertEquals(steps, mine.size());
        for (int i = 0; i < steps; i++) {
            double a = mine.get(i).get("loss").asDouble(), e = theirs.get(i).get("loss").asDouble();
            assertTrue(Math.abs(a - e) <= 1e-4 * Math.abs(e), name + " step " + (i + 1) + ": loss " + a + " vs " + e);
        }
    }

    /** {@code finetune} with the common options and {@code data}; its log.json. */
    private JsonNode finetune(Path out, List<String> common, String... data) throws Exception {
        List<String> java = new ArrayList<>(List.of("finetune"));
        java.addAll(common);
        java.addAll(List.of(data));
        java.addAll(List.of("--shuffle", "false", "--output", out.toString(), "--device", "jvm", "--quiet"));
        CliRun r = CliRun.of(java.toArray(String[]::new));
        assertEquals(0, r.exitCode(), r.err());
        return JSON.readTree(out.resolve("log.json").toFile());
    }
}
