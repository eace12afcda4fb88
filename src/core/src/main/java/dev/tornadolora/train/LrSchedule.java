package dev.tornadolora.train;

/** A learning-rate multiplier by scheduler step, as the function given to {@code torch.optim.lr_scheduler.LambdaLR}. */
@FunctionalInterface
public interface LrSchedule {
    double factor(long step);
}
