package example;

import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.llama.TokenTensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README's and docs/library.md's "Fine-tuning from Java" is this module's {@link FinetuneExample}, verbatim, and it runs: ten
 * steps on the oracle's tiny Llama with a PEFT folder written.
 */
class FinetuneExampleTest {
    static final Path SOURCE = Path.of("src/test/java/example/FinetuneExample.java");
    static final Path MODEL = Path.of("src/test/resources/golden/llama/qlora_mha/model");

    @TempDir
    Path dir;

    @Test
    void theReadmeAndDocsLibraryQuoteTheExampleVerbatim() throws Exception {
        Path readme = ReadmeExampleTest.readme();
        quotesTheExample(readme);
        quotesTheExample(readme.resolveSibling("docs/library.md"));
    }

    private static void quotesTheExample(Path doc) throws Exception {
        String text = Files.readString(doc, StandardCharsets.UTF_8);
        int section = text.indexOf("\n## Fine-tuning from Java\n");
        assertTrue(section >= 0, doc + " has no '## Fine-tuning from Java' section");
        String source = Files.readString(SOURCE, StandardCharsets.UTF_8);
        int block = text.indexOf("```java\n", section);
        assertTrue(block >= 0 && text.startsWith("```java\n" + source + "```\n", block),
                doc + " must quote " + SOURCE + " verbatim in the section's first ```java block (copy the file into it)");
    }

    @Test
    void itFineTunesAndWritesAPeftFolder() throws Exception {
        int rows = 16, seq = 16;  // seeded random token ids below the fixture's vocabulary (128)
        int[] ids = new int[rows * seq];
        SplittableRandom rng = new SplittableRandom(3);
        for (int i = 0; i < ids.length; i++) ids[i] = rng.nextInt(128);
        Path data = dir.resolve("train.safetensors"), out = dir.resolve("out");
        new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {rows, seq}, TokenTensors.i64(ids)).write(data);

        PrintStream stdout = System.out;
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
        try {
            FinetuneExample.main(new String[] {MODEL.toString(), data.toString(), out.toString()});
        } finally {
            System.setOut(stdout);
        }
        String text = printed.toString(StandardCharsets.UTF_8);
        Matcher steps = Pattern.compile("(?m)^step (\\d+): loss [0-9.]+$").matcher(text);
        int n = 0;
        while (steps.find()) assertEquals(++n, Integer.parseInt(steps.group(1)), text);
        assertEquals(10, n, text);
        Matcher end = Pattern.compile("(?m)^eval loss ([0-9.]+) -> ([0-9.]+); adapter in (.*)$").matcher(text);
        assertTrue(end.find(), text);
        assertEquals(out.resolve("peft").toString(), end.group(3));
        assertTrue(Double.parseDouble(end.group(2)) < Double.parseDouble(end.group(1)), "the eval loss fell: " + text);
        SafeTensors peft = SafeTensors.open(out.resolve("peft/adapter_model.safetensors"));
        assertTrue(peft.names().contains("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"), peft.names().toString());
        assertTrue(Files.isRegularFile(out.resolve("peft/adapter_config.json")));
    }
}
