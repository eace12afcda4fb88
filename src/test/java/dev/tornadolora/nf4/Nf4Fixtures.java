package dev.tornadolora.nf4;

import dev.tornadolora.io.SafeTensors;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** The PyTorch fixtures of scripts/golden.py (nf4_* and qlora_*) and comparisons against them. */
public final class Nf4Fixtures {
    private Nf4Fixtures() {}

    public static Path dir() {
        try {
            return Path.of(Nf4Fixtures.class.getResource("/golden").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public static Path path(String file) {
        return dir().resolve(file);
    }

    public static SafeTensors open(String file) {
        return SafeTensors.open(path(file));
    }

    /** File names starting with {@code prefix}, sorted; fails when there are none (a test must not pass empty). */
    public static List<String> names(String prefix) {
        try (Stream<Path> s = Files.list(dir())) {
            List<String> names = s.map(p -> p.getFileName().toString())
                    .filter(n -> n.startsWith(prefix) && n.endsWith(".safetensors")).sorted().toList();
            assertTrue(!names.isEmpty(), "no fixtures " + prefix + "* in " + dir());
            return names;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The metadata value as an int. */
    public static int intMetadata(SafeTensors f, String key) {
        return Integer.parseInt(f.requireMetadata(key));
    }

    /**
     * Elementwise |actual − expected| ≤ rtol·|expected| + rtol·1e-2·max|expected|: relative, with a floor for
     * elements near zero (cancellation there makes a pure relative bound meaningless). Returns the largest
     * |actual − expected| / max|expected|.
     */
    public static double assertClose(String what, float[] expected, float[] actual, double rtol) {
        if (expected.length != actual.length) {
            fail(what + ": expected " + expected.length + " values but got " + actual.length);
        }
        double scale = 0;
        for (float v : expected) scale = Math.max(scale, Math.abs(v));
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            double err = Math.abs((double) actual[i] - expected[i]);
            worst = Math.max(worst, err / Math.max(scale, Double.MIN_NORMAL));
            if (!(err <= rtol * Math.abs(expected[i]) + rtol * 1e-2 * scale)) {
                fail(what + "[" + i + "]: expected " + expected[i] + " but got " + actual[i] + " (error " + err
                        + ", scale " + scale + ")");
            }
        }
        return worst;
    }
}
