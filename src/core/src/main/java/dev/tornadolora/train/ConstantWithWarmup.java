package dev.tornadolora.train;

/**
 * transformers' {@code get_constant_schedule_with_warmup}: a linear warm-up from 0 to the base rate, then constant.
 * <pre>
 *   factor(t) = t / max(1, warmup)     t &lt; warmup
 *   factor(t) = 1                      otherwise
 * </pre>
 */
public record ConstantWithWarmup(long warmupSteps) implements LrSchedule {

    public ConstantWithWarmup {
        if (warmupSteps < 0) throw new IllegalArgumentException("warm-up steps must be non-negative, got " + warmupSteps);
    }

    @Override
    public double factor(long step) {
        return step < warmupSteps ? (double) step / Math.max(1, warmupSteps) : 1.0;
    }
}
