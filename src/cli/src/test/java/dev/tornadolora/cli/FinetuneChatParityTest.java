package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.finetune.ExampleRows;
import dev.tornadolora.finetune.SafetensorsTokens;
import dev.tornadolora.finetune.TokenDataset;
import org.junit.jupiter.api.Assumptions;
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
 * {@code finetune} on chat data ({@code data} output, assistant-only loss under llama3's TRL training template)
 * step for step against transformers + PEFT (scripts/finetune_parity.py, which feeds transformers the padded rows
 * with their attention mask and the packed rows with their position_ids, so that its masks are block-diagonal):
 * per-step losses within 1e-4 relative, with padding and with bfd packing.
 */
class FinetuneChatParityTest {
    static final ObjectMapper JSON = new ObjectMapper();
    Path root, python, golden;

    @BeforeEach
    void findOracle() {
        Path dir = Path.of("").toAbsolutePath();
        while (dir != null && !Files.isRegularFile(dir.resolve("scripts/finetune_parity.py"))) dir = dir.getParent();
        Assumptions.assumeTrue(dir != null, "scripts/finetune_parity.py not found");
        root = dir;
        String env = System.getenv("ORACLE_PYTHON");
        python = env != null ? Path.of(env) : root.resolve(".venv-oracle/bin/python");
        Assumptions.assumeTrue(Files.isExecutable(python), "no Python oracle at " + python
                + " (scripts/oracle-venv.sh); the chat finetune parity with PyTorch + PEFT is not checked");
        golden = root.resolve("src/data/src/test/resources/golden/chat");
    }

    @Test
    void paddedChatData(@TempDir Path tmp) throws Exception {
        Path rows = prepare(tmp, "padded", "none", 48);
        ExampleRows r = assertInstanceOf(ExampleRows.class, SafetensorsTokens.read(rows, 1000));
        assertTrue(r.examples()[0][47] == ExampleRows.PADDING, "rows are right-padded");
        compare(tmp, "padded", rows, 2);
    }

    @Test
    void packedChatData(@TempDir Path tmp) throws Exception {
        Path rows = prepare(tmp, "packed", "bfd", 96);
        TokenDataset d = SafetensorsTokens.read(rows, 1000);
        int[] pos = d.positionIds(new int[] {0});
        boolean restarts = false;
        for (int i = 1; i < pos.length; i++) restarts |= pos[i] == 0 && pos[i - 1] > 0;
        assertTrue(restarts, "row 0 packs more than one example");
        compare(tmp, "packed", rows, 1);
    }

    private Path prepare(Path tmp, String name, String packing, int seqLen) {
        Path out = tmp.resolve(name + ".safetensors");
        CliRun r = CliRun.of("data", "--model", golden.resolve("model").toString(), "--data",
                golden.resolve("data/messages.jsonl").toString(), "--assistant-only-loss", "--packing", packing,
                "--seq-len", "" + seqLen, "--output", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("in the loss"), r.out());
        return out;
    }

    private void compare(Path tmp, String name, Path data, int batch) throws Exception {
        int steps = 6;
        List<String> common = List.of("--model", golden.resolve("model").toString(), "--data", data.toString(),
                "--init-adapter", golden.resolve("adapter").toString(), "--steps", "" + steps, "--batch", "" + batch,
                "--lr", "2e-3", "--weight-decay", "0.01", "--schedule", "cosine", "--max-grad-norm", "1.0");
        List<String> java = new ArrayList<>(List.of("finetune"));
        java.addAll(common);
        java.addAll(List.of("--shuffle", "false", "--output", tmp.resolve(name).toString(), "--device", "jvm", "--quiet"));
        CliRun r = CliRun.of(java.toArray(String[]::new));
        assertEquals(0, r.exitCode(), r.err());
        Path ref = tmp.resolve(name + "-ref.json");
        List<String> cmd = new ArrayList<>(List.of(python.toString(), root.resolve("scripts/finetune_parity.py").toString()));
        cmd.addAll(common);
        cmd.addAll(List.of("--json", ref.toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve(name + ".log").toFile()).start();
        assertEquals(0, p.waitFor(), Files.readString(tmp.resolve(name + ".log")));
        JsonNode mine = JSON.readTree(tmp.resolve(name).resolve("log.json").toFile()).get("steps");
        JsonNode theirs = JSON.readTree(ref.toFile()).get("steps");
        assertEquals(steps, mine.size());
        for (int i = 0; i < steps; i++) {
            double a = mine.get(i).get("loss").asDouble(), e = theirs.get(i).get("loss").asDouble();
            assertTrue(Math.abs(a - e) <= 1e-4 * Math.abs(e), name + " step " + (i + 1) + ": loss " + a + " vs " + e);
        }
    }
}
