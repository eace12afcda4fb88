package dev.tornadolora.train;

/**
 * Drives an optimizer's learning rate by a schedule, as {@code torch.optim.lr_scheduler.LambdaLR}: on creation
 * the rate becomes base·factor(0); each {@link #step()} (called after the optimizer's step) advances the epoch
 * and sets base·factor(epoch). With a warm-up the very first optimizer step therefore runs at rate 0, as in torch.
 */
public final class LrScheduler {
    private final Optimizer optimizer;
    private final LrSchedule schedule;
    private final double baseLr;
    private long epoch;

    public LrScheduler(Optimizer optimizer, LrSchedule schedule) {
        this(optimizer, schedule, optimizer.lr(), 0);
    }

    /** Resumes at {@code epoch} (torch's {@code last_epoch}) with the rate it had then. */
    public LrScheduler(Optimizer optimizer, LrSchedule schedule, double baseLr, long epoch) {
        if (epoch < 0) throw new IllegalArgumentException("scheduler epoch must be non-negative, got " + epoch);
        this.optimizer = optimizer;
        this.schedule = schedule;
        this.baseLr = baseLr;
        this.epoch = epoch;
        optimizer.setLr(baseLr * schedule.factor(epoch));
    }

    public void step() {
        epoch++;
        optimizer.setLr(baseLr * schedule.factor(epoch));
    }

    public long epoch() {
        return epoch;
    }

    public double baseLr() {
        return baseLr;
    }

    /** The rate the next optimizer step will use. */
    public double lastLr() {
        return optimizer.lr();
    }
}
