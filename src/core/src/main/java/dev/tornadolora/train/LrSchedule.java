package dev.tornadolora.train;

/** A learning-rate multiplier by scheduler step, as the function given to {@code torch.optim.lr_scheduler.LambdaLR}. */
@FunctionalInterface
public interface LrSchedule {
    /**
     * {@return the multiplier of the base learning rate}
     *
     * @param step the scheduler's epoch (torch's {@code last_epoch}), 0 before the first optimizer step
     */
    double factor(long step);
}
