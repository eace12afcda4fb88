package dev.tornadolora.train;

/** A constant learning rate: factor(t) = 1 ({@code torch.optim.lr_scheduler.LambdaLR(lambda t: 1)}, or none). */
public record ConstantSchedule() implements LrSchedule {
    @Override
    public double factor(long step) {
        return 1.0;
    }
}
