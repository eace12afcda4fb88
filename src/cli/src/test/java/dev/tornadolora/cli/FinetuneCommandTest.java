package dev.tornadolora.cli;

import dev.tornadolora.testing.TestDevices;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code finetune} on the golden tiny Llama with its tokenizer: outputs, determinism, bad data, kill + resume. */
class FinetuneCommandTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static Path fixture;

    @BeforeAll
    static void findFixture() {
        for (String p : new String[] {"../core/src/test/resources/golden/llama/gqa1_tied_tokenizer",
                "src/core/src/test/resources/golden/llama/gqa1_tied_tokenizer"}) {
            if (Files.isDirectory(Path.of(p))) fixture = Path.of(p).toAbsolutePath().normalize();
        }
        Assumptions.assumeTrue(fixture != null, "no Llama fixture with a tokenizer (scripts/llama_golden.py writes it)");
    }

    static Path model() {
        return fixture.resolve("model");
    }

    static String[] args(Path data, Path out, String... more) {
        List<String> a = new ArrayList<>(List.of("finetune", "--model", model().toString(), "--data", data.toString(),
                "--output", out.toString(), "--device", "jvm", "--quiet"));
        a.addAll(List.of(more));
        return a.toArray(String[]::new);
    }

    @Test
    void jsonlRunWritesEveryOutputByteForByteTheSameTwice(@TempDir Path tmp) throws Exception {
        Path data = fixture.resolve("data.jsonl");
        for (String run : new String[] {"a", "b"}) {
            CliRun r = CliRun.of(args(data, tmp.resolve(run), "--seq-len", "8", "--steps", "4", "--batch", "2",
                    "--lora-rank", "4", "--lora-alpha", "8", "--lora-mlp", "--warmup-steps", "1", "--lr", "1e-2",
                    "--merge"));
            assertEquals(0, r.exitCode(), r.err());
            assertTrue(r.out().strip().lines().reduce((x, y) -> y).orElseThrow().startsWith("eval loss before "), r.out());
        }
        for (String f : new String[] {"peft/adapter_model.safetensors", "peft/adapter_config.json",
                "adapter.safetensors", dev.tornadolora.io.RunFiles.STATE, "merged/model.safetensors", "merged/config.json"}) {
            assertArrayEquals(Files.readAllBytes(tmp.resolve("a").resolve(f)), Files.readAllBytes(tmp.resolve("b").resolve(f)), f);
        }
        assertTrue(Files.size(tmp.resolve("a/loss.png")) > 1000);
        JsonNode cfg = JSON.readTree(tmp.resolve("a/peft/adapter_config.json").toFile());
        assertEquals(4, cfg.get("r").asInt());
        assertEquals(8.0, cfg.get("lora_alpha").asDouble());
        assertEquals("LORA", cfg.get("peft_type").asText());
        assertEquals("CAUSAL_LM", cfg.get("task_type").asText());
        assertEquals("none", cfg.get("bias").asText());
        assertEquals(model().toString(), cfg.get("base_model_name_or_path").asText());
        List<String> targets = new ArrayList<>();
        cfg.get("target_modules").forEach(n -> targets.add(n.asText()));
        assertEquals(List.of("down_proj", "gate_proj", "q_proj", "up_proj", "v_proj"), targets.stream().sorted().toList());
        SafeTensors tt = SafeTensors.open(tmp.resolve("a/adapter.safetensors"));
        assertTrue(tt.contains("layers.0.attn.q_proj.lora_a.weight") && tt.contains("layers.0.mlp.w2.lora_b.weight"),
                "torchtune keys: " + tt.names());
        // the torchtune-keyed file holds the PEFT file's tensors: the model's own key mapping loads it to the same values
        var settings = new dev.tornadolora.llama.LoraSettings(java.util.Set.of("q_proj", "v_proj"), true, false, 4, 8f,
                0f, false, false);
        try (var m = dev.tornadolora.llama.LlamaForCausalLM.load(model(), settings, TestDevices.jvm())) {
            java.util.Map<String, dev.tornadolora.tensor.Tensor> t = new java.util.LinkedHashMap<>();
            for (String k : tt.names()) t.put(k, tt.f32(k));
            m.loadAdapters(t);
            SafeTensors peft = SafeTensors.open(tmp.resolve("a/peft/adapter_model.safetensors"));
            assertEquals(peft.names(), m.adapterStateDict().keySet());
            m.adapterStateDict().forEach((k, v) -> assertArrayEquals(peft.f32(k).data(), v.data(), k));
        }
        JsonNode log = JSON.readTree(tmp.resolve("a/log.json").toFile());
        assertEquals(4, log.get("steps").size());
        for (String k : new String[] {"loss", "lr", "grad_norm", "tokens_per_s", "peak_heap_mib"}) {
            assertTrue(log.get("steps").get(3).has(k), "step entry has " + k);
        }
        assertEquals(2, log.get("eval").size(), "eval before and after");
        assertEquals(log.get("summary").get("final_eval_loss").asDouble(), log.get("eval").get(1).get("loss").asDouble());
    }

    static void assertOneLineError(CliRun r, String expected) {
        assertEquals(1, r.exitCode(), r.out() + r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains(expected), "expected '" + expected + "' in: " + r.err());
    }

    @Test
    void badDataIsOneLineNamingFileLineAndProblem(@TempDir Path tmp) throws Exception {
        Path notJson = tmp.resolve("bad.jsonl"), empty = tmp.resolve("empty.jsonl"), shortText = tmp.resolve("short.jsonl");
        Path noText = tmp.resolve("notext.jsonl"), ids = tmp.resolve("ids.safetensors");
        Files.writeString(notJson, "{\"text\": \"the quick brown fox\"}\nnot json at all\n");
        Files.writeString(empty, "");
        Files.writeString(shortText, "{\"text\": \"the fox\"}\n");
        Files.writeString(noText, "{\"content\": \"the fox\"}\n");
        ByteBuffer b = ByteBuffer.allocate(4 * 8).order(ByteOrder.LITTLE_ENDIAN).putLong(1).putLong(96).putLong(2).putLong(3);
        new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {2, 2}, b.array()).write(ids);
        Path out = tmp.resolve("out");
        assertOneLineError(CliRun.of(args(notJson, out, "--seq-len", "4")), notJson + ", line 2: not valid JSON");
        assertOneLineError(CliRun.of(args(empty, out)), empty + ": empty");
        assertOneLineError(CliRun.of(args(shortText, out, "--seq-len", "64")), shortText + ": ");
        assertTrue(CliRun.of(args(shortText, out, "--seq-len", "64")).err().contains("shorter than one block"));
        assertOneLineError(CliRun.of(args(noText, out)), noText + ", line 1: expected an object with a string \"text\"");
        assertOneLineError(CliRun.of(args(ids, out)), ids + ": row 0, position 1: input id 96 is outside the vocabulary");
        assertFalse(Files.exists(out.resolve("peft")), "nothing written for bad data");
    }

    /** An output that is an input (here the data, saved where the adapters would go) is refused, the file kept. */
    @Test
    void anOutputThatIsAnInputIsRefusedAndKept(@TempDir Path tmp) throws Exception {
        Path out = Files.createDirectories(tmp.resolve("out"));
        Path data = out.resolve("adapter.safetensors");
        ByteBuffer b = ByteBuffer.allocate(4 * 8).order(ByteOrder.LITTLE_ENDIAN).putLong(1).putLong(2).putLong(2).putLong(3);
        new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {2, 2}, b.array()).write(data);
        byte[] before = Files.readAllBytes(data);
        assertOneLineError(CliRun.of(args(data, out, "--steps", "1", "--batch", "1")), "--output");
        assertArrayEquals(before, Files.readAllBytes(data));
        assertFalse(Files.exists(out.resolve("peft")), "nothing written");
    }

    /** Core names a bad setting by its field (FinetuneJob, SettingException); the command says its option. */
    @Test
    void aBadSettingIsNamedByItsOption(@TempDir Path tmp) throws Exception {
        Path data = tokens(tmp, 4, 8, 64), out = tmp.resolve("out");
        assertOneLineError(CliRun.of(args(data, out, "--batch", "0")), "error: --batch must be positive, got 0");
        assertOneLineError(CliRun.of(args(data, out, "--grad-accum", "0")), "error: --grad-accum must be positive, got 0");
        assertOneLineError(CliRun.of(args(data, out, "--steps", "2", "--epochs", "1")), "give --steps or --epochs, not both");
        assertOneLineError(CliRun.of(args(data, out, "--schedule", "linear")), "--schedule: expected cosine or constant");
        assertOneLineError(CliRun.of(args(data, out, "--seq-len", "4")), "rows of 8 tokens but --seq-len 4");
        assertFalse(Files.exists(out.resolve("peft")), "nothing written");
    }

    @Test
    void theEmbeddedJobTakesOnlyItsOwnOptions() {
        assertOneLineError(CliRun.of("finetune", "--lora-rank", "4"), "--lora-rank needs --model and --data");
        assertOneLineError(CliRun.of("finetune", "--model", model().toString()), "give both --model DIR and --data FILE");
    }

    static Path tokens(Path dir, int rows, int seq, int vocab) throws IOException {
        SplittableRandom rng = new SplittableRandom(11);
        ByteBuffer b = ByteBuffer.allocate(rows * seq * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < rows * seq; i++) b.putLong(rng.nextInt(vocab));
        Path p = dir.resolve("tokens.safetensors");
        new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {rows, seq}, b.array()).write(p);
        return p;
    }

    /**
     * A run killed (SIGKILL) in the middle, then resumed with {@code --resume}, ends with the same adapters and
     * optimizer state, byte for byte, as a run never stopped.
     */
    @Test
    void aKilledRunResumesToTheSameAdapters(@TempDir Path tmp) throws Exception {
        Path data = tokens(tmp, 12, 8, 96);
        String[] opts = {"--steps", "100", "--batch", "2", "--grad-accum", "2", "--lr", "1e-3", "--warmup-steps", "5",
                "--max-grad-norm", "0.5", "--init-adapter", fixture.resolve("adapter").toString()};
        Path straight = tmp.resolve("straight"), killed = tmp.resolve("killed");
        assertEquals(0, CliRun.of(args(data, straight, opts)).exitCode());

        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"),
                Main.class.getName()));
        cmd.addAll(List.of(args(data, killed, append(opts, "--save-every", "1"))));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("child.log").toFile()).start();
        Path state = killed.resolve(dev.tornadolora.io.RunFiles.STATE);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        long savedStep = -1;
        while (p.isAlive() && System.nanoTime() < deadline) {
            if (Files.exists(state)) {
                try {
                    savedStep = Long.parseLong(SafeTensors.open(state).requireMetadata("step"));
                } catch (RuntimeException e) {
                    savedStep = -1;  // renamed over while opening
                }
                if (savedStep >= 5) break;
            }
            Thread.sleep(5);
        }
        boolean killedMidway = p.isAlive();
        p.destroyForcibly().waitFor();
        Assumptions.assumeTrue(killedMidway, "the child finished before it could be killed: " + Files.readString(tmp.resolve("child.log")));
        CliRun resumed = CliRun.of(args(data, killed, append(opts, "--resume")));
        assertEquals(0, resumed.exitCode(), resumed.err());
        assertTrue(resumed.out().contains("resuming " + killed + " at step"), resumed.out());
        for (String f : new String[] {"peft/adapter_model.safetensors", "adapter.safetensors", dev.tornadolora.io.RunFiles.STATE}) {
            assertArrayEquals(Files.readAllBytes(straight.resolve(f)), Files.readAllBytes(killed.resolve(f)), f);
        }
        JsonNode a = JSON.readTree(straight.resolve("log.json").toFile()).get("steps");
        JsonNode b = JSON.readTree(killed.resolve("log.json").toFile()).get("steps");
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) assertEquals(a.get(i).get("loss"), b.get(i).get("loss"), "step " + (i + 1));
        // another configuration cannot resume this run
        String[] otherLr = opts.clone();
        otherLr[java.util.Arrays.asList(opts).indexOf("--lr") + 1] = "2e-3";
        CliRun other = CliRun.of(args(data, killed, append(otherLr, "--resume")));
        assertOneLineError(other, "was trained with other options: lr 0.001 -> 0.002");
    }

    /** The options session 2 (issue 25's data options) added to a run's identity and log.json's config. */
    static final List<String> ADDED_SINCE = List.of("packing", "assistant_only_loss", "completion_only_loss",
            "truncation_mode", "chat_template");

    /**
     * A run saved by the version before the data options joined the identity (its resume point and log.json
     * without them, the identity computed without them) resumes when nothing the user set differs, to the same
     * adapters and optimizer state as a run never stopped, and continues as this version's run; an option set
     * otherwise is refused in one line naming it (RunIdentityTest: an added option set otherwise than the
     * earlier version did).
     */
    @Test
    void aRunSavedBeforeTheDataOptionsResumes(@TempDir Path tmp) throws Exception {
        Path data = fixture.resolve("data.jsonl");
        String[] opts = {"--seq-len", "8", "--batch", "2", "--lora-rank", "4", "--lora-alpha", "8", "--lr", "1e-2",
                "--schedule", "constant", "--warmup-steps", "1"};
        Path straight = tmp.resolve("straight"), old = tmp.resolve("old");
        assertEquals(0, CliRun.of(args(data, straight, append(opts, "--steps", "6"))).exitCode());
        // what the earlier version left after step 3 of a 6-step run (a constant schedule: step 3 of 3 is that)
        CliRun first = CliRun.of(args(data, old, append(opts, "--steps", "3")));
        assertEquals(0, first.exitCode(), first.err());
        asSavedBeforeTheDataOptions(old, 6);
        Path other = tmp.resolve("other");
        copyFolder(old, other);

        CliRun resumed = CliRun.of(args(data, old, append(opts, "--steps", "6", "--resume")));
        assertEquals(0, resumed.exitCode(), resumed.err());
        assertTrue(resumed.out().contains("resuming " + old + " at step 3"), resumed.out());
        for (String f : new String[] {"peft/adapter_model.safetensors", "adapter.safetensors", dev.tornadolora.io.RunFiles.STATE}) {
            assertArrayEquals(Files.readAllBytes(straight.resolve(f)), Files.readAllBytes(old.resolve(f)), f);
        }
        JsonNode a = JSON.readTree(straight.resolve("log.json").toFile()), b = JSON.readTree(old.resolve("log.json").toFile());
        assertEquals(a.get("run_id"), b.get("run_id"), "continues as this version's run");
        assertEquals(a.get("steps").size(), b.get("steps").size());
        for (int i = 0; i < 6; i++) assertEquals(a.get("steps").get(i).get("loss"), b.get("steps").get(i).get("loss"), "step " + (i + 1));
        for (String k : ADDED_SINCE) assertEquals(a.get("config").get(k), b.get("config").get(k), k);

        // an option set otherwise is named, and only it (the options added since are at the earlier version's values)
        String[] otherLr = opts.clone();
        otherLr[java.util.Arrays.asList(opts).indexOf("--lr") + 1] = "2e-2";
        CliRun refused = CliRun.of(args(data, other, append(otherLr, "--steps", "6", "--resume")));
        assertOneLineError(refused, "was trained with other options: lr 0.01 -> 0.02 (give the options");
    }

    /**
     * Rewrites the run in {@code dir} as the earlier version would have saved it in a run of {@code steps}
     * steps: its resume point's options and log.json's config without {@link #ADDED_SINCE}, and the identity
     * (run id, options' hash) of those options.
     */
    static void asSavedBeforeTheDataOptions(Path dir, long steps) throws IOException {
        Path state = dir.resolve(dev.tornadolora.io.RunFiles.STATE);
        byte[] bytes = Files.readAllBytes(state);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int headerLength = (int) b.getLong(0);
        var header = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(
                new String(bytes, 8, headerLength, java.nio.charset.StandardCharsets.UTF_8));
        var meta = (com.fasterxml.jackson.databind.node.ObjectNode) header.get("__metadata__");
        var options = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(meta.get("options").asText());
        assertTrue(options.has("packing"), "this version records " + options);
        options.remove(ADDED_SINCE);
        options.put("steps", steps);
        var id = dev.tornadolora.train.RunIdentity.of(options);
        id.stateMetadata().forEach(meta::put);
        byte[] h = JSON.writeValueAsBytes(header);
        ByteBuffer out = ByteBuffer.allocate(8 + h.length + bytes.length - 8 - headerLength).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(h.length).put(h).put(bytes, 8 + headerLength, bytes.length - 8 - headerLength);
        Files.write(state, out.array());

        Path logFile = dir.resolve("log.json");
        var log = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(logFile.toFile());
        ((com.fasterxml.jackson.databind.node.ObjectNode) log.get("config")).remove(ADDED_SINCE);
        ((com.fasterxml.jackson.databind.node.ObjectNode) log.get("config")).put("steps", steps);
        id.metadata().forEach(log::put);
        JSON.writeValue(logFile.toFile(), log);
    }

    static void copyFolder(Path from, Path to) throws IOException {
        try (var files = Files.walk(from)) {
            for (Path p : files.toList()) Files.copy(p, to.resolve(from.relativize(p).toString()));
        }
    }

    static String[] append(String[] a, String... b) {
        String[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
