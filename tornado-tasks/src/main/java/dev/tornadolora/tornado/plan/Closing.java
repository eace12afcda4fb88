package dev.tornadolora.tornado.plan;

import uk.ac.manchester.tornado.api.TornadoExecutionPlan;

import java.util.Collection;

/** Closing TornadoVM plans on every path: each one is tried even when another fails, then the first failure is thrown. */
public final class Closing {
    private Closing() {}

    /** Closes an execution plan, turning TornadoVM's checked exception into an unchecked one. */
    static void close(TornadoExecutionPlan plan) {
        try {
            plan.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing a TornadoVM execution plan failed: " + e.getMessage(), e);
        }
    }

    /** Closes all, then empties the collection; rethrows the first failure. */
    public static void closeAll(Collection<? extends AutoCloseable> closeables) {
        RuntimeException first = null;
        for (AutoCloseable c : closeables) {
            try {
                c.close();
            } catch (RuntimeException e) {
                if (first == null) first = e;
            } catch (Exception e) {
                if (first == null) first = new IllegalStateException(e.getMessage(), e);
            }
        }
        closeables.clear();
        if (first != null) {
            throw first;
        }
    }
}
