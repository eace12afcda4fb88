package dev.tornadolora.spark;

import java.io.Serializable;

/**
 * How a task builds its replica: shipped to every executor in the task's closure, so it holds only a description
 * of the run (paths, options), never a model. {@link #open} loads the newest resume point of the run when there
 * is one: a task that Spark restarts continues from there.
 */
@FunctionalInterface
public interface ReplicaFactory extends Serializable {
    Replica open(int rank, int worldSize);
}
