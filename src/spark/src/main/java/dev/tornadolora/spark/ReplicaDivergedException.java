package dev.tornadolora.spark;

/** The replicas no longer hold the same adapters (or did not start from the same step): the run cannot go on. */
public final class ReplicaDivergedException extends IllegalStateException {
    public ReplicaDivergedException(String message) {
        super(message);
    }
}
