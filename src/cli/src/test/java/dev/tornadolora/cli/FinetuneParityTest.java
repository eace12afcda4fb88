package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.testing.Golden;
import dev.tornadolora.testing.Oracle;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code finetune} step for step against transformers + PEFT + {@code torch.optim.AdamW}
 * (scripts/finetune_parity.py, run with the oracle environment .venv-oracle): 20 steps from a PEFT adapter with
 * non-zero B on the golden Llama fixtures, pre-tokenized data with ignored labels, {@code --shuffle false},
 * dropout 0; fp32 and {@code --quantize-base}, constant and cosine with warm-up, with and without clipping and
 * gradient accumulation. Per-step losses within 1e-4 relative (and the logged lr and gradient norm); PEFT
 * loading OUT/peft reproduces the logged eval loss within 1e-5; transformers loading OUT/merged reproduces the
 * merged model's logits (this program's {@code forward} on OUT/merged) within 1e-4.
 */
class FinetuneParityTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static Path root;
    static Path python;
    static Path golden;

    // Per test, not @BeforeAll: a failed assumption there makes JUnit report the class as 0 tests run, not as skipped.
    @BeforeEach
    void findOracle() {
        root = Oracle.root("scripts/finetune_parity.py");
        python = Oracle.requirePython(root, "the finetune parity with PyTorch + PEFT");
        golden = root.resolve("src/core/src/test/resources/golden/llama");
        Assumptions.assumeTrue(Files.isDirectory(golden), "no Llama fixtures in " + golden);
    }

    /** Rows of ids in [0, vocab) with some labels −100 (a prefix of row 0, the tail of row 3), as I64. */
    static Path data(Path dir, String name, int rows, int seq, int vocab, long seed, boolean labels) throws IOException {
        SplittableRandom rng = new SplittableRandom(seed);
        ByteBuffer ids = ByteBuffer.allocate(rows * seq * 8).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer lab = ByteBuffer.allocate(rows * seq * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (int r = 0; r < rows; r++) {
            for (int t = 0; t < seq; t++) {
                int id = rng.nextInt(vocab);
                ids.putLong(id);
                lab.putLong((r == 0 && t < 5) || (r == 3 && t >= seq / 2) ? -100 : id);
            }
        }
        SafeTensorsWriter w = new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {rows, seq}, ids.array());
        if (labels) w.raw("labels", DType.I64, new int[] {rows, seq}, lab.array());
        Path p = dir.resolve(name);
        w.write(p);
        return p;
    }

    static String python(Path log, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(python.toString(), root.resolve("scripts/finetune_parity.py").toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertTrue(p.waitFor(10, TimeUnit.MINUTES), "finetune_parity.py timed out");
        String out = Files.readString(log, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), "finetune_parity.py " + String.join(" ", args) + ":\n" + out);
        return out;
    }

    /** Runs finetune and the replica with the same options; checks every step's loss, lr and gradient norm. */
    Path compare(Path tmp, String name, String fixture, boolean quantize, int batch, int accum, String schedule,
                 int warmup, double clip, boolean merge) throws Exception {
        return compare(tmp, name, golden.resolve(fixture), quantize, batch, accum, schedule, warmup, clip, merge);
    }

    /** As above on the fixture folder {@code caseDir} (model/ and adapter/), e.g. another family's. */
    static Path compare(Path tmp, String name, Path caseDir, boolean quantize, int batch, int accum, String schedule,
                        int warmup, double clip, boolean merge) throws Exception {
        Path model = caseDir.resolve("model"), adapter = caseDir.resolve("adapter");
        int vocab = JSON.readTree(model.resolve("config.json").toFile()).path("vocab_size").asInt();
        Path d = data(tmp, name + "-data.safetensors", 9, 16, vocab, 7, true);
        Path eval = data(tmp, name + "-eval.safetensors", 3, 16, vocab, 8, false);
        Path out = tmp.resolve(name);
        List<String> common = new ArrayList<>(List.of("--model", model.toString(), "--data", d.toString(),
                "--init-adapter", adapter.toString(), "--steps", "20", "--batch", "" + batch, "--grad-accum", "" + accum,
                "--lr", "2e-3", "--weight-decay", "0.01", "--schedule", schedule, "--warmup-steps", "" + warmup,
                "--max-grad-norm", "" + clip));
        if (quantize) common.add("--quantize-base");
        List<String> java = new ArrayList<>(List.of("finetune"));
        java.addAll(common);
        java.addAll(List.of("--shuffle", "false", "--eval-data", eval.toString(), "--output", out.toString(),
                "--device", "jvm", "--quiet"));
        if (merge) java.add("--merge");
        CliRun r = CliRun.of(java.toArray(String[]::new));
        assertEquals(0, r.exitCode(), r.err());
        // One oracle process per case (its torch + transformers import costs seconds): the replica's training, PEFT's
        // eval loss on OUT/peft and, with merge, transformers on OUT/merged against PEFT on the base + OUT/peft.
        List<String> py = new ArrayList<>(common);
        Path ref = tmp.resolve(name + "-ref.json");
        py.addAll(List.of("--eval", out.resolve("peft").toString(), "--eval-data", eval.toString(),
                "--json", ref.toString()));
        if (merge) {
            py.addAll(List.of("--merged", out.resolve("merged").toString(), "--input", eval.toString(),
                    "--against-peft", out.resolve("peft").toString(), "--logits-out", mergedLogits(tmp, name).toString()));
        }
        python(tmp.resolve(name + "-py.log"), py.toArray(String[]::new));
        JsonNode oracle = JSON.readTree(ref.toFile());
        JsonNode mine = JSON.readTree(out.resolve("log.json").toFile()).get("steps");
        JsonNode theirs = oracle.get("train").get("steps");
        assertEquals(20, mine.size());
        assertEquals(20, theirs.size());
        for (int i = 0; i < 20; i++) {
            double a = mine.get(i).get("loss").asDouble(), e = theirs.get(i).get("loss").asDouble();
            assertTrue(Math.abs(a - e) <= 1e-4 * Math.abs(e), name + " step " + (i + 1) + ": loss " + a + " vs " + e);
            double la = mine.get(i).get("lr").asDouble(), le = theirs.get(i).get("lr").asDouble();
            assertTrue(Math.abs(la - le) <= 1e-9 + 1e-6 * le, name + " step " + (i + 1) + ": lr " + la + " vs " + le);
            double ga = mine.get(i).get("grad_norm").asDouble(), ge = theirs.get(i).get("grad_norm").asDouble();
            assertTrue(Math.abs(ga - ge) <= 1e-3 * ge, name + " step " + (i + 1) + ": grad norm " + ga + " vs " + ge);
        }
        // The replica's loss is the PEFT model's: PEFT loading OUT/peft must give the logged eval loss.
        double peftLoss = oracle.get("eval").get("eval_loss").asDouble();
        double logged = JSON.readTree(out.resolve("log.json").toFile()).get("summary").get("final_eval_loss").asDouble();
        assertTrue(Math.abs(peftLoss - logged) <= 1e-5 * Math.abs(peftLoss), name + ": PEFT eval loss " + peftLoss
                + " vs logged " + logged);
        if (merge) {
            // transformers loading OUT/merged as a plain model gives the logits of PEFT on the (NF4-dequantized when
            // quantize) base + OUT/peft
            double vsPeft = oracle.get("merged").get("relative_diff_vs_peft").asDouble();
            assertTrue(vsPeft <= 1e-4, name + ": transformers on OUT/merged vs PEFT on the base + OUT/peft: " + vsPeft);
        }
        return out;
    }

    /** Where {@link #compare} with merge leaves transformers' logits of OUT/merged on the case's eval rows. */
    static Path mergedLogits(Path tmp, String name) {
        return tmp.resolve(name + "-merged-logits.safetensors");
    }

    /** DoRA (use_dora) on PEFT's common target_modules [q_proj, v_proj, down_proj]: the magnitude is trained too. */
    @Test
    void doraOnQVDownFp32(@TempDir Path tmp) throws Exception {
        Path out = compare(tmp, "dora-fp32", "dora_q_v_down", false, 2, 2, "cosine", 3, 0.5, false);
        assertTrue(Files.readString(out.resolve("peft/adapter_config.json")).contains("\"use_dora\": true"));
    }

    /** DoRA on an NF4 base with target_modules "all-linear" and rsLoRA; OUT/merged holds m·(W + s·B·A)/‖·‖. */
    @Test
    void doraQloraAllLinearAndMergedCheckpoint(@TempDir Path tmp) throws Exception {
        compare(tmp, "dora-qlora", "dora_qlora_all_linear", true, 2, 1, "constant", 2, 0, true);
    }

    /** target_modules as a regex (layer 1's k_proj and up_proj, and lm_head). */
    @Test
    void regexTargetModules(@TempDir Path tmp) throws Exception {
        compare(tmp, "regex", "regex_k_up_lm_head", false, 3, 1, "constant", 0, 1.0, false);
    }

    /** rank_pattern / alpha_pattern (PEFT's get_pattern_key rule): per-module r and alpha, written back as given. */
    @Test
    void rankAndAlphaPatterns(@TempDir Path tmp) throws Exception {
        Path out = compare(tmp, "patterns", "patterns_q_v", false, 2, 1, "constant", 0, 0, false);
        JsonNode config = JSON.readTree(out.resolve("peft/adapter_config.json").toFile());
        assertEquals(2, config.get("rank_pattern").get("layers.1.self_attn.v_proj").asInt());
        assertEquals(12.0, config.get("alpha_pattern").get("q_proj").asDouble());
    }

    /** --lora-modules q_proj,down_proj --dora from fresh adapters: PEFT loads OUT/peft and gives the logged eval loss. */
    @Test
    void loraModulesAnySubsetWithDora(@TempDir Path tmp) throws Exception {
        Path model = golden.resolve("gqa4_llama3_mlp_sharded/model");
        int vocab = JSON.readTree(model.resolve("config.json").toFile()).path("vocab_size").asInt();
        Path d = data(tmp, "subset-data.safetensors", 8, 16, vocab, 3, true);
        Path eval = data(tmp, "subset-eval.safetensors", 3, 16, vocab, 4, false);
        Path out = tmp.resolve("subset");
        CliRun r = CliRun.of("finetune", "--model", model.toString(), "--data", d.toString(), "--eval-data",
                eval.toString(), "--lora-modules", "q_proj,down_proj", "--dora", "--lora-rank", "2", "--steps", "5",
                "--batch", "2", "--lr", "1e-2", "--shuffle", "false", "--output", out.toString(), "--device", "jvm", "--quiet");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode config = JSON.readTree(out.resolve("peft/adapter_config.json").toFile());
        assertEquals("[\"down_proj\",\"q_proj\"]", config.get("target_modules").toString());
        assertTrue(config.get("use_dora").asBoolean());
        Set<String> keys = SafeTensors.open(out.resolve("peft/adapter_model.safetensors")).names();
        assertTrue(keys.contains("base_model.model.model.layers.1.mlp.down_proj.lora_magnitude_vector"), keys.toString());
        assertEquals(2 * 2 * 3, keys.size(), keys.toString());  // 2 layers × (q_proj, down_proj) × (A, B, m)
        String evOut = python(tmp.resolve("subset-eval.log"), "--model", model.toString(), "--eval",
                out.resolve("peft").toString(), "--eval-data", eval.toString());
        double peftLoss = JSON.readTree(evOut.substring(evOut.indexOf('{'))).get("eval_loss").asDouble();
        double logged = JSON.readTree(out.resolve("log.json").toFile()).get("summary").get("final_eval_loss").asDouble();
        assertTrue(Math.abs(peftLoss - logged) <= 1e-5 * Math.abs(peftLoss), "PEFT eval loss " + peftLoss + " vs logged " + logged);
    }

    /** .jsonl data: Hugging Face tokenizers in Python, documents joined with EOS, cut into blocks, give the same rows. */
    @Test
    void jsonlDataIsTokenizedAsHuggingFaceTokenizersDoes(@TempDir Path tmp) throws Exception {
        Path c = golden.resolve("gqa1_tied_tokenizer"), data = c.resolve("data.jsonl"), tok = c.resolve("model/tokenizer.json");
        JsonNode config = JSON.readTree(c.resolve("model/config.json").toFile());
        int eos = config.get("eos_token_id").asInt(), seq = 8;
        Path script = tmp.resolve("pack.py");
        Files.writeString(script, String.join("\n",
                "import json, sys",
                "from tokenizers import Tokenizer",
                "tok = Tokenizer.from_file(sys.argv[1])",
                "stream = []",
                "for line in open(sys.argv[2], encoding='utf-8'):",
                "    if line.strip():",
                "        stream += tok.encode(json.loads(line)['text'], add_special_tokens=False).ids + [int(sys.argv[3])]",
                "n = int(sys.argv[4])",
                "print(json.dumps([stream[i * n:(i + 1) * n] for i in range(len(stream) // n)]))", ""));
        Path log = tmp.resolve("pack.log");
        Process p = new ProcessBuilder(python.toString(), script.toString(), tok.toString(), data.toString(), "" + eos, "" + seq)
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertTrue(p.waitFor(5, TimeUnit.MINUTES));
        assertEquals(0, p.exitValue(), Files.readString(log));
        JsonNode expected = JSON.readTree(Files.readString(log));
        var mine = dev.tornadolora.data.JsonlTokens.read(data, tok, eos, seq, config.get("vocab_size").asInt());
        assertEquals(expected.size(), mine.size());
        for (int r = 0; r < mine.size(); r++) {
            int[] row = mine.inputIds(new int[] {r});
            for (int t = 0; t < seq; t++) assertEquals(expected.get(r).get(t).asInt(), row[t], "row " + r + " position " + t);
        }
    }

    @Test
    void fp32ConstantNoClipNoAccumulation(@TempDir Path tmp) throws Exception {
        compare(tmp, "fp32-constant", "gqa4_llama3_mlp_sharded", false, 3, 1, "constant", 0, 0, false);
    }

    @Test
    void fp32CosineWarmupClipAccumulation(@TempDir Path tmp) throws Exception {
        compare(tmp, "fp32-cosine", "gqa4_llama3_mlp_sharded", false, 2, 2, "cosine", 4, 0.3, false);
    }

    @Test
    void qloraConstantWarmupAccumulation(@TempDir Path tmp) throws Exception {
        compare(tmp, "qlora-constant", "qlora_mha", true, 1, 3, "constant", 2, 0, false);
    }

    @Test
    void qloraCosineClipAndMergedCheckpoint(@TempDir Path tmp) throws Exception {
        Path out = compare(tmp, "qlora-cosine", "qlora_mha", true, 2, 2, "cosine", 3, 0.5, true);
        Path eval = tmp.resolve("qlora-cosine-eval.safetensors");
        Path logits = mergedLogits(tmp, "qlora-cosine"), mine = tmp.resolve("merged-forward.safetensors");
        CliRun r = CliRun.of("forward", "--model", out.resolve("merged").toString(), "--input", eval.toString(),
                "--output", mine.toString(), "--device", "jvm");
        assertEquals(0, r.exitCode(), r.err());
        float[] e = SafeTensors.open(logits).floats("logits").data(), a = SafeTensors.open(mine).f32("logits").data();
        double err = Golden.relativeErrorAgainstNonZero(e, a);
        assertTrue(err <= 1e-4, "logits of OUT/merged: transformers vs this program: " + err);
    }
}
