package dev.tornadolora.train;

/**
 * torchtune's {@code get_cosine_schedule_with_warmup}: a linear warm-up from 0 to the base rate over
 * {@code warmupSteps}, then a cosine over the remaining steps (half a period by default, ending at 0):
 * <pre>
 *   factor(t) = t / max(1, warmup)                                        t &lt; warmup
 *   progress  = (t − warmup) / max(1, total − warmup)
 *   factor(t) = max(0, ½ · (1 + cos(π · cycles · 2 · progress)))          otherwise
 * </pre>
 */
public record CosineWithWarmup(long warmupSteps, long trainingSteps, double numCycles) implements LrSchedule {

    public CosineWithWarmup {
        if (warmupSteps < 0 || trainingSteps < 0) {
            throw new IllegalArgumentException("warm-up and training steps must be non-negative, got warmup="
                    + warmupSteps + ", total=" + trainingSteps);
        }
        if (!Double.isFinite(numCycles)) {
            throw new IllegalArgumentException("num_cycles must be finite, got " + numCycles);
        }
    }

    public CosineWithWarmup(long warmupSteps, long trainingSteps) {
        this(warmupSteps, trainingSteps, 0.5);
    }

    @Override
    public double factor(long step) {
        if (step < warmupSteps) {
            return (double) step / Math.max(1, warmupSteps);
        }
        double progress = (double) (step - warmupSteps) / Math.max(1, trainingSteps - warmupSteps);
        return Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * numCycles * 2.0 * progress)));
    }
}
