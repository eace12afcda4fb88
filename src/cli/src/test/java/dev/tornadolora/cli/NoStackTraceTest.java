package dev.tornadolora.cli;

import dev.tornadolora.testing.Golden;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hostile option values for every command: each ends with exit 1 (bad input) or 2 (usage) and one line on
 * stderr, never a Java stack trace or a bare exception name (issue 12).
 */
class NoStackTraceTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {
            "train --sizes 0,5", "train --sizes 5", "train --rank 0", "train --rank -1", "train --alpha NaN",
            "train --alpha Infinity", "train --dropout 1", "train --dropout NaN", "train --dropout -0.5",
            "train --block-size 0", "train --block-size -64", "train --scaler-block-size 0", "train --steps 0",
            "train --batch 0", "train --batch -1", "train --eval-batch 0", "train --hidden-rank 0",
            "train --hidden-rank 99", "train --update-scale NaN", "train --update-scale -1", "train --activation x",
            "train --optimizer x", "train --warmup-steps -1", "train --weight-decay NaN", "train --lr 0",
            "train --lr NaN", "train --momentum NaN", "train --save-every -1", "train --device nosuch",
            "train --sizes 2147483647,2147483647", "train --rank 2147483647",
            "eval --checkpoint MISSING --input MISSING --output OUT", "eval --checkpoint DIR --input DIR --output OUT",
            "eval --checkpoint C --input C --output OUT --device nosuch",
            "quantize --input C --output OUT --block-size 0", "quantize --input C --output OUT --block-size -1",
            "quantize --input C --output OUT --key nosuch", "quantize --input C --output OUT --scaler-block-size 0",
            "merge --checkpoint MISSING --output OUT", "merge --checkpoint DIR --output OUT",
            "bench --device jvm --dims 0 --json J", "bench --device jvm --dims -5 --json J",
            "bench --device jvm --dims 4x --json J", "bench --device jvm --tokens 0 --json J",
            "bench --device jvm --rank 0 --json J", "bench --device jvm --reps -1 --json J",
            "bench --device jvm --budget NaN --json J", "bench --device jvm --ops nosuch --json J",
            "bench --device nosuch --json J", "bench --device jvm --dims 2147483647 --json J",
            "eval --checkpoint C --input C --output aNULb", "devices --nosuch", "nosuch"})
    void hostileOptionsGiveOneLine(String line) {
        List<String> args = new ArrayList<>();
        for (String a : line.split(" ")) {
            args.add(switch (a) {
                case "MISSING" -> dir.resolve("missing.safetensors").toString();
                case "DIR" -> dir.toString();
                case "OUT" -> dir.resolve("out.safetensors").toString();
                case "C" -> Golden.dir().resolve("lora_r4_bias.safetensors").toString();
                case "J" -> dir.resolve("b.json").toString();
                default -> a;
            });
        }
        if (args.get(0).equals("train")) {
            args.addAll(List.of("--output", dir.resolve("run").toString(), "--quiet", "--steps", "2"));
            if (!line.contains("--device")) args.addAll(List.of("--device", "jvm"));
            if (line.contains("--steps")) args.subList(args.size() - 2 - (line.contains("--device") ? 0 : 2),
                    args.size() - (line.contains("--device") ? 0 : 2)).clear();
        }
        if (args.get(0).equals("bench")) {
            args.addAll(List.of("--csv", dir.resolve("b.csv").toString(), "--png", dir.resolve("b.png").toString(),
                    "--reps", "1", "--min-reps", "1", "--warmup", "0", "--budget", "0.1"));
        }
        for (int i = 0; i < args.size(); i++) args.set(i, args.get(i).replace("NUL", "\0"));
        CliRun r = CliRun.of(args.toArray(String[]::new));
        assertTrue(r.exitCode() == 1 || r.exitCode() == 2, line + ": exit " + r.exitCode() + "\n" + r.out() + r.err());
        assertFalse(r.err().contains("\tat ") || r.err().contains("Exception:") || r.err().contains("Error:"),
                line + ": " + r.err());
        if (r.exitCode() == 1) assertEquals(1, r.err().strip().lines().count(), line + ": " + r.err());
    }
}
