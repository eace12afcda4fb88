package dev.tornadolora.testing;

import dev.tornadolora.io.SafeTensors;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The PyTorch fixtures written by scripts/golden.py, and the comparisons the tests make against them. */
public final class Golden {
    private Golden() {}

    public static Path dir() {
        try {
            return Path.of(Golden.class.getResource("/golden").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Fixture files whose names start with {@code prefix} (e.g. {@code lora_}), sorted. */
    public static List<Path> files(String prefix) {
        try (Stream<Path> s = Files.list(dir())) {
            List<Path> list = s.filter(p -> p.getFileName().toString().startsWith(prefix)).sorted().toList();
            assertTrue(!list.isEmpty(), "no fixtures named " + prefix + "* in " + dir());
            return list;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static SafeTensors open(String name) {
        return SafeTensors.open(dir().resolve(name));
    }

    /**
     * Norm-wise relative error max|a − e| / max|e|, the measure used for fp32 results whose summation order
     * differs from the oracle's; against an all-zero reference, the absolute max|a − e| (a gradient that must be zero).
     */
    public static double relativeError(float[] expected, float[] actual) {
        return relativeError(expected, actual, false);
    }

    /**
     * {@link #relativeError}, failing when the reference is all zeros: for a result that is never zero (logits, a
     * model's gradient), where an all-zero reference means the fixture or the reference computation is broken.
     */
    public static double relativeErrorAgainstNonZero(float[] expected, float[] actual) {
        return relativeError(expected, actual, true);
    }

    private static double relativeError(float[] expected, float[] actual, boolean nonZeroReference) {
        assertEquals(expected.length, actual.length, "length");
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < expected.length; i++) {
            if (Float.isNaN(actual[i]) != Float.isNaN(expected[i])) {
                return Double.POSITIVE_INFINITY;
            }
            maxDiff = Math.max(maxDiff, Math.abs((double) actual[i] - expected[i]));
            maxRef = Math.max(maxRef, Math.abs((double) expected[i]));
        }
        assertTrue(!nonZeroReference || maxRef != 0, "the reference is all zeros: a relative error against it tests nothing");
        return maxRef == 0 ? maxDiff : maxDiff / maxRef;
    }

    public static void assertClose(float[] expected, float[] actual, double tolerance, String what) {
        double err = relativeError(expected, actual);
        assertTrue(err <= tolerance, what + ": relative error " + err + " > " + tolerance);
    }
}
