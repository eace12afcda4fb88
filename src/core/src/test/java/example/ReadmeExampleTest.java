package example;

import dev.tornadolora.io.AdapterCheckpoints;
import dev.tornadolora.io.SafeTensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's Library snippet is this module's {@link ReadmeExample}, verbatim, and it runs. */
class ReadmeExampleTest {
    static final Path SOURCE = Path.of("src/test/java/example/ReadmeExample.java");

    @TempDir
    Path dir;

    /** The project's README, found upwards from the module folder (Surefire runs in it). */
    static Path readme() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.exists(p.resolve("README.md")) && Files.isDirectory(p.resolve("src/core"))) {
                return p.resolve("README.md");
            }
        }
        throw new AssertionError("no README.md above " + Path.of("").toAbsolutePath());
    }

    @Test
    void theReadmeQuotesTheExampleVerbatim() throws Exception {
        String source = Files.readString(SOURCE, StandardCharsets.UTF_8);
        String readme = Files.readString(readme(), StandardCharsets.UTF_8);
        assertTrue(readme.contains("```java\n" + source + "```\n"),
                "README.md must quote " + SOURCE + " verbatim in a ```java block (copy the file into it)");
    }

    @Test
    void itTrainsAndSavesAPeftFolderThatLoadsBack() throws Exception {
        Path peft = dir.resolve("adapters");
        PrintStream stdout = System.out;
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
        try {
            ReadmeExample.main(new String[] {peft.toString()});
        } finally {
            System.setOut(stdout);
        }
        String out = printed.toString(StandardCharsets.UTF_8);
        Matcher m = Pattern.compile("step 1: loss ([0-9.]+)\nstep 20: loss ([0-9.]+)\nsaved adapters to (.*)\n").matcher(out);
        assertTrue(m.matches(), out);
        assertTrue(Double.parseDouble(m.group(2)) < 0.9 * Double.parseDouble(m.group(1)), "the loss fell: " + out);
        assertEquals(peft.toString(), m.group(3));

        SafeTensors weights = SafeTensors.open(peft.resolve(AdapterCheckpoints.PEFT_WEIGHTS));
        assertEquals(java.util.List.of("base_model.model.fc1.lora_A.weight", "base_model.model.fc1.lora_B.weight",
                "base_model.model.fc2.lora_A.weight", "base_model.model.fc2.lora_B.weight"),
                weights.names().stream().sorted().toList());
        float[] b = weights.floats("base_model.model.fc2.lora_B.weight").data();
        assertTrue(java.util.stream.IntStream.range(0, b.length).anyMatch(i -> b[i] != 0f), "lora_B was trained");
        var config = new com.fasterxml.jackson.databind.ObjectMapper().readTree(peft.resolve(AdapterCheckpoints.PEFT_CONFIG).toFile());
        assertEquals(8, config.get("r").asInt());
        assertEquals("[\"fc1\",\"fc2\"]", config.get("target_modules").toString());
    }
}
