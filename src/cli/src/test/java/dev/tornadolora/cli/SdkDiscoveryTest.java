package dev.tornadolora.cli;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * bin/tornado-sdk.sh, the one SDK discovery of ./tornado-lora, ./build, .ci/run and setup-tornado.sh: TORNADOVM_HOME
 * when set (and an error naming it when it is no SDK, never another SDK), else the first SDK at the usual places.
 */
class SdkDiscoveryTest {
    @TempDir
    Path dir;
    Path script;

    record Result(int code, String out, String err) {}

    @BeforeEach
    void findScript() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("bin/tornado-sdk.sh"))) {
                script = p.resolve("bin/tornado-sdk.sh");
                break;
            }
        }
        assumeTrue(script != null && Files.isExecutable(Path.of("/bin/bash")),
                "SKIPPED: needs bash and bin/tornado-sdk.sh above " + Path.of("").toAbsolutePath());
    }

    /** A folder that looks like an SDK to the script: tornado-argfile and the API jar. */
    private Path fakeSdk(String name) throws IOException {
        Path sdk = Files.createDirectories(dir.resolve(name).resolve("share/java/tornado"));
        Files.writeString(dir.resolve(name).resolve("tornado-argfile"), "");
        Files.writeString(sdk.resolve("tornado-api-5.2.0-jdk25.jar"), "");
        return dir.resolve(name);
    }

    /** Sources the script with the usual places replaced by {@code places}, runs tl_use_sdk and prints the result. */
    private Result discover(String tornadovmHome, String places) throws Exception {
        String body = "set -euo pipefail; . '" + script + "'; TL_SDK_PLACES=(" + places + ");"
                + " if tl_use_sdk test; then echo \"found $TORNADOVM_HOME\"; else echo none; fi; tl_sdk_note test";
        ProcessBuilder pb = new ProcessBuilder(List.of("/bin/bash", "-c", body));
        pb.environment().remove("TORNADOVM_HOME");
        if (tornadovmHome != null) pb.environment().put("TORNADOVM_HOME", tornadovmHome);
        Path out = dir.resolve("out.txt"), err = dir.resolve("err.txt");
        Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8).strip(),
                Files.readString(err, StandardCharsets.UTF_8).strip());
    }

    @Test
    void tornadovmHomeThatIsNoSdkStopsNamingIt() throws Exception {
        Path other = fakeSdk("other");
        Result r = discover("/tmp", "'" + other + "'");
        assertEquals(1, r.code(), r.err());
        assertEquals("", r.out(), "no SDK used in its place");
        assertTrue(r.err().startsWith("test: TORNADOVM_HOME=/tmp is not a TornadoVM SDK: it has no tornado-argfile"), r.err());
    }

    @Test
    void tornadovmHomeWinsAndSaysSo() throws Exception {
        Path mine = fakeSdk("mine"), other = fakeSdk("other");
        Result r = discover(mine.toString(), "'" + other + "'");
        assertEquals("found " + mine, r.out(), r.err());
        assertEquals("test: TornadoVM SDK " + mine + " (from TORNADOVM_HOME)", r.err());
    }

    @Test
    void withoutTornadovmHomeTheFirstSdkAtTheUsualPlaces() throws Exception {
        fakeSdk("tornadovm-b");
        Path a = fakeSdk("tornadovm-a");
        Files.createDirectories(dir.resolve("tornadovm-0"));  // no SDK: skipped
        Result r = discover(null, "'" + dir.resolve("missing") + "' '" + dir + "/tornadovm*'");
        assertEquals("found " + a, r.out(), r.err());
        assertEquals("test: TornadoVM SDK " + a + " (found in the usual places; TORNADOVM_HOME is unset)", r.err());
    }

    @Test
    void noSdkSaysWhereItLooked() throws Exception {
        Result r = discover(null, "'" + dir.resolve("missing") + "'");
        assertEquals(0, r.code());
        assertEquals("none", r.out());
        assertEquals("test: no TornadoVM SDK (TORNADOVM_HOME is unset; looked in " + dir.resolve("missing") + ")", r.err());
    }

    /** Issue 23, class 9: with HOME unset (a service, {@code env -i}) the launcher's scripts still find the JDK. */
    @Test
    void homeUnsetStillFindsTheJdkAndTheSdkPlaces() throws Exception {
        Path jdk = script.resolveSibling("jdk.sh");
        String body = "set -euo pipefail; . '" + jdk + "'; . '" + script + "'; echo \"jdk $JAVA_HOME\";"
                + " tl_use_sdk test || true; tl_sdk_note test";
        ProcessBuilder pb = new ProcessBuilder(List.of("/bin/bash", "-c", body));
        pb.environment().remove("HOME");
        pb.environment().remove("TORNADOVM_HOME");
        Path out = dir.resolve("out.txt"), err = dir.resolve("err.txt");
        Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String o = Files.readString(out, StandardCharsets.UTF_8), e = Files.readString(err, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), o + e);
        assertTrue(o.startsWith("jdk /"), o + e);
        assertTrue(!e.contains("unbound variable") && !e.contains("no JDK"), e);
    }
}
