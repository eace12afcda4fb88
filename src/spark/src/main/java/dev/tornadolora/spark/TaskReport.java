package dev.tornadolora.spark;

import java.io.Serializable;
import java.util.List;

/**
 * What one task of the last (successful) attempt saw: the step it started from (its resume point), each step's
 * loss from there on, the checksums every rank reported at each check, the bytes it sent and received through
 * the all-reduce, its mean step time and the mean time of a step's all-reduce (waiting for the slowest share
 * included), both from the second step on: the first holds the rendezvous and the warm-up.
 */
public record TaskReport(int rank, int worldSize, int stageAttempt, long startStep, double[] losses,
                         List<Check> checks, long allReduceBytesSent, long allReduceBytesReceived,
                         int trainableFloats, double meanStepSeconds, double meanAllReduceSeconds) implements Serializable {

    /** A report without the all-reduce's time. */
    public TaskReport(int rank, int worldSize, int stageAttempt, long startStep, double[] losses, List<Check> checks,
                      long allReduceBytesSent, long allReduceBytesReceived, int trainableFloats, double meanStepSeconds) {
        this(rank, worldSize, stageAttempt, startStep, losses, checks, allReduceBytesSent, allReduceBytesReceived,
                trainableFloats, meanStepSeconds, 0);
    }

    /** The checksums of all ranks after step {@code step} (index = rank); all equal, or the run had stopped. */
    public record Check(long step, long[] checksums) implements Serializable {}

    /** Bytes this task sent per step. */
    public long bytesSentPerStep() {
        return losses.length == 0 ? 0 : allReduceBytesSent / losses.length;
    }
}
