package dev.tornadolora.spark;

import java.io.Serializable;
import java.util.List;

/**
 * What one task of the last (successful) attempt saw: the step it started from (its resume point), each step's
 * loss from there on, the checksums every rank reported at each check, the bytes it sent and received through
 * the all-reduce and its mean step time.
 */
public record TaskReport(int rank, int worldSize, int stageAttempt, long startStep, double[] losses,
                         List<Check> checks, long allReduceBytesSent, long allReduceBytesReceived,
                         int trainableFloats, double meanStepSeconds) implements Serializable {

    /** The checksums of all ranks after step {@code step} (index = rank); all equal, or the run had stopped. */
    public record Check(long step, long[] checksums) implements Serializable {}

    /** Bytes this task sent per step. */
    public long bytesSentPerStep() {
        return losses.length == 0 ? 0 : allReduceBytesSent / losses.length;
    }
}
