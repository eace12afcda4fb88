package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.finetune.ExampleRows;
import dev.tornadolora.finetune.SafetensorsTokens;
import dev.tornadolora.finetune.TokenDataset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code finetune --data} on TRL's dataset types: the held-out split ({@code --eval-split}) and its eval loss, the
 * counts of truncated and dropped examples (against TRL's own preprocessing in golden/chat/sft.json), and bad data
 * as one line naming the file, the line and the problem.
 */
class FinetuneChatDataTest {
    static final Path GOLDEN = Path.of("../data/src/test/resources/golden/chat");
    static final Path MODEL = GOLDEN.resolve("model");
    static final ObjectMapper JSON = new ObjectMapper();

    static List<String> finetune(Path data, Path out, String... more) {
        List<String> a = new ArrayList<>(List.of("finetune", "--model", MODEL.toString(), "--data", data.toString(),
                "--output", out.toString(), "--device", "jvm", "--quiet", "--lora-rank", "4", "--batch", "1",
                "--shuffle", "false"));
        a.addAll(List.of(more));
        return a;
    }

    /**
     * --eval-split 0.5 of 4 padded examples holds out ⌈0.5·4⌉ = 2, trains on the others, and evaluates before, every
     * --eval-every step and after; the held-out examples given as --eval-data instead have the same eval loss
     * before training (the same preparation and masks).
     */
    @Test
    void evalSplitHoldsOutPreparedRowsAndEvaluatesThemWithTheSameMasks(@TempDir Path tmp) throws Exception {
        Path data = GOLDEN.resolve("data/messages.jsonl");
        CliRun r = CliRun.of(finetune(data, tmp.resolve("split"), "--assistant-only-loss", "--seq-len", "64",
                "--eval-split", "0.5", "--eval-every", "1", "--seed", "3", "--steps", "2").toArray(String[]::new));
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("4 conversational examples -> 4 rows of 64 (padded)"), r.out());
        JsonNode log = JSON.readTree(tmp.resolve("split/log.json").toFile());
        assertEquals(2, log.get("config").get("data_rows").asInt());
        assertEquals(2, log.get("config").get("eval_rows").asInt());
        assertEquals("split 0.5 of the data (seed 3)", log.get("config").get("eval_data").asText());
        List<Long> evalSteps = new ArrayList<>();
        for (JsonNode e : log.get("eval")) evalSteps.add(e.get("step").asLong());
        assertEquals(List.of(0L, 1L, 2L), evalSteps);

        // which examples were held out: the split of the data command's rows, by their example ids
        Path rows = tmp.resolve("rows.safetensors");
        assertEquals(0, CliRun.of("data", "--model", MODEL.toString(), "--data", data.toString(), "--assistant-only-loss",
                "--seq-len", "64", "--output", rows.toString()).exitCode());
        ExampleRows all = (ExampleRows) SafetensorsTokens.read(rows, 1000);
        ExampleRows held = (ExampleRows) TokenDataset.split(all, 0.5, 3)[1];
        TreeSet<Integer> examples = new TreeSet<>();
        for (int[] row : held.examples()) examples.add(row[0]);
        List<String> lines = Files.readAllLines(data);
        Path eval = tmp.resolve("eval.jsonl");
        Files.write(eval, examples.stream().map(lines::get).toList());
        CliRun e = CliRun.of(finetune(data, tmp.resolve("eval"), "--assistant-only-loss", "--seq-len", "64",
                "--eval-data", eval.toString(), "--steps", "1").toArray(String[]::new));
        assertEquals(0, e.exitCode(), e.err());
        JsonNode evalLog = JSON.readTree(tmp.resolve("eval/log.json").toFile());
        assertEquals(evalLog.get("eval").get(0).get("loss").asDouble(), log.get("eval").get(0).get("loss").asDouble(),
                1e-6 * Math.abs(log.get("eval").get(0).get("loss").asDouble()));
        assertEquals(2, evalLog.get("config").get("data_preparation").size(), "train and eval preparation logged");

        FinetuneCommandTest.assertOneLineError(CliRun.of(finetune(rows, tmp.resolve("pre"), "--steps", "1", "--packing",
                "bfd").toArray(String[]::new)), rows + ": pre-tokenized rows are trained on as they are; --packing,");
        CliRun preEval = CliRun.of(finetune(data, tmp.resolve("pre-eval"), "--assistant-only-loss", "--seq-len", "64",
                "--steps", "1", "--eval-data", rows.toString()).toArray(String[]::new));
        assertEquals(0, preEval.exitCode(), "the data command's rows as eval data of chat data: " + preEval.err());

        CliRun both = CliRun.of(finetune(data, tmp.resolve("both"), "--steps", "1", "--eval-split", "0.5", "--eval-data",
                eval.toString()).toArray(String[]::new));
        FinetuneCommandTest.assertOneLineError(both, "give --eval-data or --eval-split, not both");
        FinetuneCommandTest.assertOneLineError(CliRun.of(finetune(data, tmp.resolve("one"), "--eval-split", "1")
                .toArray(String[]::new)), "--eval-split must be a fraction in (0, 1), got 1.0");
    }

    /**
     * Truncated and dropped examples are counted as TRL's preprocessing implies: with assistant-only loss at
     * max_length 24, TRL keeps 2 of the 4 conversations (sft.json) and leaves 3 of them longer than 24 tokens
     * (its untruncated rows); printed and in log.json.
     */
    @Test
    void truncatedAndDroppedAreCountedAsTrlImplies(@TempDir Path tmp) throws Exception {
        JsonNode cases = JSON.readTree(GOLDEN.resolve("sft.json").toFile()).get("cases");
        int kept = -1, longer = -1;
        for (JsonNode c : cases) {
            if (!c.get("data").asText().equals("messages.jsonl") || !c.get("template").asText().equals("llama3")
                    || !c.get("assistant_only_loss").asBoolean() || c.get("packing").asBoolean()
                    || !c.get("truncation_mode").asText().equals("keep_start")) continue;
            if (c.get("max_length").isNull()) {
                longer = 0;
                for (JsonNode row : c.get("rows")) if (row.get("input_ids").size() > 24) longer++;
            } else if (c.get("max_length").asInt() == 24) {
                kept = c.get("rows").size();
            }
        }
        assertTrue(kept > 0 && longer > 0 && kept < 4, "golden cases found: kept " + kept + ", longer " + longer);
        CliRun r = CliRun.of(finetune(GOLDEN.resolve("data/messages.jsonl"), tmp.resolve("o"), "--assistant-only-loss",
                "--seq-len", "24", "--steps", "1").toArray(String[]::new));
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains(longer + " truncated, " + (4 - kept) + " dropped"), r.out());
        JsonNode prep = JSON.readTree(tmp.resolve("o/log.json").toFile()).get("config").get("data_preparation").get(0);
        assertEquals(longer, prep.get("truncated").asInt());
        assertEquals(4 - kept, prep.get("dropped").asInt());
        assertEquals(kept, prep.get("rows").asInt());
    }

    /** Each kind of bad data is one line naming the file, the line and the problem, and nothing is trained. */
    @Test
    void badDataIsOneLineNamingFileLineAndProblem(@TempDir Path tmp) throws Exception {
        String user = "{\"role\": \"user\", \"content\": \"hi\"}", assistant = "{\"role\": \"assistant\", \"content\": \"yo\"}";
        String ok = "{\"messages\": [" + user + ", " + assistant + "]}\n";
        String[][] cases = {
                {ok + "{\"messages\": [{\"content\": \"hi\"}, " + assistant + "]}\n", "", "line 2: messages[0] has no string \"role\""},
                {ok + "{\"messages\": [{\"role\": \"user\"}, " + assistant + "]}\n", "", "line 2: messages[0] has no string \"content\""},
                {"{\"messages\": [{\"role\": \"bot\", \"content\": \"hi\"}]}\n", "",
                        "line 1: messages[0]: unknown role 'bot' (expected system, user, assistant or tool)"},
                {ok + "{\"messages\": [" + user + "]}\n", "--assistant-only-loss",
                        "line 2: no assistant tokens to train on under --assistant-only-loss"},
                {ok + "{\"messages\": [" + assistant + ", " + user + "]}\n", "--chat-template=raising.jinja",
                        "line 2: the chat template refuses it: roles must alternate user/assistant"},
                {ok + "{\"messages\": [" + user + ", {\"role\": \"assistant\", \"content\": \"" + "yo ".repeat(40) + "\"}]}\n",
                        "--truncation-mode=error", "line 2: 1"},
        };
        Path template = Files.writeString(tmp.resolve("raising.jinja"), "{% for m in messages %}{% if (m['role'] == 'user')"
                + " != (loop.index0 % 2 == 0) %}{{ raise_exception('roles must alternate user/assistant') }}{% endif %}"
                + "{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}");
        for (String[] c : cases) {
            Path d = Files.writeString(tmp.resolve("d.jsonl"), c[0]);
            List<String> args = finetune(d, tmp.resolve("o"), "--seq-len", "32", "--steps", "1");
            if (!c[1].isEmpty()) args.add(c[1].replace("raising.jinja", template.toString()));
            CliRun r = CliRun.of(args.toArray(String[]::new));
            FinetuneCommandTest.assertOneLineError(r, d + ", " + c[2]);
            if (c[1].startsWith("--truncation-mode")) {
                assertTrue(r.err().contains("tokens, more than --seq-len 32 (--truncation-mode error)"), r.err());
            }
            assertFalse(Files.exists(tmp.resolve("o/peft")), "nothing trained: " + r.err());
        }
    }
}
