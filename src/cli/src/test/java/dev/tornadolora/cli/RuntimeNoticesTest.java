package dev.tornadolora.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;

class RuntimeNoticesTest {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
    private final PrintStream stream = new PrintStream(new RuntimeNotices(out, err), true, StandardCharsets.UTF_8);

    @Test
    void tornadoVmLinesGoToTheNoticeStreamAndTheRestStays() {
        stream.println("result 1");
        stream.println("[TornadoVM] Warning: The loop bounds will be configured by the GridScheduler. Check the grid"
                + " by using the flag --threadInfo.");
        stream.print("partial ");
        stream.flush();
        stream.println("line");
        stream.println("a [TornadoVM] in the middle stays");
        assertEquals("result 1\npartial line\na [TornadoVM] in the middle stays\n", out.toString(StandardCharsets.UTF_8));
        assertEquals("[TornadoVM] Warning: The loop bounds will be configured by the GridScheduler. Check the grid by"
                + " using the flag --threadInfo.\n", err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void aLineFlushedInPiecesGoesWhereItsBeginningSays() {
        stream.print("[Tor");
        stream.flush();
        assertEquals("", out.toString(StandardCharsets.UTF_8) + err.toString(StandardCharsets.UTF_8), "undecided: held");
        stream.print("nadoVM] notice");
        stream.flush();
        stream.println(" continued");
        stream.print("[T");
        stream.flush();
        stream.println("able]");
        assertEquals("[TornadoVM] notice continued\n", err.toString(StandardCharsets.UTF_8));
        assertEquals("[Table]\n", out.toString(StandardCharsets.UTF_8));
    }
}
