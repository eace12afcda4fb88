package dev.tornadolora.testing;

import java.lang.management.ManagementFactory;

/** Heap bytes allocated by the current thread (HotSpot's counter), to bound what a call allocates. */
public final class Allocation {
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    static {
        THREADS.setThreadAllocatedMemoryEnabled(true);
    }

    private Allocation() {}

    public static long currentThread() {
        return THREADS.getCurrentThreadAllocatedBytes();
    }
}
